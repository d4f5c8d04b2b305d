"""Package discovery (the metadata is in pyproject.toml): every subpackage of ``ltengine/``, and the
built-in plugins of ``plugins/`` installed as ``ltengine_plugins`` with their subpackages.
``plugins/example_third_party`` is a separate, separately installable project and is left out."""

from setuptools import find_packages, setup

PLUGIN_SUBPACKAGES = find_packages("plugins", exclude=["example_third_party", "example_third_party.*"])

setup(
    packages=[
        *find_packages(include=["ltengine", "ltengine.*"]),
        "ltengine_plugins",
        *(f"ltengine_plugins.{name}" for name in PLUGIN_SUBPACKAGES),
    ],
    package_dir={"ltengine_plugins": "plugins"},
)

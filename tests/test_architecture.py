"""The house stays as drawn: import-linter contracts kept, no import cycles, a wheel with every subpackage,
every exported name importable and documented."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ltengine

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_are_kept() -> None:
    result = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                             "lint_imports_command()", "--no-cache"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _import_cycles(*packages: str) -> list[list[str]]:
    """Strongly connected components (more than one module) of the import graph."""
    import grimp

    sys.path.insert(0, str(ROOT))  # evals is a folder of the repository, not an installed package
    try:
        graph = grimp.build_graph(*packages, include_external_packages=False, cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan, iterative over the imports of each module
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycles_in_ltengine_plugins_or_evals() -> None:
    assert _import_cycles("ltengine", "ltengine_plugins", "evals") == []


def test_built_wheel_contains_every_subpackage(tmp_path: Path) -> None:
    """An editable install hides a package missing from the build; a real wheel does not."""
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    wheel = next(tmp_path.glob("ltengine-*.whl"))
    packaged = {name.rsplit("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist() if name.endswith("/__init__.py")}
    expected = {str(path.parent.relative_to(ROOT)) for path in (ROOT / "ltengine").rglob("__init__.py")}
    expected |= {"ltengine_plugins/" + str(path.parent.relative_to(ROOT / "plugins")) if path.parent != ROOT / "plugins"
                 else "ltengine_plugins" for path in (ROOT / "plugins").rglob("__init__.py")
                 if "example_third_party" not in path.parts}
    assert expected - packaged == set()
    assert not any(name.startswith(("tests/", "evals/", "plugins/")) for name in zipfile.ZipFile(wheel).namelist())


@pytest.mark.parametrize("name", ltengine.__all__)
def test_exported_names_are_importable_and_documented(name: str) -> None:
    member = getattr(ltengine, name)
    if name == "__version__":
        assert isinstance(member, str)
        return
    assert inspect.getdoc(member), f"ltengine.{name} has no docstring"


#: Modules that are data tables, exempt from the size limit.
DATA_TABLES = {"plugins/fusion_weights.py"}


def test_no_module_over_400_lines() -> None:
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
             for folder in ("ltengine", "plugins") for path in (ROOT / folder).rglob("*.py")
             if "example_third_party" not in path.parts}
    assert {path: n for path, n in sizes.items() if n > 400 and path not in DATA_TABLES} == {}

"""Plugin loading: built-ins from DEFAULT_PLUGINS, third parties from the ``ltengine`` entry points.

Environment controls:

- ``LTENGINE_LOAD_PLUGINS``: comma-separated allow-list of entry-point plugins (set but empty = none).
- ``LTENGINE_DISABLE_PLUGINS``: comma-separated block-list; applies to built-ins too
  (``faiss_retriever`` or ``ltengine_plugins.faiss_retriever``).

A plugin that fails to import produces a :class:`PluginLoadWarning` naming it and the error;
everything else keeps working.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import warnings
from typing import Any

import pluggy

from . import hookspecs
from .components import KINDS
from .registry import Registry

ENTRY_POINT_GROUP = "ltengine"

#: Built-in plugins, registered explicitly (no import side effects).
DEFAULT_PLUGINS: tuple[str, ...] = (
    "ltengine.stages",
    "ltengine_plugins.blocking",
    "ltengine_plugins.usem3_encoder",
    "ltengine_plugins.litellm_encoder",  # before st_encoder: it claims "openai/..." model strings
    "ltengine_plugins.e5_encoder",  # before st_encoder: it claims "intfloat/multilingual-e5-small"
    "ltengine_plugins.st_encoder",
    "ltengine_plugins.faiss_retriever",
    "ltengine_plugins.exact_retriever",
    "ltengine_plugins.lexical_retriever",
    "ltengine_plugins.fusers",
    "ltengine_plugins.diskcache_store",
    "ltengine_plugins.cross_encoder_rerank",
    "ltengine_plugins.llm_judge",
)


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; ltengine continues without it."""


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


class PluginHost:
    """A typed facade over :class:`pluggy.PluginManager` with provenance and a component registry."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.versions: dict[str, str | None] = {}
        self.failed: dict[str, str] = {}
        self._registry: Registry | None = None
        disabled = set(_env_list("LTENGINE_DISABLE_PLUGINS") or [])
        for module_name in DEFAULT_PLUGINS:
            short = module_name.rsplit(".", 1)[-1]
            if module_name in disabled or short in disabled:
                continue
            self._load(module_name, lambda m=module_name: importlib.import_module(m), None)
        if load_entry_points:
            self._load_entry_points(disabled)

    def _load_entry_points(self, disabled: set[str]) -> None:
        allowed = _env_list("LTENGINE_LOAD_PLUGINS")
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled or (allowed is not None and ep.name not in allowed):
                continue
            version = ep.dist.version if ep.dist is not None else None
            self._load(ep.name, ep.load, version)

    def _load(self, name: str, loader: Any, version: str | None) -> None:
        try:
            module = loader()
            if self.pm.is_registered(module):
                return
            self.pm.register(module, name=name)
        except Exception as exc:  # a broken plugin must not break ltengine
            self.failed[name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"ltengine plugin {name!r} failed to load and is skipped: {type(exc).__name__}: {exc}",
                PluginLoadWarning,
                stacklevel=3,
            )
            return
        if version is None and name.startswith(("ltengine.", "ltengine_plugins.")):
            from . import __version__

            version = __version__
        self.versions[name] = version
        self._registry = None

    def register(self, plugin: Any, name: str | None = None) -> str:
        """Register a plugin object or module at run time (tests, notebooks)."""
        registered = self.pm.register(plugin, name=name)
        assert registered is not None
        self.versions[registered] = getattr(plugin, "__version__", None)
        self._registry = None
        return registered

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.versions.pop(name, None)
        self._registry = None

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def registry(self) -> Registry:
        """All registered components (collected on first use, after any (un)registration)."""
        if self._registry is None:
            registry = Registry()
            for kind in KINDS:
                caller = getattr(self.pm.hook, f"register_{kind}s")
                for impl in caller.get_hookimpls():
                    plugin_name = impl.plugin_name

                    def register(cls: Any, aliases: tuple[str, ...] = (), *, _k=kind, _p=plugin_name) -> None:
                        registry.add(_k, cls, aliases=tuple(aliases), plugin=_p)

                    impl.function(register=register)
            self._registry = registry
        return self._registry

    def describe(self) -> list[dict[str, Any]]:
        """One dict per plugin: name, version, hooks it implements and components it registers."""
        registry = self.registry
        out = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            components: dict[str, list[str]] = {}
            for spec in registry:
                if spec.plugin == name:
                    components.setdefault(spec.kind + "s", []).append(spec.name)
            out.append({"name": name, "version": self.versions.get(name), "hooks": hooks, **components})
        for name, error in self.failed.items():
            out.append({"name": name, "error": error})
        return out


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host (created on first use)."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def reset_host() -> None:
    """Forget the process-wide host, so the next :func:`get_host` reloads plugins (e.g. after env changes)."""
    global _HOST
    _HOST = None

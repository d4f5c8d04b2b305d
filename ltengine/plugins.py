"""Plugin loading: built-ins from DEFAULT_PLUGINS, third parties from the ``ltengine`` entry points.

Environment controls:

- ``LTENGINE_LOAD_PLUGINS``: comma-separated allow-list of entry-point plugins (set but empty = none).
- ``LTENGINE_DISABLE_PLUGINS``: comma-separated block-list; applies to built-ins too
  (``faiss_retriever`` or ``ltengine_plugins.faiss_retriever``).

A plugin that fails to import, whose ``register_*``/``register_commands`` hook raises, or whose
components clash with an earlier plugin's names (the first registered, e.g. the built-in, wins) is
skipped with a :class:`PluginLoadWarning` naming it and the error; everything else keeps working and
``ltengine plugins`` lists it with its error.  ``ltengine.stages`` (the core stage dispatcher) is
essential and cannot be disabled; unknown names in the two variables are warned about.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import warnings
from typing import Any

import pluggy

import ltengine.hookspecs as hookspecs
from ltengine.components import KINDS, Kind
from ltengine.errors import DuplicateComponentError, LTEngineError, PluginError, PluginLoadWarning, PluginSettingWarning
from ltengine.registry import Registry

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
    "ltengine_plugins.adapter_encoder",
)


#: Built-in plugins that cannot be disabled: without them nothing runs.
ESSENTIAL_PLUGINS: tuple[str, ...] = ("ltengine.stages",)


def _short(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1]


def _entry_point_names() -> list[str]:
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})


def _check_env_names(disabled: list[str], allowed: list[str] | None) -> set[str]:
    """Warn about essential or unknown names in the env variables; return the names to disable."""
    essential = {n for e in ESSENTIAL_PLUGINS for n in (e, _short(e))}
    kept = [n for n in disabled if n in essential]
    if kept:
        warnings.warn(
            f"LTENGINE_DISABLE_PLUGINS names {', '.join(map(repr, kept))}: the core stage dispatcher "
            f"({', '.join(ESSENTIAL_PLUGINS)}) is essential and cannot be disabled, so it stays loaded; "
            "remove it from LTENGINE_DISABLE_PLUGINS",
            PluginSettingWarning,
            stacklevel=4,
        )
    builtin = {n for m in DEFAULT_PLUGINS for n in (m, _short(m))}
    unknown = [n for n in disabled if n not in builtin]
    unknown_allowed = list(allowed or [])
    if unknown or unknown_allowed:
        entry_points = _entry_point_names()
        unknown = [n for n in unknown if n not in entry_points]
        unknown_allowed = [n for n in unknown_allowed if n not in entry_points]
        known_ep = ", ".join(entry_points) or "none installed"
        for var, names, known in (
            ("LTENGINE_DISABLE_PLUGINS", unknown,
             f"built-in: {', '.join(_short(m) for m in DEFAULT_PLUGINS)}; installed: {known_ep}"),
            ("LTENGINE_LOAD_PLUGINS", unknown_allowed, f"installed (entry points): {known_ep}"),
        ):
            if names:
                warnings.warn(
                    f"{var} names unknown plugin(s) {', '.join(map(repr, names))}, which are ignored. "
                    f"Known plugins: {known}.",
                    PluginSettingWarning,
                    stacklevel=4,
                )
    return set(disabled) - essential


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
        #: Plugins skipped (failed to import, a hook raised, clashing names) -> their error.
        self.failed: dict[str, str] = {}
        self._registry: Registry | None = None
        self._strict: set[str] = set()  # registered at run time with strict=True: their errors raise
        allowed = _env_list("LTENGINE_LOAD_PLUGINS")
        disabled = _check_env_names(_env_list("LTENGINE_DISABLE_PLUGINS") or [], allowed)
        for module_name in DEFAULT_PLUGINS:
            if module_name in disabled or _short(module_name) in disabled:
                continue
            self._load(module_name, lambda m=module_name: importlib.import_module(m), None)
        if load_entry_points:
            self._load_entry_points(disabled, allowed)

    def _load_entry_points(self, disabled: set[str], allowed: list[str] | None) -> None:
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
            from ltengine._version import __version__

            version = __version__
        self.versions[name] = version
        self._registry = None

    def register(self, plugin: Any, name: str | None = None, *, strict: bool = True) -> str:
        """Register a plugin object or module at run time (tests, notebooks).

        ``strict`` (default): if its ``register_*`` hooks raise or clash with registered names, using
        the registry raises that error; ``strict=False``: it is skipped with a PluginLoadWarning, as
        installed plugins are."""
        registered = self.pm.register(plugin, name=name)
        assert registered is not None
        self.failed.pop(registered, None)
        self.versions[registered] = getattr(plugin, "__version__", None)
        if strict:
            self._strict.add(registered)
        self._registry = None
        return registered

    def unregister(self, name: str) -> None:
        """Remove a plugin (also one already skipped as broken)."""
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self.versions.pop(name, None)
        self.failed.pop(name, None)
        self._strict.discard(name)
        self._registry = None

    def _skip(self, name: str, error: str) -> None:
        """Unregister a broken plugin, remember its error and warn once."""
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self.versions.pop(name, None)
        self.failed[name] = error
        warnings.warn(
            f"ltengine plugin {name!r} is broken and is skipped: {error.rstrip('.')}. ltengine continues without it; "
            f"fix or uninstall it, or set LTENGINE_DISABLE_PLUGINS={name}",
            PluginLoadWarning,
            stacklevel=4,
        )

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def registry(self) -> Registry:
        """All registered components (collected on first use, after any (un)registration)."""
        if self._registry is None:
            registry, broken = self._collect()
            for name in broken:
                if name in self._strict:
                    raise broken[name][1]
            for name, (error, _) in broken.items():
                self._skip(name, error)
            self._registry = registry
        return self._registry

    def _collect(self) -> tuple[Registry, dict[str, tuple[str, Exception]]]:
        """Call each plugin's ``register_*`` hooks on its own; the registry of the healthy plugins and,
        per broken plugin, its error message and exception.  On a name clash the earlier plugin wins."""
        entries: list[tuple[str, Kind, Any, Any]] = []
        broken: dict[str, tuple[str, Exception]] = {}
        for kind in KINDS:
            for impl in getattr(self.pm.hook, f"register_{kind}s").get_hookimpls():
                plugin = impl.plugin_name
                found: list[tuple[str, Kind, Any, Any]] = []

                def register(cls: Any, aliases: Any = (), *, _k: Kind = kind, _p: str = plugin,
                             _found: list = found) -> None:
                    _found.append((_p, _k, cls, aliases))

                try:
                    impl.function(register=register)
                except Exception as exc:  # a broken plugin must not break ltengine
                    error = f"register_{kind}s hook raised {type(exc).__name__}: {exc}"
                    wrapped = PluginError(f"plugin {plugin!r}: {error}")
                    wrapped.__cause__ = exc
                    broken.setdefault(plugin, (error, wrapped))
                else:
                    entries.extend(found)
        while True:  # each pass drops one clashing plugin; dropping never creates a new clash
            registry, current = Registry(), ""
            try:
                for plugin, kind, cls, aliases in entries:
                    if plugin not in broken:
                        current = plugin
                        registry.add(kind, cls, aliases=tuple(aliases), plugin=plugin)
            except (PluginError, DuplicateComponentError) as exc:
                broken[current] = (f"{type(exc).__name__}: {exc}", exc)
            except Exception as exc:
                wrapped = PluginError(f"plugin {current!r} registered an invalid component: {type(exc).__name__}: {exc}")
                broken[current] = (f"PluginError: {wrapped}", wrapped)
            else:
                return registry, broken

    def add_commands(self, group: Any) -> None:
        """Call each plugin's ``register_commands`` on its own; one that raises is skipped with a warning."""
        for impl in reversed(self.pm.hook.register_commands.get_hookimpls()):
            try:
                impl.function(cli=group)
            except Exception as exc:
                self._skip(impl.plugin_name, f"register_commands hook raised {type(exc).__name__}: {exc}")
                self._registry = None

    def describe(self) -> list[dict[str, Any]]:
        """One dict per plugin: name, version, hooks it implements and components it registers; a broken
        plugin (also one registered at run time with ``strict=True``) is listed with its ``error``."""
        try:
            registry, broken = self.registry, {}
        except LTEngineError:
            registry, broken = self._collect()
        out = []
        for name, plugin in self.pm.list_name_plugin():
            if name in broken:
                out.append({"name": name, "version": self.versions.get(name), "error": broken[name][0]})
                continue
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

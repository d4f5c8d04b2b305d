"""Component registry: which plugin registered which blocker, encoder, retriever, reranker and fuser."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from ltengine.components import KINDS, Blocker, Component, Encoder, Fuser, Kind, Reranker, Retriever
from ltengine.errors import DuplicateComponentError, PluginError, UnknownComponentError, did_you_mean

BASES: dict[Kind, type[Component]] = {
    "blocker": Blocker,
    "encoder": Encoder,
    "retriever": Retriever,
    "reranker": Reranker,
    "fuser": Fuser,
}


@dataclasses.dataclass(frozen=True)
class ComponentSpec:
    """A registered component class and its provenance."""

    kind: Kind
    name: str
    cls: type[Component]
    aliases: tuple[str, ...]
    plugin: str

    def create(self, **kwargs: Any) -> Any:
        """Instantiate the component (options are validated by the component)."""
        return self.cls(**kwargs)


class Registry:
    """Components by kind and name (aliases included)."""

    def __init__(self) -> None:
        self._specs: dict[Kind, dict[str, ComponentSpec]] = {k: {} for k in KINDS}
        self._lookup: dict[Kind, dict[str, ComponentSpec]] = {k: {} for k in KINDS}

    def add(self, kind: Kind, cls: type[Component], *, aliases: tuple[str, ...] = (), plugin: str) -> None:
        """Register ``cls``; a name or alias already taken raises DuplicateComponentError naming both plugins."""
        base = BASES[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"plugin {plugin!r} registered {cls!r} as a {kind}, but it is not a subclass of "
                f"ltengine.{base.__name__}"
            )
        name = cls.name  # declared on Component ("" until a subclass names itself)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered {cls.__name__} without a `name` class attribute")
        aliases = tuple(dict.fromkeys(a for a in (*tuple(aliases), *cls.aliases) if a != name))
        for label in (name, *aliases):
            taken = self._lookup[kind].get(label)
            if taken is not None:
                raise DuplicateComponentError(
                    f"{kind} name {label!r} is registered twice: by plugin {taken.plugin!r} "
                    f"({taken.cls.__module__}.{taken.cls.__name__}) and by plugin {plugin!r} "
                    f"({cls.__module__}.{cls.__name__}). Disable one with LTENGINE_DISABLE_PLUGINS."
                )
        spec = ComponentSpec(kind, name, cls, aliases, plugin)
        self._specs[kind][name] = spec
        for label in (name, *aliases):
            self._lookup[kind][label] = spec

    def get(self, kind: Kind, name: str) -> ComponentSpec:
        """Look a component up by name or alias; unknown names list what is available."""
        spec = self._lookup[kind].get(name)
        if spec is None:
            raise UnknownComponentError(
                f"unknown {kind} {name!r}.{did_you_mean(name, self._lookup[kind])} "
                f"Available {kind}s: {self.describe(kind)}."
            )
        return spec

    def has(self, kind: Kind, name: str) -> bool:
        """Whether ``name`` (a name or alias) is registered for ``kind``."""
        return name in self._lookup[kind]

    def specs(self, kind: Kind) -> list[ComponentSpec]:
        """The components of ``kind`` in registration order."""
        return list(self._specs[kind].values())

    def __iter__(self) -> Iterator[ComponentSpec]:
        for kind in KINDS:
            yield from self._specs[kind].values()

    def describe(self, kind: Kind) -> str:
        parts = []
        for spec in self._specs[kind].values():
            alias = f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""
            parts.append(f"{spec.name}{alias}")
        return "; ".join(parts) or "none"

"""The hooks a plugin can implement.  Each is a documented contract.

Component hooks receive a ``register`` callback rather than returning values, so the host keeps
names, aliases, duplicates and provenance under control, and listing components imports nothing
heavy (torch, faiss, litellm load only when a component is used)::

    from ltengine import hookimpl, Encoder

    class MyEncoder(Encoder):
        name = "mine"
        ...

    @hookimpl
    def register_encoders(register):
        register(MyEncoder, aliases=("my-encoder",))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

    from ltengine.cache import Cache
    from ltengine.components import Component
    from ltengine.config import LinkConfig
    from ltengine.run import RunContext

PROJECT = "ltengine"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The callback passed to the ``register_*`` hooks."""

    def __call__(self, component: type[Component], *, aliases: tuple[str, ...] = ()) -> None: ...


@hookspec
def register_blockers(register: Register) -> None:
    """Register Blocker classes: ``register(MyBlocker, aliases=(...))``."""


@hookspec
def register_encoders(register: Register) -> None:
    """Register Encoder classes: ``register(MyEncoder, aliases=(...))``."""


@hookspec
def register_retrievers(register: Register) -> None:
    """Register Retriever classes: ``register(MyRetriever, aliases=(...))``."""


@hookspec
def register_rerankers(register: Register) -> None:
    """Register Reranker classes: ``register(MyReranker, aliases=(...))``."""


@hookspec
def register_fusers(register: Register) -> None:
    """Register Fuser classes (how the hybrid mode combines semantic and lexical scores):
    ``register(MyFuser, aliases=(...))``; choose one with ``fuser="name"`` (LinkConfig, merge, CLI)."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands to the ``ltengine`` CLI group: ``@cli.command() def mine(): ...``."""


@hookspec(firstresult=True)
def run_stage(stage: str, component: Component, payload: dict[str, Any], context: RunContext) -> Any:
    """Run one stage of the pipeline and return its result.  Stops at the first non-None result.

    ``stage`` and ``payload`` keys:

    - ``"block"``:  ``records`` (DataFrame)            -> Series of keys (``Blocker.keys``)
    - ``"encode"``: ``texts`` (list[str]), ``role``     -> float32 array (``Encoder.encode``)
    - ``"build"``:  ``vectors``, ``ids``                -> None (``Retriever.build``)
    - ``"search"``: ``vectors``, ``ids``, ``k`` or ``threshold`` -> candidate DataFrame

    For retrievers with ``inputs = "texts"`` (the lexical ``char-ngram``), ``vectors`` in the
    ``"build"`` and ``"search"`` payloads holds the records' texts (a list of str), not embeddings.
    - ``"rerank"``: ``pairs``, ``left``, ``right``      -> Series or DataFrame (``Reranker.score``)

    ``context`` is the running :class:`ltengine.run.RunContext` (config, timings, report).
    The core implementation is ``trylast``; wrap it with ``@hookimpl(wrapper=True)`` to time,
    trace or cache any stage::

        @hookimpl(wrapper=True)
        def run_stage(stage, component, payload, context):
            start = time.perf_counter()
            result = yield
            print(stage, time.perf_counter() - start)
            return result
    """


@hookspec(firstresult=True)
def make_cache(namespace: str, config: LinkConfig) -> Cache | None:
    """Return the cache used for ``namespace`` (e.g. ``"embeddings"``), or None to defer.

    Stops at the first non-None result; the built-in diskcache store is ``trylast``.  ``config`` is
    the :class:`ltengine.config.LinkConfig` of the run (``config.cache_dir``, ``config.cache``).
    """

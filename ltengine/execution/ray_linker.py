"""The Linker on Ray Data (``executor="ray"``): the ordinary :class:`~ltengine.engine.linker.Linker` with two
of its components distributed:

- the encoder: each side's distinct texts are encoded by Ray Data ``map_batches`` over an actor pool, in the
  chunks the Linker will ask for, and streamed to it in that order (:mod:`ltengine.execution.ray_encoding`);
- the semantic retriever: the right side is sharded over actors, one index per shard, queries fanned
  out and the per-shard top-k merged (:mod:`ltengine.execution.ray_shards`);
- rerankers that score each pair on its own (the cross-encoder): the pairs are split over an actor pool
  (:mod:`ltengine.execution.ray_rerank`).

Everything fitted globally stays global and in this process: the lexical vocabulary and IDF, the
fusion, the match-probability calibration, the LLM judge's budget, cache and journal (its requests run as Ray
tasks) and the output, so a Ray run gives the local run's links.  ``out.attrs["ltengine"]["report"]["execution"]`` lists the actors and shards used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ltengine.components import Role
from ltengine.config import LinkConfig, as_config
from ltengine.engine.encoding import resolve_encoder
from ltengine.engine.linker import Linker
from ltengine.engine.text import check_columns, check_frame, serialize
from ltengine.execution.ray_encoding import RayEncoder
from ltengine.execution.ray_rerank import RayRequestsSpec, RayRerankerSpec
from ltengine.execution.ray_session import RayOptions, ray_options, start_ray
from ltengine.execution.ray_shards import ShardingHost, ShardingRegistry, ShardPool
from ltengine.plugins import PluginHost, get_host
from ltengine.registry import ComponentSpec, Registry
from ltengine.run import RunContext


class RayRegistry(ShardingRegistry):
    """The plugin host's components for a Ray run: the semantic retriever sharded, rerankers that score each
    pair on its own run on an actor pool, and rerankers that call an LLM send their requests from Ray tasks
    (:mod:`ltengine.execution.ray_rerank`)."""

    def __init__(self, registry: Registry, retriever: str, pool: ShardPool, split: bool, options: RayOptions) -> None:
        super().__init__(registry, retriever, pool, split)
        self.ray_options = options

    def get(self, kind: Any, name: str) -> ComponentSpec:
        spec = super().get(kind, name)
        if kind == "reranker" and spec.cls.scores_pairs_independently:  # type: ignore[attr-defined]
            return RayRerankerSpec(spec.kind, spec.name, spec.cls, spec.aliases, spec.plugin,
                                   ray_options=self.ray_options)
        if kind == "reranker" and spec.cls.calls_llm:  # type: ignore[attr-defined]
            return RayRequestsSpec(spec.kind, spec.name, spec.cls, spec.aliases, spec.plugin,
                                   ray_options=self.ray_options)
        return spec


class RayLinker(Linker):
    """A :class:`~ltengine.engine.linker.Linker` whose encoding and vector search run on Ray (see the module
    docs); ``config.executor_options`` are :class:`~ltengine.execution.ray_session.RayOptions`."""

    def __init__(self, config: LinkConfig | Mapping[str, Any] | str | Path | None = None, *,
                 host: PluginHost | None = None, **overrides: Any) -> None:
        config = as_config(config)
        config = config.replace(**overrides) if overrides else config
        self.ray_options = ray_options(config.executor_options)  # bad options fail before Ray starts
        base = host or get_host()
        self.pool = ShardPool(self.ray_options, config.retriever, dict(config.retriever_options))
        registry = RayRegistry(base.registry, config.retriever, self.pool, not config.block_on, self.ray_options)
        self.ray_session: dict[str, Any] = {}
        self._ray_encoder: RayEncoder | None = None
        super().__init__(config, host=ShardingHost(base, registry))  # type: ignore[arg-type]

    @property
    def encoder(self) -> RayEncoder:
        if self._ray_encoder is None:
            inner = resolve_encoder(self.host.registry, self.config)
            self._ray_encoder = RayEncoder(inner, self.config, self.ray_options)
        return self._ray_encoder

    def _start(self) -> None:
        if not self.ray_session:
            self.ray_session = start_ray(self.ray_options)

    def _prepare(self, df: Any, columns: tuple[str, ...], side: str, role: Role) -> None:
        """Start encoding ``df``'s distinct texts with Ray Data (the Linker reads them as they come)."""
        self._start()
        if self.config.mode == "lexical" or not columns:
            return
        df = check_frame(df, side)
        check_columns(df, columns, side)
        texts = serialize(df, columns, side, keep_symbols=self.config.keep_symbol_records).to_numpy(dtype=object)
        cache = RunContext(self.config, self.host).cache("embeddings")  # type: ignore[arg-type]
        self.encoder.prepare(texts[texts != ""], role, cache)

    def execution_report(self) -> dict[str, Any]:
        """The Ray session, the encoding actors per role and the shards (rows, parts, searches)."""
        encoder = self._ray_encoder
        runs = encoder.runs if encoder is not None else {}
        actors = sorted({actor for role_runs in runs.values() for run in role_runs for actor in run["actors"]})
        encoding = {role: {"runs": len(role_runs), "texts": sum(r["texts"] for r in role_runs),
                           "chunks": sum(r["chunks"] for r in role_runs),
                           "batches": sum(r["batches"] for r in role_runs),
                           "seconds": round(sum(r["seconds"] for r in role_runs), 3),
                           "actors": sorted({a for r in role_runs for a in r["actors"]})}
                    for role, role_runs in runs.items()}
        shards = self.pool.report()
        return {"executor": "ray", "ray": dict(self.ray_session), "encode_actors": actors, "encoding": encoding,
                "shards": shards, "shards_used": sum(1 for s in shards if s["rows"])}

    def fit(self, right: pd.DataFrame, *, expected_queries: int | None = None) -> RayLinker:
        self._prepare(right, self.config.right_on, "right", "document")
        try:
            super().fit(right, expected_queries=expected_queries)
        finally:
            self.encoder.forget()
        self.context.report["execution"] = self.execution_report()
        return self

    def candidates(self, left: pd.DataFrame, *, k: int | None = None, threshold: float | None = None,
                   context: RunContext | None = None, self_offset: int | None = None) -> pd.DataFrame:
        self._prepare(left, self.config.left_on, "left", "query")
        try:
            pairs = super().candidates(left, k=k, threshold=threshold, context=context, self_offset=self_offset)
        finally:
            self.encoder.forget()
        (context or self.context).report["execution"] = self.execution_report()
        return pairs



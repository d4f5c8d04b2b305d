"""Reranking with Ray Data: a reranker that scores each pair on its own (``Reranker.scores_pairs_independently``,
the cross-encoder) gets its candidate pairs split into batches over an actor pool, each actor loading the
model once; the scores come back in the pairs' order.  Rerankers that need the whole run (the LLM judge:
its budget, cache and journal are the run's) stay in this process.  The stage's report gets a ``ray``
entry: actors, batches, pairs and seconds."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pandas as pd

from ltengine.components import Reranker
from ltengine.errors import PluginError
from ltengine.execution.ray_session import RayOptions, collect_batches
from ltengine.registry import ComponentSpec

#: The pair columns a reranker reads (``Reranker.score``'s documented input).
PAIR_COLUMNS = ("id_l", "id_r", "retrieval_score", "rank", "text_l", "text_r")


class _RerankBatches:
    """A Ray Data actor: creates the run's reranker once (by its registered name), then scores batches."""

    def __init__(self, name: str, model: str | None, options: dict[str, Any]) -> None:
        import ray

        from ltengine.plugins import get_host

        self.reranker = get_host().registry.get("reranker", name).create(model=model, options=options)
        self.actor = ray.get_runtime_context().get_actor_id() or "driver"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pairs = pd.DataFrame({column: batch[column] for column in PAIR_COLUMNS if column in batch})
        result = self.reranker.score(pairs, pd.DataFrame(), pd.DataFrame())
        frame = result.to_frame("score") if isinstance(result, pd.Series) else result
        if "score" not in frame.columns or len(frame) != len(pairs):
            raise PluginError(f"reranker {self.reranker.name!r} must return one score per pair under Ray")
        out = {column: frame[column].to_numpy() for column in frame.columns}
        out.update(row=batch["row"], actor=np.full(len(pairs), self.actor, dtype=object))
        return out


class RayReranker(Reranker):
    """The run's reranker as the chain sees it: same name and class attributes, but :meth:`score` sends the
    pairs to an actor pool of ``options.rerank_actors`` rerankers created from ``spec``."""

    def __init__(self, cls: type[Reranker], ray_options: RayOptions, model: str | None = None,
                 options: Any = None) -> None:
        self.inner = cls(model=model, options=options)  # checks the options here, before Ray starts work
        super().__init__(model=self.inner.model)
        self.name = cls.name  # type: ignore[misc]
        self.ray_options = ray_options
        self.inner_options = dataclasses.asdict(self.inner.options)
        self._run: Any = None

    def attach(self, run: Any) -> None:
        self._run = run

    def score(self, pairs: pd.DataFrame, left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
        import ray
        import ray.data

        o = self.ray_options
        n = len(pairs)
        if n == 0:
            return pd.DataFrame({"score": np.zeros(0)}, index=pairs.index)
        gpus = o.rerank_gpus
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0.0) > 0 else 0.0
        columns = [c for c in PAIR_COLUMNS if c in pairs.columns]
        items = [dict(zip(columns, values), row=row) for row, values in
                 enumerate(pairs[columns].itertuples(index=False, name=None))]
        blocks = max(o.rerank_actors, min(-(-n // o.rerank_batch_size), 4096))
        dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            _RerankBatches, fn_constructor_kwargs={"name": self.name, "model": self.inner.model,
                                                   "options": self.inner_options},
            batch_size=o.rerank_batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=o.rerank_actors), num_cpus=o.rerank_cpus, num_gpus=gpus)
        start = time.perf_counter()
        found: dict[str, np.ndarray] = {}

        def keep(batch: dict[str, np.ndarray]) -> None:
            rows = np.asarray(batch["row"], dtype=np.int64)
            for column, values in batch.items():
                if column in ("row", "actor"):
                    continue
                if column not in found:
                    found[column] = np.full(n, np.nan) if values.dtype.kind in "fiu" else np.full(n, None, object)
                found[column][rows] = values

        actors, batches = collect_batches(dataset, keep)
        if self._run is not None:
            self._run.report["ray"] = {"actors": actors, "batches": batches, "pairs": n, "gpus_per_actor": gpus,
                                       "seconds": round(time.perf_counter() - start, 3)}
        return pd.DataFrame(found, index=pairs.index)


@dataclasses.dataclass(frozen=True)
class RayRerankerSpec(ComponentSpec):
    """A registered reranker whose :meth:`create` gives a :class:`RayReranker` (class attributes unchanged)."""

    ray_options: RayOptions | None = None

    def create(self, **kwargs: Any) -> Any:
        assert self.ray_options is not None
        return RayReranker(self.cls, self.ray_options, model=kwargs.get("model"),  # type: ignore[arg-type]
                           options=kwargs.get("options"))

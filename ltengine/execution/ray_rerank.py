"""Reranking on Ray.

- A reranker that scores each pair on its own (``Reranker.scores_pairs_independently``, the cross-encoder)
  gets its candidate pairs split into batches over a Ray Data actor pool, each actor loading the model once;
  the scores come back in the pairs' order.  The stage's report gets a ``ray`` entry: actors, batches, pairs
  and seconds.
- A reranker that calls an LLM (``Reranker.calls_llm``, the judge) keeps its budget, cache and journal in
  this process, but its requests run as Ray tasks (:class:`RayRequestPools`, handed over by
  ``Reranker.use_request_pools``), ``concurrency`` at a time as locally; its report's ``ray`` entry lists
  the tasks and the worker processes that sent them."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ltengine.components import RequestPools, Reranker
from ltengine.errors import PluginError
from ltengine.execution.ray_session import RayOptions, collect_batches, remote_cause
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


def _call_remotely(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any, str]:
    """A Ray task: ``fn(*args)``; (True, result) or (False, the exception), and the process it ran in."""
    import os

    import ray

    where = f"{ray.get_runtime_context().get_node_id()[:8]}:{os.getpid()}"
    try:
        return True, fn(*args), where
    except Exception as exc:  # noqa: BLE001 - handed back to the caller's future as itself
        return False, exc, where


def _resolve(future: cf.Future, ok: bool, value: Any) -> None:
    """Set ``future``'s result (``ok``) or exception unless it is already set (a cancel and the answer may race)."""
    try:
        future.set_result(value) if ok else future.set_exception(value)
    except cf.InvalidStateError:
        pass


class RayRequestPool(cf.Executor):
    """A ``concurrent.futures.Executor`` whose calls run as Ray tasks (``request_cpus`` CPUs each, 0 by
    default: they wait on a service); each call's function and arguments are pickled to the worker."""

    def __init__(self, pools: RayRequestPools) -> None:
        self.pools = pools
        self.pending: dict[Any, cf.Future] = {}
        self.lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        if kwargs:
            raise TypeError("RayRequestPool.submit takes positional arguments only")
        ref = self.pools.remote().remote(fn, args)
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        with self.lock:
            self.pending[ref] = future

        def settle(done: cf.Future) -> None:
            with self.lock:
                self.pending.pop(ref, None)
            try:
                ok, value, where = done.result()
            except BaseException as exc:  # noqa: BLE001 - the task itself failed (worker died, cancelled)
                _resolve(future, False, remote_cause(exc))
                return
            self.pools.ran(where)
            _resolve(future, ok, value)

        ref.future().add_done_callback(settle)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        import ray

        with self.lock:
            pending = dict(self.pending)
        if cancel_futures:
            for ref, future in pending.items():
                ray.cancel(ref)
                _resolve(future, False, cf.CancelledError())
        elif wait:
            cf.wait(list(pending.values()))


class RayRequestPools(RequestPools):
    """:class:`RayRequestPool` executors for one reranker, and what ran where (tasks per worker process)."""

    def __init__(self, options: RayOptions) -> None:
        self.options = options
        self.tasks: dict[str, int] = {}
        self.lock = threading.Lock()
        self._remote: Any = None

    def remote(self) -> Any:
        if self._remote is None:
            import ray

            self._remote = ray.remote(_call_remotely).options(num_cpus=self.options.request_cpus, max_retries=0)
        return self._remote

    def ran(self, where: str) -> None:
        with self.lock:
            self.tasks[where] = self.tasks.get(where, 0) + 1

    def __call__(self, concurrency: int) -> cf.Executor:
        return RayRequestPool(self)

    def report(self) -> dict[str, Any]:
        with self.lock:
            return {"tasks": sum(self.tasks.values()), "workers": dict(sorted(self.tasks.items()))}


@dataclasses.dataclass(frozen=True)
class RayRequestsSpec(ComponentSpec):
    """A registered reranker that calls an LLM, created with :class:`RayRequestPools` for its requests."""

    ray_options: RayOptions | None = None

    def create(self, **kwargs: Any) -> Any:
        assert self.ray_options is not None
        reranker = self.cls(**kwargs)
        reranker.use_request_pools(RayRequestPools(self.ray_options))  # type: ignore[attr-defined]
        return reranker

"""The right-hand index, sharded over Ray actors.

Each shard actor holds indexes of the run's own retriever (``LinkConfig.retriever``, e.g. FAISS),
built in parallel.  Unblocked, the one right-hand block is split over every shard by a hash of the
row id; blocked, each block goes whole to the shard holding the fewest rows so far.  A search is
fanned out to the shards holding the block and their top-k are merged into the global top-k.

The Linker sees a :class:`ShardedRetriever` per block (an ordinary Retriever), handed out by a
:class:`ShardingRegistry` in place of the configured retriever: all else (lexical index, fusion,
calibration, output) runs as in a local link.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pandas as pd

from ltengine.components import Retriever
from ltengine.execution.ray_session import RayOptions, node_share, ray_get
from ltengine.registry import ComponentSpec, Registry
from ltengine.retrieval import empty_candidates, rerank_positions

#: Multiplier of the id hash that spreads right rows over shards (Knuth's multiplicative hash).
_HASH = np.uint64(2654435761)
#: Bytes per piece when a shard's vectors are sent: under Ray's inline-argument limit (100 KiB), so each piece goes
#: with the call itself, never through the object store, whose pages stay resident after a large object is freed
#: (2 GiB at 1M rows: README, "Scale out with Ray").
_PIECE_BYTES = 96 * 1024
#: Pieces in flight per shard while sending.
_PIECES_IN_FLIGHT = 256


class _Shard:
    """A shard actor: one index of the configured retriever per block part it holds."""

    def __init__(self, retriever: str, options: dict[str, Any]) -> None:
        from ltengine.plugins import get_host

        self.spec = get_host().registry.get("retriever", retriever)
        self.options = options
        self.parts: dict[int, Any] = {}
        self.incoming: dict[int, np.ndarray] = {}  # part -> its vectors, while they arrive

    def receive(self, part: int, start: int, rows: int, piece: np.ndarray) -> None:
        """Copy a piece of one part's vectors (its rows ``start`` onwards; ``rows`` in all) into the part's buffer."""
        buffer = self.incoming.get(part)
        if buffer is None:
            buffer = self.incoming[part] = np.empty((rows, piece.shape[1]), dtype=np.float32)
        buffer[start : start + len(piece)] = piece

    def build(self, part: int, ids: np.ndarray, expected_queries: int | None) -> tuple[str, float]:
        """Index one part from the vectors received; its index kind and the seconds the build took."""
        start = time.perf_counter()
        retriever = self.spec.create(options=self.options)
        retriever.expected_queries = expected_queries
        retriever.build(self.incoming.pop(part), ids)
        self.parts[part] = retriever
        return retriever.index_type, time.perf_counter() - start

    def search(self, part: int, vectors: np.ndarray, ids: np.ndarray, k: int, threshold: float | None
               ) -> tuple[pd.DataFrame, float]:
        """Search one part; the candidates and the seconds the search took."""
        start = time.perf_counter()
        retriever = self.parts[part]
        if threshold is not None:
            found = retriever.search_range(vectors, ids, threshold)
        else:
            found = retriever.search(vectors, ids, k)
        return found, time.perf_counter() - start

    def where(self) -> dict[str, Any]:
        import os

        import ray

        context = ray.get_runtime_context()
        return {"actor": context.get_actor_id(), "node": context.get_node_id(), "pid": os.getpid(),
                "threads": int(os.environ.get("OMP_NUM_THREADS") or 0)}


@dataclasses.dataclass
class ShardStats:
    """What one shard did, for the run report."""

    actor: str = ""
    node: str = ""
    threads: int = 0
    rows: int = 0
    parts: int = 0
    searches: int = 0
    queries: int = 0
    build_s: float = 0.0
    search_s: float = 0.0
    index: dict[str, int] = dataclasses.field(default_factory=dict)


class ShardPool:
    """The shard actors of one fitted Linker (started on the first build) and what each holds."""

    def __init__(self, options: RayOptions, retriever: str, retriever_options: dict[str, Any]) -> None:
        self.options = options
        self.retriever = retriever
        self.retriever_options = dict(retriever_options)
        self.actors: list[Any] = []
        self.stats: list[ShardStats] = []
        self.next_part = 0

    def start(self) -> None:
        """Start the shard actors (spread over the cluster's nodes) if not started."""
        if self.actors:
            return
        import ray

        threads = {"OMP_NUM_THREADS": str(self.options.shard_threads or node_share(self.options.shards))}
        remote = ray.remote(_Shard).options(num_cpus=self.options.shard_cpus, scheduling_strategy="SPREAD",
                                            runtime_env={"env_vars": threads})
        self.actors = [remote.remote(self.retriever, self.retriever_options) for _ in range(self.options.shards)]
        self.stats = [ShardStats() for _ in self.actors]
        for stats, where in zip(self.stats, ray_get([actor.where.remote() for actor in self.actors])):
            stats.actor, stats.node, stats.threads = where["actor"], where["node"], where["threads"]

    def new_part(self) -> int:
        self.next_part += 1
        return self.next_part

    def report(self) -> list[dict[str, Any]]:
        return [{"shard": number, **dataclasses.asdict(stats)} for number, stats in enumerate(self.stats)]


def send_rows(actor: Any, part: int, vectors: np.ndarray, rows: np.ndarray) -> None:
    """Send ``vectors[rows]`` to a shard actor as one part, in pieces of at most ``_PIECE_BYTES``."""
    step = max(1, _PIECE_BYTES // max(1, vectors.shape[1] * 4))
    in_flight: list[Any] = []
    for start in range(0, len(rows), step):
        piece = np.ascontiguousarray(vectors[rows[start : start + step]], dtype=np.float32)
        in_flight.append(actor.receive.remote(part, start, len(rows), piece))
        if len(in_flight) >= _PIECES_IN_FLIGHT:
            ray_get(in_flight.pop(0))
    ray_get(in_flight)


class ShardedRetriever(Retriever):
    """One block of the right-hand index, held by shard actors (see the module docs)."""

    name = "ray-shards"

    def __init__(self, pool: ShardPool, split: bool) -> None:
        super().__init__()
        self.pool = pool
        self.split = split  # unblocked: the block is split over every shard
        self.parts: list[tuple[int, int, int]] = []  # (shard, part, rows)
        self.pending: list[Any] = []
        self.kinds: list[str] = []

    def build(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        pool = self.pool
        pool.start()
        ids = np.asarray(ids, dtype=np.int64)
        if self.split:
            shard_of = (ids.astype(np.uint64) * _HASH % np.uint64(2**32) % np.uint64(len(pool.actors))).astype(int)
            members = [np.flatnonzero(shard_of == shard) for shard in range(len(pool.actors))]
        else:
            lightest = min(range(len(pool.actors)), key=lambda shard: pool.stats[shard].rows)
            members = [np.arange(len(ids)) if shard == lightest else np.zeros(0, np.int64)
                       for shard in range(len(pool.actors))]
        for shard, rows in enumerate(members):
            if len(rows) == 0:
                continue
            part = pool.new_part()
            send_rows(pool.actors[shard], part, vectors, rows)
            self.pending.append(pool.actors[shard].build.remote(part, ids[rows], self.expected_queries))
            self.parts.append((shard, part, len(rows)))
            pool.stats[shard].rows += len(rows)
            pool.stats[shard].parts += 1
        self.size = len(ids)

    def _built(self) -> None:
        if self.pending:  # builds run in parallel; the first search (or report) waits for them
            built = ray_get(self.pending)
            self.kinds = [kind for kind, _ in built]
            for (shard, _, _), (kind, seconds) in zip(self.parts, built):
                stats = self.pool.stats[shard]
                stats.index[kind] = stats.index.get(kind, 0) + 1
                stats.build_s += seconds
            self.pending = []

    @property
    def index_type(self) -> str:
        self._built()
        return self.kinds[0] if len(set(self.kinds)) == 1 else "+".join(sorted(set(self.kinds))) or self.name

    def _fan_out(self, vectors: np.ndarray, ids: np.ndarray, k: int, threshold: float | None) -> pd.DataFrame:
        import ray

        self._built()
        queries = ray.put(np.ascontiguousarray(vectors))
        refs, shards = [], []
        for shard, part, rows in self.parts:
            refs.append(self.pool.actors[shard].search.remote(part, queries, ids, min(k, rows), threshold))
            shards.append(shard)
        found = []
        for shard, (frame, seconds) in zip(shards, ray_get(refs)):
            stats = self.pool.stats[shard]
            stats.searches += 1
            stats.queries += len(ids)
            stats.search_s += seconds
            if len(frame):
                found.append(frame)
        if not found:
            return empty_candidates()
        if len(found) == 1:
            return found[0]
        merged = rerank_positions(pd.concat(found, ignore_index=True))
        return merged if threshold is not None else merged[merged["rank"] <= k].reset_index(drop=True)

    def search(self, vectors: np.ndarray, ids: np.ndarray, k: int) -> pd.DataFrame:
        return self._fan_out(vectors, np.asarray(ids, dtype=np.int64), k, None)

    def search_range(self, vectors: np.ndarray, ids: np.ndarray, threshold: float) -> pd.DataFrame:
        return self._fan_out(vectors, np.asarray(ids, dtype=np.int64), 0, threshold)


@dataclasses.dataclass(frozen=True)
class _ShardedSpec(ComponentSpec):
    """The configured retriever's registry entry, creating :class:`ShardedRetriever` proxies instead."""

    pool: ShardPool | None = None
    split: bool = True

    def create(self, **kwargs: Any) -> Any:
        assert self.pool is not None
        return ShardedRetriever(self.pool, self.split)


class ShardingRegistry(Registry):
    """The plugin host's components, except that the run's semantic retriever is sharded."""

    def __init__(self, registry: Registry, retriever: str, pool: ShardPool, split: bool) -> None:
        super().__init__()
        for spec in registry:
            self.add(spec.kind, spec.cls, aliases=spec.aliases, plugin=spec.plugin)
        self.retriever, self.pool, self.split = retriever, pool, split

    def get(self, kind: Any, name: str) -> ComponentSpec:
        spec = super().get(kind, name)
        if kind == "retriever" and name == self.retriever:
            return _ShardedSpec(spec.kind, spec.name, spec.cls, spec.aliases, spec.plugin, pool=self.pool,
                                split=self.split)
        return spec


class ShardingHost:
    """A plugin host (:class:`ltengine.run.StageHost`) whose registry shards the semantic retriever."""

    def __init__(self, host: Any, registry: ShardingRegistry) -> None:
        self._host = host
        self._registry = registry

    @property
    def hook(self) -> Any:
        return self._host.hook

    @property
    def registry(self) -> ShardingRegistry:
        return self._registry

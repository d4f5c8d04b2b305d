"""Encoding with Ray Data: the distinct texts of one side, in the chunks the Linker will ask for, go through
``map_batches`` over an actor pool, each actor loading the model once; the vectors are then served to the
ordinary Linker by :class:`RayEncoder`, an encoder that hands each chunk over once (so caching, dedup and
normalisation stay the engine's own, :func:`ltengine.engine.encoding.encode_texts`).

The chunks are the local executor's: the side's distinct texts sorted, ``LinkConfig.encode_chunk_size`` at a
time, each encoded by one call of the encoder.  So a Ray run feeds the model exactly the batches a local run
does and gets the same vectors, bit for bit (an encoder's float rounding can depend on the batch a text is in).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ltengine.cache import Cache, NullCache, content_key
from ltengine.components import Encoder, Role
from ltengine.config import LinkConfig
from ltengine.engine.encoding import chunk_identity, distinct_sorted
from ltengine.errors import PluginError
from ltengine.execution.ray_session import RayOptions, collect_batches


class _EncodeChunks:
    """A Ray Data actor: resolves and loads the run's encoder once, then encodes chunks of texts, one encoder
    call per chunk (as the local executor calls it)."""

    def __init__(self, config: LinkConfig, role: Role) -> None:
        import ray

        from ltengine.engine.encoding import resolve_encoder
        from ltengine.plugins import get_host

        self.encoder = resolve_encoder(get_host().registry, config)
        self.role = role
        self.actor = ray.get_runtime_context().get_actor_id() or "driver"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        chunks, positions, parts = [], [], []
        for chunk, texts in zip(batch["chunk"], batch["texts"]):
            vectors = np.asarray(self.encoder.encode([str(text) for text in texts], role=self.role), dtype=np.float32)
            if vectors.ndim != 2 or len(vectors) != len(texts):
                raise PluginError(f"encoder returned vectors of shape {vectors.shape} for {len(texts)} texts "
                                  "under Ray; expected (texts, dimension)")
            chunks.append(np.full(len(texts), chunk))
            positions.append(np.arange(len(texts)))
            parts.append(vectors)
        rows = sum(map(len, parts))
        return {"chunk": np.concatenate(chunks), "position": np.concatenate(positions), "vector": np.concatenate(parts),
                "actor": np.full(rows, self.actor, dtype=object)}


def encode_with_ray(chunks: list[list[str]], role: Role, config: LinkConfig, options: RayOptions
                    ) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Encode each chunk of texts with one encoder call, on ``options.encode_actors`` actors; the (n, d) vectors
    of each chunk, in order, and a report (actors used, batches, texts)."""
    import ray
    import ray.data

    gpus = options.encode_gpus
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0.0) > 0 else 0.0
    # from_items builds the blocks in this process (from_pandas starts a metadata task per block); one block per
    # chunk, so no batch ever holds more than one chunk's texts
    items = [{"chunk": number, "texts": texts} for number, texts in enumerate(chunks)]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4096))).map_batches(
        _EncodeChunks, fn_constructor_kwargs={"config": config, "role": role}, batch_size=1,
        batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=options.encode_actors),
        num_cpus=options.encode_cpus, num_gpus=gpus,
    )
    start = time.perf_counter()
    found: list[np.ndarray | None] = [None] * len(chunks)

    def keep(batch: dict[str, np.ndarray]) -> None:
        part = np.asarray(batch["vector"], dtype=np.float32)
        for chunk in np.unique(batch["chunk"]):  # a block may hold one chunk's rows, or (split) some of them
            rows = batch["chunk"] == chunk
            if found[chunk] is None:
                found[chunk] = np.empty((len(chunks[chunk]), part.shape[1]), dtype=np.float32)
            found[chunk][batch["position"][rows]] = part[rows]  # type: ignore[index]

    actors, batches = collect_batches(dataset, keep)
    assert all(vectors is not None for vectors in found), "Ray Data returned no vectors for a chunk"
    return found, {"texts": sum(map(len, chunks)), "chunks": len(chunks), "batches": batches,  # type: ignore[return-value]
                   "actors": actors, "gpus_per_actor": gpus, "seconds": round(time.perf_counter() - start, 3)}


class RayEncoder(Encoder):
    """The run's encoder as the Linker sees it: same name, cache identity and roles, but the vectors of each chunk
    come from :meth:`prepare` (Ray Data) and :meth:`encode` hands each one over once, then forgets it (so the
    vectors are not held twice while the Linker gathers them)."""

    def __init__(self, inner: Encoder, config: LinkConfig, options: RayOptions) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # the fusers' weights are per encoder name
        self.model = inner.model
        self.normalized = inner.normalized
        self.config = config
        self.ray_options = options
        #: chunk cache key -> the chunk's vectors, encoded and not yet handed over.
        self.held: dict[str, np.ndarray] = {}
        #: the chunks handed over (the Linker wrote them to its embedding cache, if it has one).
        self.served: set[str] = set()
        #: role -> the Ray Data runs of this encoder (texts, chunks, batches, actors used).
        self.runs: dict[str, list[dict[str, Any]]] = {}
        self._dimension: int | None = None

    @property
    def cache_id(self) -> str:
        return self.inner.cache_id

    @property
    def symmetric(self) -> bool:
        return self.inner.symmetric

    @property
    def dimension(self) -> int:
        return self._dimension if self._dimension is not None else self.inner.dimension

    def prepare(self, texts: np.ndarray, role: Role, cache: Cache | None = None) -> None:
        """Encode with Ray the chunks of ``texts`` (a side's non-empty texts) the Linker will ask for: its
        distinct texts sorted, ``encode_chunk_size`` at a time, except chunks held already and those the
        Linker will find in ``cache`` (its embedding cache)."""
        cache = cache if cache is not None else NullCache()
        caching = not isinstance(cache, NullCache)
        _, uniques = distinct_sorted(texts)
        identity, size = chunk_identity(self, role), self.config.encode_chunk_size
        todo: dict[str, list[str]] = {}
        for start in range(0, len(uniques), size):
            chunk = uniques[start : start + size]
            key = content_key(*identity, chunk)
            if key in self.held or key in todo:
                continue
            if caching and (key in self.served or cache.get(key) is not None):
                continue  # the Linker reads it from its cache (a value it cannot use is encoded on request)
            todo[key] = chunk
        if todo:
            self._encode(todo, role)

    def _encode(self, chunks: dict[str, list[str]], role: Role) -> None:
        vectors, run = encode_with_ray(list(chunks.values()), role, self.config, self.ray_options)
        self.runs.setdefault(role, []).append(run)
        self.held.update(zip(chunks, vectors))
        if vectors:
            self._dimension = int(vectors[0].shape[1])

    def forget(self) -> None:
        """Drop the vectors not handed over (a side is linked; they are not needed)."""
        self.held.clear()

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        key = content_key(*chunk_identity(self, role), texts)
        if key not in self.held:  # texts the Linker encodes that were not prepared: encode them now, as one chunk
            self._encode({key: list(texts)}, role)
        self.served.add(key)
        return self.held.pop(key)

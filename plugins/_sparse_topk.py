"""Exact top-k of a sparse product, ties at the k-th score broken by lower column: the ``char-ngram`` search.

``sparse_dot_topn`` keeps each query row's best ``top_n`` columns and, among columns tied at the last score it
keeps, its own choice (the highest columns, in practice).  :func:`top_k` asks it for ``2k + 1`` (as fast as
``k + 1`` at 100,000 columns: its time is the product, not the selection).  A query row whose lowest kept score
still ties with its ``k``-th is searched once more keeping ``tie_rows`` (identical query rows once, at most
``max_cells`` scores at a time), unless one of its tied columns has ``tie_rows`` identical copies in the index (a
value such as "unknown" repeated in thousands of rows): such a tie cannot be settled within ``tie_rows``, and its
columns stay the product's choice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ltengine.row_order import order_within_rows, ranks_in_sorted_rows


def top_k(queries: Any, columns: Any, k: int, *, tie_rows: int, max_cells: int,
          copies: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``queries`` (CSR) times ``columns`` (CSR, one column per indexed row): its ``k`` best (column,
    score), score descending then lower column; -1 / 0 where a row has fewer.  ``copies()``: per column, how many
    columns are identical to it (asked for only when a row ties)."""
    size = columns.shape[1]
    top, scores, best, keep = product_top_k(queries, columns, k, 2 * k + 1)
    tied = tied_rows(best, scores, keep, k) if keep < size else np.empty(0, np.int64)
    if len(tied):
        tied = tied[~tie_reaches(best, tied, scores[tied, k - 1], keep, copies(), tie_rows)]
    if not len(tied):
        return top, scores
    source = np.arange(queries.shape[0])  # each row's results: its own, or those of the first identical tied row
    source[tied] = first_identical_rows(queries, tied)
    again, keep = np.unique(source[tied]), min(tie_rows, size)
    step = max(1, max_cells // keep)
    for lo in range(0, len(again), step):
        part = again[lo : lo + step]
        top[part], scores[part], _, _ = product_top_k(queries[part], columns, k, keep)
    return top[source], scores[source]


def product_top_k(queries: Any, columns: Any, k: int, keep: int) -> tuple[np.ndarray, np.ndarray, Any, int]:
    """``sparse_dot_topn``'s best ``keep`` columns per query row (CSR), their best ``k``, and ``keep`` as used."""
    from sparse_dot_topn import sp_matmul_topn

    threads = min(os.cpu_count() or 1, 8)
    keep = min(keep, columns.shape[1])
    best = sp_matmul_topn(queries, columns, top_n=keep, threshold=0.0, n_threads=threads if threads > 1 else None)
    return *sparse_rows_topk(best, k), best, keep


def tied_rows(best: Any, scores: np.ndarray, keep: int, k: int) -> np.ndarray:
    """The rows of ``best`` holding ``keep`` columns whose lowest score equals their ``k``-th (``scores[:, k-1]``):
    columns the product dropped may tie there too."""
    full = np.flatnonzero(np.diff(best.indptr) == keep)
    lowest = best.data[best.indptr[full][:, None] + np.arange(keep)].min(axis=1)
    return full[lowest == scores[full, k - 1]]


def tie_reaches(best: Any, rows: np.ndarray, kth: np.ndarray, keep: int, copies: np.ndarray,
                limit: int) -> np.ndarray:
    """Per row of ``rows`` (each holding ``keep`` columns in ``best``): whether the tie at its ``kth`` score is
    known to hold ``limit`` columns or more (one of its tied columns has that many identical copies)."""
    at = best.indptr[rows][:, None] + np.arange(keep)
    tied = best.data[at] == kth[:, None]
    return np.where(tied, copies[best.indices[at]], 0).max(axis=1) >= limit


def identical_row_counts(matrix: Any) -> np.ndarray:
    """Per row of a CSR matrix, how many of its rows hold the same entries (itself included)."""
    first = first_identical_rows(matrix, np.arange(matrix.shape[0]))
    return np.bincount(first, minlength=matrix.shape[0])[first]


def first_identical_rows(matrix: Any, rows: np.ndarray) -> np.ndarray:
    """For each of ``rows`` (ascending) of a CSR matrix, the first of them holding the same entries."""
    first: dict[tuple[bytes, bytes], int] = {}
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    return np.array([first.setdefault((matrix.indices[s:e].tobytes(), matrix.data[s:e].tobytes()), row)
                     for row, s, e in zip(rows.tolist(), starts.tolist(), ends.tolist())], dtype=np.int64)


def sparse_rows_topk(best: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best (column, score) of a CSR matrix of positive scores, score descending then
    lower column; -1 / 0 where a row has fewer."""
    rows = best.shape[0]
    counts = np.diff(best.indptr)
    row_of = np.repeat(np.arange(rows), counts)
    order = order_within_rows(row_of, best.data, best.indices)
    cols, scores = best.indices[order], best.data[order]
    rank = ranks_in_sorted_rows(row_of[order]) - 1
    keep = rank < k
    top = np.full((rows, k), -1, dtype=np.int64)
    top_scores = np.zeros((rows, k), dtype=np.float32)
    top[row_of[keep], rank[keep]] = cols[keep]
    top_scores[row_of[keep], rank[keep]] = scores[keep]
    return top, top_scores

"""Decisions on scored candidates: best per left row, top-k, one-to-one assignment."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltengine.row_order import order_within_rows, ranks_in_sorted_rows


def best_per_left(pairs: pd.DataFrame, score: str = "score") -> pd.DataFrame:
    """Keep the highest-scoring candidate of each left row (ties: lowest right id)."""
    ordered = pairs.iloc[order_within_rows(pairs["id_l"], pairs[score], pairs["id_r"])]
    return ordered.drop_duplicates("id_l", keep="first")


def top_k_per_left(pairs: pd.DataFrame, k: int, score: str = "score") -> pd.DataFrame:
    """Keep the ``k`` best candidates of each left row and renumber ``rank`` (1 = best)."""
    order = order_within_rows(pairs["id_l"], pairs[score], pairs["id_r"])
    ranks = ranks_in_sorted_rows(pairs["id_l"].to_numpy()[order])
    keep = ranks <= k
    ordered = pairs.iloc[order[keep]].reset_index(drop=True)
    ordered["rank"] = ranks[keep]
    return ordered


def one_to_one(pairs: pd.DataFrame, score: str = "score") -> pd.DataFrame:
    """Assign each left row at most one right row and vice versa, maximising the total score.

    Solved exactly as a min-cost full matching on the sparse candidate graph, where every left row
    also has a private "unmatched" column of cost 2 (a real pair costs ``2 - score``).  Only the
    candidate pairs are considered, so the assignment respects blocks.
    """
    if pairs.empty:
        return pairs
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    left_ids, rows = np.unique(pairs["id_l"].to_numpy(), return_inverse=True)
    right_ids, cols = np.unique(pairs["id_r"].to_numpy(), return_inverse=True)
    n_left, n_right = len(left_ids), len(right_ids)
    scores = np.clip(pairs[score].to_numpy(dtype=np.float64), -1.0, 1.0)
    costs = np.concatenate([2.0 - scores + 1e-9, np.full(n_left, 2.0 + 1e-9)])
    all_rows = np.concatenate([rows, np.arange(n_left)])
    all_cols = np.concatenate([cols, n_right + np.arange(n_left)])
    graph = csr_matrix((costs, (all_rows, all_cols)), shape=(n_left, n_right + n_left))
    _, matched_col = min_weight_full_bipartite_matching(graph)
    keep = matched_col[rows] == cols
    return pairs[keep]

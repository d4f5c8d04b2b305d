"""Helpers for fusers (and for fitting them): each candidate pair's standing among its left row's candidates.

The engine adds these columns before it calls a :class:`ltengine.Fuser`; a fuser's ``fit`` gets them too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import LinkInputError
from ltengine.lexical.scripts import dominant_script
from ltengine.row_order import ranks_within_rows


def add_component_ranks(pairs: pd.DataFrame, left_texts: Any = None) -> pd.DataFrame:
    """Add each pair's standing among its left row's candidates, per component score:

    ``rank_semantic`` / ``rank_lexical`` (1 = best, ties by lower id_r) and ``gap_semantic`` /
    ``gap_lexical`` (the score minus the row's best score, <= 0).  Left rows are ``id_l``, or in a
    ``merge_knn`` output (no ``id_l``) the runs that start at ``rank == 1``.  With ``left_texts``
    (the left text of each pair), ``script_l`` is added too: the dominant script of that text.
    """
    pairs = pairs.copy()
    if "id_l" in pairs.columns:
        row = pairs["id_l"]
    elif "rank" in pairs.columns:
        row = pd.Series(np.cumsum(pairs["rank"].to_numpy() == 1), index=pairs.index)
    else:
        raise LinkInputError("the pairs need an id_l column (or the rank column of a merge_knn output)")
    right = pairs["id_r"] if "id_r" in pairs.columns else pd.Series(np.arange(len(pairs)), index=pairs.index)
    rows, rights = row.to_numpy(), right.to_numpy()
    for column, name in (("score_semantic", "semantic"), ("score_lexical", "lexical")):
        if column not in pairs.columns:
            continue
        scores = pairs[column].to_numpy()
        pairs[f"rank_{name}"] = ranks_within_rows(rows, scores, rights)
        pairs[f"gap_{name}"] = scores - pd.Series(scores, index=pairs.index).groupby(rows, sort=False).transform("max")
    if left_texts is not None:
        texts = pd.Series(np.asarray(left_texts, dtype=object), index=pairs.index)
        scripts = {text: dominant_script(text) or "none" for text in pd.unique(texts)}
        pairs["script_l"] = texts.map(scripts)
    return pairs

"""Helpers for fusers (and for fitting them): each candidate pair's standing among its left row's candidates.

The engine adds these columns before it calls a :class:`ltengine.Fuser`; a fuser's ``fit`` gets them too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import LinkInputError
from ltengine.lexical.scripts import dominant_script


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
    keyed = pd.DataFrame({"row": row.to_numpy(), "id_r": right.to_numpy()}, index=pairs.index)
    for column, name in (("score_semantic", "semantic"), ("score_lexical", "lexical")):
        if column not in pairs.columns:
            continue
        keyed["score"] = pairs[column].to_numpy()
        ordered = keyed.sort_values(["row", "score", "id_r"], ascending=[True, False, True], kind="stable")
        pairs[f"rank_{name}"] = (ordered.groupby("row", sort=False).cumcount().astype(np.int64) + 1).reindex(pairs.index)
        pairs[f"gap_{name}"] = keyed["score"] - keyed.groupby("row", sort=False)["score"].transform("max")
    if left_texts is not None:
        texts = pd.Series(np.asarray(left_texts, dtype=object), index=pairs.index)
        scripts = {text: dominant_script(text) or "none" for text in pd.unique(texts)}
        pairs["script_l"] = texts.map(scripts)
    return pairs

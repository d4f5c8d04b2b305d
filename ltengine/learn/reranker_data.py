"""Training pairs for :func:`ltengine.train_reranker`, from what ``merge_knn`` returns plus a label.

Records are serialised as the linker serialises them for the cross-encoder (``text_l``/``text_r``):
one column is its value; several are ``"name: value | city: value"``, with the merge suffixes
(``_x``/``_y``) taken off the column names, so ``name_x``/``name_y`` train what ``on="name"`` reranks.
The rows then go through the canonical frame of :mod:`ltengine.learn.data` (labels checked, entities
found).  The label-0 rows are the engine's own candidates that are not the match: hard negatives.
Each left record keeps at most ``negatives_per_left`` of them, the best-scored first (``score``
column, else ``rank``, else input order); left records with no positive still give theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ltengine.engine.text import check_columns, check_frame, serialize
from ltengine.errors import LinkInputError
from ltengine.learn.data import read_training_table, training_pairs


def _columns(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(c) for c in value]


def _side_texts(df: pd.DataFrame, columns: list[str], suffix: str, side: str) -> np.ndarray:
    """The records of one side as the linker serialises them, suffixes taken off the field names."""
    if len(columns) == 1:
        return serialize(df, columns, side).to_numpy(dtype=object)
    names = [c[: -len(suffix)] if suffix and c.endswith(suffix) and len(c) > len(suffix) else c for c in columns]
    if len(set(names)) < len(names):
        names = columns
    part = df[columns].copy()
    part.columns = names
    return serialize(part, names, side).to_numpy(dtype=object)


def labelled_pairs(
    data: object,
    left_on: str | Sequence[str] | None,
    right_on: str | Sequence[str] | None,
    label: str,
    *,
    on: str | Sequence[str] | None = None,
    negatives_per_left: int | None = 4,
    suffixes: tuple[str, str] = ("_x", "_y"),
) -> pd.DataFrame:
    """Canonical frame (``left_text``, ``right_text``, ``label``, ``entity``) plus ``order`` (the
    negatives' rank within their left record) and ``retrieval_score`` (the ``score`` column, NaN without
    one) from labelled candidate rows; other columns are ignored."""
    df = check_frame(read_training_table(data, "the labelled pairs"), "labelled pairs")
    left_cols = _columns(left_on)
    right_cols = _columns(right_on)
    if on is not None:
        # on="name" names the columns before the merge: name_x / name_y when both sides had it
        base = _columns(on)
        left_cols = left_cols or [c + suffixes[0] if c + suffixes[0] in df.columns else c for c in base]
        right_cols = right_cols or [c + suffixes[1] if c + suffixes[1] in df.columns else c for c in base]
    if not left_cols or not right_cols:
        raise LinkInputError(
            "name the record columns of the labelled pairs: left_on= and right_on= (e.g. 'name_x', 'name_y' "
            "as merge_knn returns them), or on='name'"
        )
    check_columns(df, left_cols, "labelled pairs", "left record")
    check_columns(df, right_cols, "labelled pairs", "right record")
    check_columns(df, [label], "labelled pairs", "label")
    texts = pd.DataFrame(
        {
            "left_text": _side_texts(df, left_cols, suffixes[0], "left"),
            "right_text": _side_texts(df, right_cols, suffixes[1], "right"),
            "label": df[label].to_numpy(),
        },
        index=df.index,
    )
    frame = training_pairs(texts, left_on="left_text", right_on="right_text", label="label")
    if "score" in df.columns and pd.api.types.is_numeric_dtype(df["score"]):
        strength = -pd.to_numeric(df["score"], errors="coerce").fillna(-np.inf).to_numpy()
    elif "rank" in df.columns and pd.api.types.is_numeric_dtype(df["rank"]):
        strength = pd.to_numeric(df["rank"], errors="coerce").fillna(np.inf).to_numpy()
    else:
        strength = np.arange(len(df), dtype=np.float64)
    frame["strength"] = strength
    frame["retrieval_score"] = (pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=np.float64)
                                if "score" in df.columns else np.full(len(df), np.nan))
    frame = frame.drop_duplicates(["left_text", "right_text"], keep="first")
    conflicts = frame.groupby(["left_text", "right_text"])["label"].nunique()
    if (conflicts > 1).any():  # pragma: no cover - drop_duplicates above keeps one label per pair
        raise LinkInputError("a pair is labelled both 1 and 0")
    negatives = frame[frame["label"] == 0].sort_values(["left_text", "strength"], kind="stable")
    negatives = negatives.assign(order=negatives.groupby("left_text").cumcount())
    if negatives_per_left is not None:
        negatives = negatives[negatives["order"] < negatives_per_left]
    positives = frame[frame["label"] == 1].assign(order=0)
    out = pd.concat([positives, negatives]).sort_index(kind="stable")
    return out.drop(columns="strength").reset_index(drop=True)

"""Input checks for :mod:`ltengine.evaluate`: record ids of two frames made comparable, labels, scores.

Ids are compared by value, so gold ids read as text (``"7"``) and predicted ids that are numbers
(``7``) would never be equal and every metric would silently be 0.  :func:`comparable_ids` converts
numbers to the text of the integer when that loses nothing (every number integral, every text id the
canonical text of an integer: ``"7"``, not ``"007"`` or ``"7.0"``), and otherwise raises naming both
columns and their types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import ColumnError, LinkInputError, did_you_mean

_NUMBER = {"integer", "floating", "mixed-integer-float", "integer-na", "decimal"}
_INTEGER_TEXT = r"-?(?:0|[1-9][0-9]*)"


def _values(values: Any) -> np.ndarray:
    return np.asarray(values)  # nullable and categorical arrays become object arrays with pd.NA/NaN


def id_kind(values: Any) -> str:
    """``"number"``, ``"text"``, ``"empty"`` (all missing) or ``"other"``: the kind of the non-missing ids."""
    array = _values(values)
    if array.dtype.kind in "iuf":
        return "number" if array.size and not np.isnan(array.astype(np.float64)).all() else "empty"
    inferred = pd.api.types.infer_dtype(array, skipna=True)
    if inferred == "empty":
        return "empty"
    if inferred == "string":
        return "text"
    return "number" if inferred in _NUMBER else "other"


def _describe(values: Sequence[Any], columns: str) -> str:
    kinds = sorted({type(v).__name__ for arr in values for v in pd.Series(_values(arr)).dropna().head(1000)})
    dtypes = sorted({str(_values(arr).dtype) for arr in values})
    return f"{columns} ({'/'.join(dtypes)} of {'/'.join(kinds) or 'nothing'})"


def comparable_ids(pred: Sequence[Any], gold: Sequence[Any], pred_columns: str, gold_columns: str,
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The id arrays of both sides, with numbers turned into integer text when the other side is text.

    ``pred``/``gold``: the id arrays of each side (e.g. left and right ids); ``*_columns`` name them
    for the error raised when the types differ and no lossless conversion exists."""
    pred_arrays, gold_arrays = [_values(a) for a in pred], [_values(a) for a in gold]
    kinds = {"pred": _side_kind(pred_arrays), "gold": _side_kind(gold_arrays)}
    if {kinds["pred"], kinds["gold"]} != {"number", "text"}:
        return pred_arrays, gold_arrays
    numbers, texts = (pred_arrays, gold_arrays) if kinds["pred"] == "number" else (gold_arrays, pred_arrays)
    bad = _first_bad(numbers, texts)
    if bad is not None:
        raise LinkInputError(
            f"predicted ids {_describe(pred_arrays, pred_columns)} and gold ids {_describe(gold_arrays, gold_columns)} "
            f"have different types and cannot be compared without guessing (e.g. {bad!r}); give both the same type, "
            "e.g. gold[col] = gold[col].astype(str) and pred[col] = pred[col].astype(str)"
        )
    converted = [_integer_text(a) for a in numbers]
    return (converted, texts) if kinds["pred"] == "number" else (texts, converted)


def _side_kind(arrays: list[np.ndarray]) -> str:
    kinds = {id_kind(a) for a in arrays} - {"empty"}
    return kinds.pop() if len(kinds) == 1 else ("empty" if not kinds else "other")


def _first_bad(numbers: list[np.ndarray], texts: list[np.ndarray]) -> Any:
    """The first value that does not convert losslessly, or None."""
    for array in numbers:
        series = pd.Series(array, dtype=object).dropna()
        floats = series.astype(np.float64)
        odd = ~np.isfinite(floats) | (floats != np.round(floats))
        if odd.any():
            return series[odd].iloc[0]
    for array in texts:
        series = pd.Series(array, dtype=object).dropna()
        odd = ~series.astype(str).str.fullmatch(_INTEGER_TEXT)
        if odd.any():
            return series[odd].iloc[0]
    return None


def _integer_text(array: np.ndarray) -> np.ndarray:
    out = np.empty(len(array), dtype=object)
    for i, value in enumerate(array):
        out[i] = np.nan if pd.isna(value) else str(int(value))
    return out


def positive_k(k: Any) -> int | None:
    """``k`` of recall@k: None or a positive integer (any integer type)."""
    from ltengine.numeric import as_positive_int

    return None if k is None else as_positive_int(k, "k", "predictions per left record counted by recall@k",
                                                  LinkInputError)


def check_pred_clusters(pred: pd.DataFrame, cluster: str) -> None:
    """Every predicted record must have a cluster label."""
    missing = pred[cluster].isna().to_numpy()
    if missing.any():
        rows = pred.index[missing][:5].tolist()
        raise LinkInputError(
            f"column {cluster!r} (predicted cluster) is missing for {int(missing.sum())} of {len(pred)} records, "
            f"e.g. rows {rows}; give every record a cluster label (cluster_rows does) or drop those rows"
        )


def gold_cluster_series(gold: Any, id_col: str | None, cluster: str) -> pd.Series:
    """Gold cluster labels indexed by record id, for link metrics (the ids must be named)."""
    if isinstance(gold, pd.Series):
        return gold
    key = id_col or "id"
    if key not in gold.columns:
        raise ColumnError(
            f"gold clusters have no record id column {key!r} (its columns are {', '.join(map(str, gold.columns))}); "
            f"to evaluate links against clusters, ids are needed: add the column, pass id='<column>', or give "
            f"gold as a Series of {cluster!r} labels indexed by record id"
        )
    return gold.set_index(key)[cluster]


def score_values(scored: pd.DataFrame, score: str) -> np.ndarray:
    """The ``score`` column as float64; ColumnError/LinkInputError when it is not numeric or has no value."""
    try:
        values = scored[score].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        example = scored[score].dropna().iloc[0] if scored[score].notna().any() else None
        raise ColumnError(f"column {score!r} must hold numeric scores; got values such as {example!r}") from None
    if len(values) and np.isnan(values).all():
        raise LinkInputError(
            f"column {score!r} has no scores: all {len(values)} values are missing; score the pairs first "
            "(lt.evaluate_pairs, lt.merge_knn) or name the score column with score=..."
        )
    return values


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """ColumnError naming the first of ``columns`` missing from ``df`` (``what``: its role) and the closest name."""
    for col in columns:
        if col not in df.columns:
            raise ColumnError(
                f"column {col!r} ({what}) is not in the table.{did_you_mean(col, [str(c) for c in df.columns])} "
                f"Its columns are: {', '.join(map(str, df.columns))}."
            )


def link_id_columns(pred: pd.DataFrame, left_id: str | None, right_id: str | None) -> tuple[str, str]:
    """The columns of ``pred`` naming the left and right records (given, ``id_l``/``id_r`` or ``id_x``/``id_y``)."""
    if left_id and right_id:
        require_columns(pred, [left_id, right_id], "record id of the predictions")
        return left_id, right_id
    for pair in (("id_l", "id_r"), ("id_x", "id_y")):
        if set(pair) <= set(pred.columns):
            return pair
    raise LinkInputError(
        "name the columns of the predictions that identify the left and right records: "
        "left_id=... and right_id=... (e.g. 'id_x', 'id_y' after merging tables that both have 'id')"
    )

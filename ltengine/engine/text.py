"""Input validation and serialisation of records to the texts that encoders see.

Each value is cleaned as it is serialised (:func:`ltengine.lexical.cleaning.clean_text`): invisible
and invalid code points removed, whitespace collapsed, and a value with no letter or digit left
counts as empty unless ``keep_symbols`` is set; a record whose values are all empty is never matched.
"""

from __future__ import annotations

import datetime as _dt
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ltengine.errors import ColumnError, LinkInputError, did_you_mean
from ltengine.lexical.cleaning import clean_text

#: Joins ``name: value`` fields of multi-column records.
FIELD_SEPARATOR = " | "
def check_frame(df: object, side: str) -> pd.DataFrame:
    """Check ``df`` is a DataFrame with unique column names."""
    if not isinstance(df, pd.DataFrame):
        raise LinkInputError(f"the {side} table must be a pandas DataFrame; got {type(df).__name__}")
    dupes = df.columns[df.columns.duplicated()].unique().tolist()
    if dupes:
        raise ColumnError(
            f"the {side} table has duplicate column names {dupes}; rename them (e.g. df.columns = [...]) first"
        )
    return df


def check_columns(df: pd.DataFrame, columns: Sequence[str], side: str, role: str = "linked") -> None:
    """Raise ColumnError naming the missing column and the closest existing one."""
    available = [str(c) for c in df.columns]
    for col in columns:
        if col not in df.columns:
            raise ColumnError(
                f"column {col!r} ({role} column) is not in the {side} table.{did_you_mean(col, available)} "
                f"Its columns are: {', '.join(available) or '(none)'}."
            )


def _format_number(values: pd.Series) -> pd.Series:
    """Numbers as text: integral floats lose their '.0' (NaN-upcast integer columns)."""
    out = values.astype(object)
    mask = values.notna()
    if pd.api.types.is_float_dtype(values.dtype):
        vals = values[mask].to_numpy()
        integral = np.isfinite(vals) & (np.floor(vals) == vals) & (np.abs(vals) < 2**53)
        text = np.where(integral, np.char.mod("%d", np.where(integral, vals, 0).astype(np.int64)), vals.astype(str))
        out[mask] = text
    else:
        out[mask] = values[mask].astype(str)
    return out


def _column_text(df: pd.DataFrame, col: str, side: str, keep_symbols: bool = False) -> pd.Series:
    """One column as cleaned text (:func:`clean_text`); missing, blank and symbol-only values become ''."""
    values = df[col]
    if isinstance(values, pd.DataFrame):  # duplicate names are rejected earlier, but be safe
        raise ColumnError(f"column {col!r} appears more than once in the {side} table")
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        text = _format_number(values) if not pd.api.types.is_bool_dtype(dtype) else values.astype(object).astype(str)
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        text = values.astype(object).map(lambda v: v.isoformat() if pd.notna(v) else None)
    elif isinstance(dtype, pd.CategoricalDtype):
        text = values.astype(object).map(lambda v: None if pd.isna(v) else str(v))
    elif pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        text = values
    else:
        text = values.map(lambda v: _scalar_text(v, col, side, values))
    text = text.astype(object).where(pd.notna(text), "")
    return text.map(lambda s: clean_text(str(s), keep_symbols))


def _scalar_text(value: object, col: str, side: str, series: pd.Series) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)
    if isinstance(value, (_dt.date, _dt.datetime, pd.Timestamp)):
        return value.isoformat()
    row = series.index[series.map(lambda v: v is value)].tolist()[:1]
    where = f" at row {row[0]!r}" if row else ""
    raise LinkInputError(
        f"column {col!r} of the {side} table holds a {type(value).__name__} value{where}: {value!r:.80}. "
        f"ltengine links text, numbers and dates; convert this column first, e.g. "
        f"df[{col!r}] = df[{col!r}].astype(str), or drop the row."
    )


def serialize(df: pd.DataFrame, columns: Sequence[str], side: str = "left", *,
              keep_symbols: bool = False) -> pd.Series:
    """Serialise the chosen columns of each row to one text.

    One column: the value itself.  Several: ``"name: value | city: value"`` in the given order,
    skipping missing fields.  Values are cleaned (:func:`clean_text`); rows with nothing to say
    (no letter or digit, unless ``keep_symbols``) become ``""`` and are never matched.
    """
    columns = list(columns)
    if len(columns) == 1:
        return _column_text(df, columns[0], side, keep_symbols).set_axis(df.index)
    parts = [_column_text(df, c, side, keep_symbols) for c in columns]
    out = pd.Series([""] * len(df), index=df.index, dtype=object)
    for col, text in zip(columns, parts):
        piece = np.where(text.to_numpy() != "", (col + ": ") + text.astype(str).to_numpy(dtype=object), "")
        joined = np.where((out.to_numpy() != "") & (piece != ""), FIELD_SEPARATOR, "")
        out = pd.Series(out.to_numpy(dtype=object) + joined + piece, index=df.index, dtype=object)
    return out


def lexical_texts(df: pd.DataFrame, columns: Sequence[str], side: str, texts: np.ndarray,
                  keep_symbols: bool = False) -> np.ndarray:
    """What a lexical retriever compares: the values of the linked columns joined by spaces (no
    ``column: `` labels, which would make every record share n-grams); ``texts``, the serialised
    records, when there is one column."""
    if len(columns) == 1:
        return texts
    parts = [serialize(df, [c], side, keep_symbols=keep_symbols).to_numpy(dtype=object) for c in columns]
    return np.array([" ".join(p for p in row if p) for row in zip(*parts)], dtype=object)

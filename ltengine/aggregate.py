"""``aggregate_rows``: map each row of a fine-grained table to its best row of a reference table."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .api import Columns, merge
from .errors import LinkInputError


def aggregate_rows(
    df: pd.DataFrame,
    ref_df: pd.DataFrame,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    threshold: float | None = None,
    *,
    on: Columns = None,
    block_on: Columns = None,
    k: int = 1,
    config: Any = None,
    **options: Any,
) -> pd.DataFrame:
    """Each row of ``df`` with the columns of its best ``ref_df`` row (e.g. product descriptions to a category
    list) and ``score``; one output row per input row, same order and index.

    With ``threshold``, rows whose best reference scores below it get NaN reference columns and
    score, never a forced match.  ``k`` candidates are retrieved per row (more helps only with a
    reranker).  Other keyword arguments are LinkConfig fields (``rerank=...``, ``progress=False``).
    """
    if not isinstance(df, pd.DataFrame):
        raise LinkInputError(f"df must be a pandas DataFrame; got {type(df).__name__}")
    out = merge(df, ref_df, on=on, left_on=left_on, right_on=right_on, model=model, k=k, threshold=threshold,
                block_on=block_on, keep_unmatched=True, config=config, **options)
    if len(out) != len(df):  # pragma: no cover - merge keeps exactly one row per left row here
        raise AssertionError(f"aggregate_rows produced {len(out)} rows for {len(df)}")
    out.index = df.index
    return out

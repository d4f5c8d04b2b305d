"""The pandas API: ``merge``, ``merge_knn``, ``merge_range``, ``merge_blocking``, ``aggregate_rows``.

Each is a thin wrapper over :class:`ltengine.engine.linker.Linker`.  Explicit keyword arguments override
the values of ``config``; arguments left at their defaults take the config's values.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ltengine.config import LinkConfig
from ltengine.engine.linker import Linker, Mode, _as_config
from ltengine.errors import LinkInputError

Columns = str | Sequence[str] | None
ConfigLike = LinkConfig | Mapping[str, Any] | str | Path | None


def _resolve_on(on: Columns, left_on: Columns, right_on: Columns) -> dict[str, Any]:
    if on is not None and (left_on is not None or right_on is not None):
        raise LinkInputError("pass either on=... or left_on=/right_on=..., not both")
    if on is not None:
        return {"left_on": on, "right_on": on}
    if (left_on is None) != (right_on is None):
        missing = "right_on" if right_on is None else "left_on"
        raise LinkInputError(f"{missing} is missing: left_on and right_on go together (or use on=...)")
    if left_on is None:
        return {}
    n_left = 1 if isinstance(left_on, str) else len(left_on)
    n_right = 1 if isinstance(right_on, str) else len(right_on)  # type: ignore[arg-type]
    if n_left != n_right:
        raise LinkInputError(f"left_on has {n_left} columns but right_on has {n_right}; give the same number")
    return {"left_on": left_on, "right_on": right_on}


def _run(left: pd.DataFrame, right: pd.DataFrame, config: ConfigLike, mode: Mode, given: dict[str, Any],
         function: Any) -> pd.DataFrame:
    base = _as_config(config)
    defaults = {name: p.default for name, p in inspect.signature(function).parameters.items()}
    changes = {key: value for key, value in given.items() if value is not None}
    if config is not None:  # an argument left at its default does not override the config
        changes = {key: value for key, value in changes.items() if key not in defaults or value != defaults[key]}
    linker = Linker(base.replace(**changes))
    if not linker.config.left_on:
        raise LinkInputError("no columns to link on: pass on='column' (or left_on=/right_on=), or set them in config")
    if not isinstance(right, pd.DataFrame):
        raise LinkInputError(f"the right table must be a pandas DataFrame; got {type(right).__name__}")
    linker.check_inputs(left, right)  # both tables checked before the right one is encoded
    return linker.fit(right, expected_queries=len(left)).merge(left, mode=mode)


def merge(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: Columns = None,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    k: int = 1,
    threshold: float | None = None,
    block_on: Columns = None,
    one_to_one: bool = False,
    keep_unmatched: bool = False,
    suffixes: tuple[str, str] = ("_x", "_y"),
    mode: str | None = None,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """Link each left row to its best right row by meaning, like ``pandas.merge`` on fuzzy keys.

    ``k`` candidates are retrieved per left row and the best kept; ``threshold`` drops weaker
    matches (cosine in semantic mode; the fused 0..1 score in hybrid mode); ``mode`` is
    ``"auto"`` (default: hybrid when the two columns use different scripts, else semantic),
    ``"semantic"``, ``"lexical"`` or ``"hybrid"`` (adds ``score_semantic``/``score_lexical``); ``block_on`` only compares rows with equal values in those columns;
    ``one_to_one`` uses each right row at most once (best total score); ``keep_unmatched`` keeps
    left rows without a match (right columns NaN).  Output: left columns, right columns, ``score``.
    Other keyword arguments are :class:`LinkConfig` fields (e.g. ``progress=False``).
    """
    given = dict(model=model, k=k, threshold=threshold, block_on=block_on, one_to_one=one_to_one,
                 keep_unmatched=keep_unmatched, suffixes=suffixes, mode=mode, **_resolve_on(on, left_on, right_on),
                 **options)
    return _run(left, right, config, "best", given, merge)


def merge_knn(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: Columns = None,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    k: int = 5,
    threshold: float | None = None,
    block_on: Columns = None,
    keep_unmatched: bool = False,
    suffixes: tuple[str, str] = ("_x", "_y"),
    mode: str | None = None,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """One row per (left row, candidate): the ``k`` nearest right rows with ``score`` and ``rank`` (1 = best)."""
    given = dict(model=model, k=k, threshold=threshold, block_on=block_on, keep_unmatched=keep_unmatched,
                 suffixes=suffixes, mode=mode, **_resolve_on(on, left_on, right_on), **options)
    return _run(left, right, config, "knn", given, merge_knn)


def merge_range(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: Columns = None,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    threshold: float | None = None,
    block_on: Columns = None,
    keep_unmatched: bool = False,
    suffixes: tuple[str, str] = ("_x", "_y"),
    mode: str | None = None,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """Every (left, right) pair with ``score >= threshold``, ranked per left row."""
    given = dict(model=model, threshold=threshold, block_on=block_on, keep_unmatched=keep_unmatched,
                 suffixes=suffixes, mode=mode, **_resolve_on(on, left_on, right_on), **options)
    return _run(left, right, config, "range", given, merge_range)


def merge_blocking(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: Columns = None,
    blocking_vars: Columns = None,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """LinkTransformer's name for ``merge(..., block_on=blocking_vars)``."""
    if blocking_vars is None:
        raise LinkInputError("merge_blocking needs blocking_vars=[...] (columns that must be equal on both sides)")
    return merge(left, right, on=on, left_on=left_on, right_on=right_on, model=model, block_on=blocking_vars, **kwargs)


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

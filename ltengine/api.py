"""The pandas API: ``merge``, ``merge_knn``, ``merge_range``, ``merge_blocking``, ``aggregate_rows``.

Each is a thin wrapper over :class:`ltengine.engine.linker.Linker`, configured by
:meth:`LinkConfig.resolve <ltengine.config.LinkConfig.resolve>`: an argument the caller passes wins over
``config`` (even when it equals the default); an argument not passed (None) takes the config's value, or
the documented default when there is no config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ltengine.compat import linktransformer_arguments
from ltengine.config import Columns, ConfigLike, LinkConfig
from ltengine.engine.linker import Linker, Mode
from ltengine.errors import LinkInputError
from ltengine.execution import create_linker


def _run(left: pd.DataFrame, right: pd.DataFrame, config: ConfigLike, mode: Mode, arguments: dict[str, Any],
         defaults: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Resolve the call's LinkConfig, fit the right table and link the left one.  ``merge_knn`` with
    ``k=1`` returns exactly ``merge``'s frame (no ``rank`` column, which would always be 1)."""
    resolved = LinkConfig.resolve(config, defaults=defaults, **arguments)
    linker = Linker(resolved) if resolved.executor == "local" else create_linker(resolved)  # local: no Ray import
    if not linker.config.left_on:
        raise LinkInputError("no columns to link on: pass on='column' (or left_on=/right_on=), or set them in config")
    if not isinstance(right, pd.DataFrame):
        raise LinkInputError(f"the right table must be a pandas DataFrame; got {type(right).__name__}")
    linker.check_inputs(left, right)  # both tables checked before the right one is encoded
    out = linker.fit(right, expected_queries=len(left)).merge(left, mode=mode)
    if mode == "knn" and linker.config.k == 1:
        out = out.drop(columns="rank")
    return out


@linktransformer_arguments
def merge(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: Columns = None,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    k: int | None = None,
    threshold: float | str | None = None,
    block_on: Columns = None,
    one_to_one: bool | None = None,
    keep_unmatched: bool | None = None,
    suffixes: tuple[str, str] | None = None,
    mode: str | None = None,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """Link each left row to its best right row by meaning, like ``pandas.merge`` on fuzzy keys.

    ``k`` candidates (default 1) are kept per left row, the best; ``threshold`` drops weaker
    matches (cosine in semantic mode; the fused 0..1 score in hybrid mode), ``threshold="auto"`` those
    whose ``match_probability`` is below 0.5; ``mode`` is
    ``"auto"`` (default: hybrid when the two columns use different scripts, else semantic),
    ``"semantic"``, ``"lexical"`` or ``"hybrid"`` (adds ``score_semantic``/``score_lexical``); ``block_on`` only compares rows with equal values in those columns;
    ``one_to_one`` (default False) uses each right row at most once (best total score); ``keep_unmatched``
    (default False) keeps left rows without a match (right columns NaN); ``suffixes`` (default
    ``("_x", "_y")``) mark clashing column names.  Output: left columns, right columns, ``score``,
    ``match_probability`` (the probability that the pair is the same entity, from a model fitted without
    labels on the run's own top candidates; its parameters are in ``out.attrs["ltengine"]["report"]["calibration"]``).
    Other keyword arguments are :class:`LinkConfig` fields (e.g. ``progress=False``).  An argument
    passed (not None) wins over ``config``; one left out takes the config's value, else the default.
    LinkTransformer's arguments are accepted (:mod:`ltengine.compat`): ``merge_type`` ("1:1" is
    ``one_to_one=True``; "1:m"/"m:1"/"1:1" warn when the "1" side's keys repeat), ``openai_key``/``gemini_key``
    (for this call only), ``batch_size``, ``progress_bar``.
    """
    arguments = dict(on=on, left_on=left_on, right_on=right_on, model=model, k=k, threshold=threshold,
                     block_on=block_on, one_to_one=one_to_one, keep_unmatched=keep_unmatched, suffixes=suffixes,
                     mode=mode, **options)
    return _run(left, right, config, "best", arguments)


@linktransformer_arguments
def merge_knn(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: Columns = None,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    k: int | None = None,
    threshold: float | str | None = None,
    block_on: Columns = None,
    keep_unmatched: bool | None = None,
    suffixes: tuple[str, str] | None = None,
    mode: str | None = None,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """One row per (left row, candidate): the ``k`` nearest right rows (default 5) with ``score`` and ``rank``
    (1 = best; with ``k=1`` there is no ``rank`` and the frame equals :func:`merge`'s).  Arguments as in
    :func:`merge`; ``drop_sim_threshold`` (LinkTransformer's name) is ``threshold``."""
    arguments = dict(on=on, left_on=left_on, right_on=right_on, model=model, k=k, threshold=threshold,
                     block_on=block_on, keep_unmatched=keep_unmatched, suffixes=suffixes, mode=mode, **options)
    return _run(left, right, config, "knn", arguments, defaults={"k": 5})


@linktransformer_arguments
def merge_range(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: Columns = None,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    threshold: float | str | None = None,
    block_on: Columns = None,
    keep_unmatched: bool | None = None,
    suffixes: tuple[str, str] | None = None,
    mode: str | None = None,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """Every (left, right) pair with ``score >= threshold``, ranked per left row.  Arguments as in :func:`merge`.
    LinkTransformer's ``sim_threshold=`` is ``threshold=`` and, as there, keeps left rows without a match
    (``keep_unmatched`` defaults to True with it)."""
    arguments = dict(on=on, left_on=left_on, right_on=right_on, model=model, threshold=threshold,
                     block_on=block_on, keep_unmatched=keep_unmatched, suffixes=suffixes, mode=mode, **options)
    return _run(left, right, config, "range", arguments)


@linktransformer_arguments
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
    """LinkTransformer's name for ``merge(..., block_on=blocking_vars)`` (without ``blocking_vars``: every
    row is compared, as in LinkTransformer).  Unlike LinkTransformer, rows of blocks with no partner are
    not appended to the output (pass ``keep_unmatched=True`` to keep the left ones)."""
    return merge(left, right, on=on, left_on=left_on, right_on=right_on, model=model, block_on=blocking_vars, **kwargs)


@linktransformer_arguments
def aggregate_rows(
    df: pd.DataFrame,
    ref_df: pd.DataFrame,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    threshold: float | str | None = None,
    *,
    on: Columns = None,
    block_on: Columns = None,
    k: int | None = None,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """Each row of ``df`` with the columns of its best ``ref_df`` row (e.g. product descriptions to a category
    list) and ``score``; one output row per input row, same order and index.

    With ``threshold``, rows whose best reference scores below it get NaN reference columns and
    score, never a forced match.  ``k`` candidates are retrieved per row (more helps only with a
    reranker; default 1).  Other keyword arguments are LinkConfig fields (``rerank=...``, ``progress=False``).
    """
    if not isinstance(df, pd.DataFrame):
        raise LinkInputError(f"df must be a pandas DataFrame; got {type(df).__name__}")
    out = merge(df, ref_df, on=on, left_on=left_on, right_on=right_on, model=model, k=k, threshold=threshold,
                block_on=block_on, keep_unmatched=True, config=config, **options)
    if len(out) != len(df):  # pragma: no cover - merge keeps exactly one row per left row here
        raise AssertionError(f"aggregate_rows produced {len(out)} rows for {len(df)}")
    out.index = df.index
    return out

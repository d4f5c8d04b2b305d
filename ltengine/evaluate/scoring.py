"""Scoring given pairs: :func:`evaluate_pairs` (each row's two texts) and :func:`all_pair_combos_evaluate`
(every left value against every right value, in chunks, with a memory estimate checked before any work)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ltengine.compat import linktransformer_arguments
from ltengine.config import Columns, ConfigLike, LinkConfig
from ltengine.errors import ColumnError, LinkInputError
from ltengine.numeric import is_real

#: Rows encoded per step by :func:`evaluate_pairs` (bounds memory on long frames).
PAIR_CHUNK = 65536
#: Default cap on the estimated memory of :func:`all_pair_combos_evaluate`'s output.
DEFAULT_MAX_MEMORY = 4 * 2**30
#: Estimated bytes per output row of all_pair_combos_evaluate: score, row pointers and pandas copies.
_BYTES_PER_PAIR_ROW = 48


# -- encoding helpers --------------------------------------------------------------------------------
def _linker(left_on: Columns, right_on: Columns, model: str | None, config: ConfigLike,
            options: dict[str, Any]) -> Any:
    """The Linker of a scoring call, configured by :meth:`LinkConfig.resolve` (arguments win over ``config``)."""
    from ltengine.engine.linker import Linker

    cfg = LinkConfig.resolve(config, left_on=left_on, right_on=right_on, model=model, **options)
    if not cfg.left_on or not cfg.right_on:
        raise LinkInputError("name the columns to compare: left_on=... and right_on=... (or on=...)")
    return Linker(cfg)


def _texts(df: Any, columns: Sequence[str], side: str) -> np.ndarray:
    from ltengine.engine.text import check_columns, check_frame, serialize

    df = check_frame(df, "input")
    check_columns(df, columns, "input", role=f"{side} text")
    return serialize(df, columns, "input").to_numpy(dtype=object)


def _encode(linker: Any, texts: np.ndarray, role: str) -> np.ndarray:
    """Unit vectors of non-empty ``texts`` (rows of empty texts are zero)."""
    from ltengine.engine.encoding import encode_texts

    nonempty = np.flatnonzero(texts != "")
    vectors = encode_texts(linker.encoder, texts[nonempty], role, linker.context)  # type: ignore[arg-type]
    out = np.zeros((len(texts), vectors.shape[1] if len(nonempty) else 1), dtype=np.float32)
    if len(nonempty):
        out[nonempty] = vectors
    return out


def _no_score_column(df: pd.DataFrame) -> None:
    if "score" in df.columns:
        raise ColumnError("the input table already has a column 'score', which is added here; rename or drop it first")


# -- scoring pairs ------------------------------------------------------------------------------------
@linktransformer_arguments
def evaluate_pairs(
    df: pd.DataFrame,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    *,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """A copy of ``df`` with ``score``: the cosine similarity between each row's ``left_on`` and ``right_on``
    texts (embedded as in ``merge``'s semantic mode: left as queries, right as documents, each distinct
    text once).
    Rows with an empty text on either side get NaN.  Other keyword arguments are LinkConfig fields, or
    LinkTransformer's ``openai_key``/``gemini_key`` (this call only), ``batch_size``, ``progress_bar``."""
    linker = _linker(left_on, right_on, model, config, options)
    cfg = linker.config
    left, right = _texts(df, cfg.left_on, "left"), _texts(df, cfg.right_on, "right")
    _no_score_column(df)
    scores = np.full(len(df), np.nan)
    from ltengine.progress import progress_bar

    with progress_bar(len(df), "scoring pairs", cfg.progress) as bar:
        for start in range(0, len(df), PAIR_CHUNK):
            sl = slice(start, start + PAIR_CHUNK)
            a, b = _encode(linker, left[sl], "query"), _encode(linker, right[sl], "document")
            both = (left[sl] != "") & (right[sl] != "")
            if both.any():
                scores[sl][both] = np.einsum("ij,ij->i", a[both], b[both]).clip(-1.0, 1.0)
            bar.update(len(a))
    out = df.copy()
    out["score"] = scores
    out.attrs["ltengine"] = {"report": dict(linker.context.report), "timings": dict(linker.context.timings)}
    return out


def parse_bytes(value: float | str) -> int:
    """``4 * 2**30``, ``"4GiB"``, ``"500MB"`` -> bytes."""
    if is_real(value) and value > 0:
        return int(value)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(i?)B?\s*", str(value), flags=re.IGNORECASE)
    if not match:
        raise LinkInputError(f"max_memory must be a number of bytes or a size such as '4GiB' or '500MB'; got {value!r}")
    number, unit, binary = float(match.group(1)), match.group(2).upper(), match.group(3)
    power = "KMGT".find(unit) + 1 if unit else 0
    return int(number * (1024 if binary or not unit else 1000) ** power)


@linktransformer_arguments
def all_pair_combos_evaluate(
    df: pd.DataFrame,
    left_on: Columns = None,
    right_on: Columns = None,
    model: str | None = None,
    *,
    max_memory: int | str = DEFAULT_MAX_MEMORY,
    suffixes: tuple[str, str] = ("_x", "_y"),
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """Score every distinct ``left_on`` value of ``df`` against every distinct ``right_on`` value.

    Output: the left columns, the right columns (suffixed where names collide) and ``score``, one row
    per combination (left-major order).  The size is checked first: above ``max_memory``
    (default 4 GiB, estimated) a LinkInputError says how many pairs it would be; use ``merge_knn``
    or ``merge_range`` to keep only the close ones.  Scores are computed in chunks; a pair with an
    empty text on either side scores NaN.
    """
    linker = _linker(left_on, right_on, model, config, options)
    cfg = linker.config
    _texts(df, cfg.left_on, "left"), _texts(df, cfg.right_on, "right")  # validate columns first
    left = df[list(cfg.left_on)].drop_duplicates().reset_index(drop=True)
    right = df[list(cfg.right_on)].drop_duplicates().reset_index(drop=True)
    n_pairs = len(left) * len(right)
    width = len(cfg.left_on) + len(cfg.right_on)
    estimate = n_pairs * (_BYTES_PER_PAIR_ROW + 16 * width)
    limit = parse_bytes(max_memory)
    if estimate > limit:
        raise LinkInputError(
            f"all_pair_combos_evaluate would build {n_pairs:,} pairs ({len(left):,} distinct left x {len(right):,} "
            f"distinct right values), about {estimate / 2**30:.1f} GiB, above max_memory={limit / 2**30:.1f} GiB. "
            "Pass a larger max_memory=..., or keep only close pairs with lt.merge_knn(..., k=...) or "
            "lt.merge_range(..., threshold=...)."
        )
    a = _encode(linker, _texts(left, cfg.left_on, "left"), "query")
    b = _encode(linker, _texts(right, cfg.right_on, "right"), "document")
    empty_a = ~a.any(axis=1)
    empty_b = ~b.any(axis=1)
    scores = np.full(n_pairs, np.nan, dtype=np.float64)
    scorable = not (empty_a.all() or empty_b.all())  # no text at all on one side: every score is NaN
    step = max(1, (64 * 2**20) // max(1, 4 * len(right)))  # ~64 MiB of float32 scores per chunk
    from ltengine.progress import progress_bar

    with progress_bar(len(left), "scoring all pairs", cfg.progress) as bar:
        for start in range(0, len(left) if scorable else 0, step):
            block = (a[start : start + step] @ b.T).astype(np.float64).clip(-1.0, 1.0)
            block[empty_a[start : start + step]] = np.nan
            block[:, empty_b] = np.nan
            scores[start * len(right) : (start + len(block)) * len(right)] = block.ravel()
            bar.update(len(block))
    common = set(left.columns) & set(right.columns)
    left_part = left.rename(columns={c: f"{c}{suffixes[0]}" for c in common})
    right_part = right.rename(columns={c: f"{c}{suffixes[1]}" for c in common})
    out = pd.concat(
        [left_part.iloc[np.repeat(np.arange(len(left)), len(right))].reset_index(drop=True),
         right_part.iloc[np.tile(np.arange(len(right)), len(left))].reset_index(drop=True)],
        axis=1,
    )
    if "score" in out.columns:
        raise ColumnError("a compared column is named 'score', which is added here; rename it first")
    out["score"] = scores
    return out

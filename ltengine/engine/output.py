"""The merged output: the one registry of columns ltengine adds, the clash checks, and ``assemble``.

Every column the engine adds to a result is listed here; the stages that compute them (fusion,
reranking, clustering, ``merge_k_judge``) take the names from this module, and the input tables
are checked against them before any work, so a user column is never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ltengine.errors import ColumnError

if TYPE_CHECKING:
    from ltengine.config import LinkConfig
    from ltengine.registry import ComponentSpec

#: Every merge adds ``score``; ``merge_knn``/``merge_range`` add ``rank`` (both always reserved).
BASE_COLUMNS = ("score", "rank")
#: The calibrated probability that a pair is the same entity: every merge adds it (see
#: :class:`ltengine.engine.calibration.MatchModel`).
MATCH_PROBABILITY = "match_probability"
#: Component scores kept in the output of the hybrid mode (also reserved in ``auto`` mode).
HYBRID_COLUMNS = ("score_semantic", "score_lexical")
#: Columns the rerank orchestration adds to the candidate pairs.
RERANK_COLUMNS = ("rerank_score", "is_match", "decided_by")
#: The column ``cluster_rows`` adds.
CLUSTER_COLUMN = "cluster"
#: LinkTransformer's columns that ``merge_k_judge`` adds on top of the rerank columns.
JUDGE_API_COLUMNS = ("llm_is_match", "llm_confidence")
#: Bookkeeping columns of candidate pairs that never reach the output.
PAIR_COLUMNS = ("id_l", "id_r", "text_l", "text_r")


def reranker_columns(component: ComponentSpec) -> tuple[str, ...]:
    """The columns a reranker adds: its class's :attr:`~ltengine.Reranker.output_columns`."""
    return tuple(component.cls.output_columns)


def added_columns(config: LinkConfig, rerankers: Iterable[ComponentSpec] = ()) -> tuple[str, ...]:
    """The columns a link run with ``config`` may add to its output (in output order); ``rerankers``:
    the components of its rerank chain (:func:`ltengine.engine.rerank.plan`)."""
    columns = [*BASE_COLUMNS, MATCH_PROBABILITY]
    if config.mode in ("hybrid", "auto"):
        columns += HYBRID_COLUMNS
    if config.rerank:
        columns += RERANK_COLUMNS
        for component in rerankers:
            columns += reranker_columns(component)
    return tuple(dict.fromkeys(columns))


def check_clash(columns: Iterable[Any], added: Iterable[str], side: str, adder: str = "ltengine") -> None:
    """Raise ColumnError if a table (``side``) already has one of the ``added`` column names."""
    present = set(columns)
    for col in added:
        if col in present:
            raise ColumnError(
                f"the {side} table already has a column {col!r}, which {adder} adds to its output; "
                f"rename it first, e.g. df.rename(columns={{{col!r}: '{col}_{side}'}})"
            )


def output_names(left: pd.DataFrame, right: pd.DataFrame, suffixes: tuple[str, str]) -> tuple[dict, dict, list]:
    """(left renames, right renames, final input column names) after suffixing shared names."""
    common = set(left.columns) & set(right.columns)
    sx, sy = suffixes
    left_names = {c: f"{c}{sx}" for c in left.columns if c in common}
    right_names = {c: f"{c}{sy}" for c in right.columns if c in common}
    final = [left_names.get(c, c) for c in left.columns] + [right_names.get(c, c) for c in right.columns]
    clash = sorted({c for c in final if final.count(c) > 1}, key=str)
    if clash:
        raise ColumnError(
            f"output columns {clash} would appear twice after adding suffixes {suffixes}; "
            "pass other suffixes=(..., ...) or rename the columns"
        )
    return left_names, right_names, final


def check_output_columns(left: pd.DataFrame, right: pd.DataFrame, added: Iterable[str],
                         suffixes: tuple[str, str]) -> None:
    """Check the suffixed input columns against the ``added`` ones (ColumnError naming the table)."""
    left_names, right_names, _ = output_names(left, right, suffixes)
    check_clash([left_names.get(c, c) for c in left.columns], added, "left")
    check_clash([right_names.get(c, c) for c in right.columns], added, "right")


def assemble(left: pd.DataFrame, right: pd.DataFrame, pairs: pd.DataFrame, cfg: LinkConfig, *,
             with_rank: bool) -> pd.DataFrame:
    """Left columns, then right columns (suffixed where names collide), then score (and rank) and
    the columns the stages added to ``pairs``."""
    pairs = pairs.sort_values(["id_l", "rank" if with_rank else "id_l"], kind="stable")
    left_names, right_names, _ = output_names(left, right, cfg.suffixes)
    extra = [c for c in pairs.columns if c not in (*PAIR_COLUMNS, *BASE_COLUMNS)]
    check_output_columns(left, right, ["score", *(["rank"] if with_rank else []), *extra], cfg.suffixes)
    id_l = pairs["id_l"].to_numpy()
    left_part = left.iloc[id_l].rename(columns=left_names).reset_index(drop=True)
    right_part = right.iloc[pairs["id_r"].to_numpy()].rename(columns=right_names).reset_index(drop=True)
    out = pd.concat([left_part, right_part], axis=1)
    out["score"] = pairs["score"].to_numpy(dtype=np.float64)
    for col in extra:
        out[col] = pairs[col].array  # keeps extension dtypes (is_match stays the nullable boolean)
    if with_rank:
        out["rank"] = pairs["rank"].to_numpy(dtype=np.int64)
    order = id_l
    if cfg.keep_unmatched:
        missing = np.setdiff1d(np.arange(len(left)), id_l)
        if len(missing):
            rest = left.iloc[missing].rename(columns=left_names).reset_index(drop=True)
            out = pd.concat([out, rest], ignore_index=True) if len(out) else rest.reindex(columns=out.columns)
            order = np.concatenate([id_l, missing])
    out = out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    if with_rank and "rank" in out and out["rank"].isna().any():
        out["rank"] = out["rank"].astype("Int64")
    return out


#: Prefix of the pair columns that carry a calibration feature through a merge without becoming output columns.
HIDDEN_FEATURE = "__ltengine_feature__"


def hide_features(pairs: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` with the calibration features that are not its columns (the margins) as hidden columns."""
    extra = {HIDDEN_FEATURE + c: features[c].to_numpy() for c in features.columns if c not in pairs.columns}
    return pairs.assign(**extra)


def detach_features(out: pd.DataFrame) -> dict[str, list[float]]:
    """Remove the hidden feature columns from ``out`` (in place); returns them by feature name, one value per
    output row (NaN for a left row without a match), for ``out.attrs["ltengine"]["pair_features"]``.
    Plain lists, not arrays: pandas compares ``attrs`` with ``==`` when it prints or concatenates frames."""
    hidden = [c for c in out.columns if str(c).startswith(HIDDEN_FEATURE)]
    return {c[len(HIDDEN_FEATURE):]: out.pop(c).to_numpy(dtype=np.float64).tolist() for c in hidden}


"""Running a rerank chain over candidate pairs: bands, calls, verdicts, the output columns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ltengine.engine.output import RERANK_COLUMNS
from ltengine.engine.rerank.budget import Budget, RerankRun
from ltengine.engine.rerank.plan import plan
from ltengine.errors import PluginError

if TYPE_CHECKING:
    from ltengine.run import RunContext


def _as_frame(result: Any, index: pd.Index, name: str) -> pd.DataFrame:
    """A reranker's result as a frame with a float ``score`` column aligned to ``index``."""
    if isinstance(result, pd.Series):
        result = result.to_frame("score")
    elif isinstance(result, (np.ndarray, list)):
        result = pd.DataFrame({"score": np.asarray(result, dtype=np.float64)}, index=index)
    if not isinstance(result, pd.DataFrame) or "score" not in result.columns:
        raise PluginError(f"reranker {name!r} must return a Series or a DataFrame with a 'score' column")
    if len(result) != len(index):
        raise PluginError(f"reranker {name!r} returned {len(result)} scores for {len(index)} pairs")
    if not result.index.equals(index):
        result = result.reindex(index)
    scores = pd.to_numeric(result["score"], errors="coerce").astype(np.float64)
    finite = scores.dropna()
    if len(finite) and ((finite < -1e-6).any() or (finite > 1 + 1e-6).any()):
        raise PluginError(f"reranker {name!r} returned scores outside 0..1 (NaN means no verdict)")
    result = result.copy()
    result["score"] = scores.clip(0.0, 1.0)
    return result


def apply_rerankers(
    pairs: pd.DataFrame, left: pd.DataFrame, right: pd.DataFrame, context: RunContext, mode: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Run the chain of ``context.config.rerank`` over ``pairs``; return (pairs, column to decide on).

    ``pairs`` are the retrieved candidates (``score`` = retrieval cosine); ``left``/``right`` the
    full input tables.  Adds :data:`RERANK_COLUMNS` and the rerankers' own columns.  With
    ``mode="best"`` and no ``keep_non_matches``, pairs judged non-matches are dropped.
    """
    cfg = context.config
    the_plan = plan(cfg, context.host.registry)
    budget = Budget(the_plan.max_cost, the_plan.max_calls)
    left_cols = left[list(cfg.left_on)].reset_index(drop=True)
    right_cols = right[list(cfg.right_on)].reset_index(drop=True)
    work = pairs.reset_index(drop=True).copy()
    n = len(work)
    current = work["score"].astype(np.float64).clip(0.0, 1.0).to_numpy()
    is_match = pd.array([pd.NA] * n, dtype="boolean")
    decided_by = np.array(["retrieval"] * n, dtype=object)
    extras: dict[str, pd.Series] = {}
    stage_reports = []
    for stage in the_plan.stages:
        if stage.cascade:
            low, high = stage.band  # type: ignore[misc]
            undecided = np.isnan(current)
            above = ~undecided & (current > high)
            below = ~undecided & (current < low)
            send = ~(above | below)
            unset = np.asarray(is_match.isna(), dtype=bool)  # pairs kept out keep an earlier verdict
            is_match[above & unset] = True
            is_match[below & unset] = False
        else:
            above = below = np.zeros(n, dtype=bool)
            send = np.ones(n, dtype=bool)
        report: dict[str, Any] = {
            "reranker": stage.name,
            "spec": stage.spec,
            "cascade": stage.cascade,
            "band": list(stage.band) if stage.band else None,
            "pairs": n,
            "sent": int(send.sum()),
            "decided_above": int(above.sum()),
            "decided_below": int(below.sum()),
        }
        stage_reports.append(report)
        component = stage.component.create(model=stage.model, options=stage.options)
        component.attach(RerankRun(context, budget, the_plan.dry_run, report))
        idx = np.flatnonzero(send)
        if len(idx) == 0:
            continue
        sub = work.iloc[idx].rename(columns={"score": "retrieval_score"})
        sub.index = pd.RangeIndex(len(idx))
        result = _as_frame(
            context.run("rerank", component, pairs=sub, left=left_cols, right=right_cols), sub.index, stage.name
        )
        scores = result["score"].to_numpy()
        has = ~np.isnan(scores)
        if "is_match" in result.columns:
            verdict = pd.array(result["is_match"], dtype="boolean")
        else:
            verdict = pd.array(np.where(has, scores >= stage.match_threshold, False), dtype="boolean")
            verdict[~has] = pd.NA
        sel = idx[has]
        current[sel] = scores[has]
        is_match[idx] = verdict
        is_match[idx[~has]] = pd.NA
        decided_by[sel] = stage.name
        for col in result.columns:
            if col in ("score", "is_match"):
                continue
            if col in work.columns or col in RERANK_COLUMNS:
                raise PluginError(f"reranker {stage.name!r} returned a column {col!r} that ltengine already uses")
            values = result[col].to_numpy()
            if col not in extras:
                dtype = np.float64 if pd.api.types.is_float_dtype(result[col].dtype) else object
                extras[col] = pd.Series(np.full(n, np.nan if dtype is np.float64 else None, dtype=dtype))
            extras[col].iloc[idx] = values
        report["scored"] = int(has.sum())
        report["no_verdict"] = int((~has).sum())
    undecided = np.asarray(is_match.isna(), dtype=bool)
    decided_by[undecided] = None
    out = work
    out["rerank_score"] = np.where(np.isnan(current), work["score"].astype(np.float64).clip(0.0, 1.0), current)
    out["is_match"] = is_match  # nullable boolean always, also when every pair is decided
    out["decided_by"] = decided_by
    for col, values in extras.items():
        out[col] = values.to_numpy()
    if mode == "best" and not the_plan.keep_non_matches and len(out):
        out = _keep_matches(out)
    report = context.report.setdefault("rerank", {})
    report.update(
        stages=stage_reports,
        budget=budget.as_dict(),
        dry_run=the_plan.dry_run,
        matches=int(np.asarray(is_match.fillna(False), dtype=bool).sum()),
        undecided=int(undecided.sum()),
    )
    return out, "rerank_score"


def _keep_matches(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per left row: its matches; if none, its undecided pairs (no verdict); non-matches go."""
    verdict = pairs["is_match"]
    is_true = np.asarray(verdict.fillna(False), dtype=bool)
    is_na = np.asarray(verdict.isna(), dtype=bool)
    has_true = pd.Series(is_true).groupby(pairs["id_l"].to_numpy()).transform("any").to_numpy()
    keep = is_true | (is_na & ~has_true)
    return pairs[keep]

"""Choosing a score threshold from labelled pairs: :func:`suggest_threshold` (re-exported by
:mod:`ltengine.evaluate` and ``ltengine``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import LinkInputError
from ltengine.evaluate.checks import comparable_ids, link_id_columns, require_columns


@dataclasses.dataclass
class ThresholdSuggestion:
    """What :func:`suggest_threshold` returns."""

    threshold: float
    precision: float
    recall: float
    f1: float
    #: ``"max_f1"`` or ``"target_precision"``.
    criterion: str
    #: Columns threshold, precision, recall, f1 (one row per distinct score, ascending).
    curve: pd.DataFrame
    #: The matplotlib Figure when ``plot`` was asked for.
    figure: Any = None


def _labels(scored: pd.DataFrame, labels: Any, left_id: str | None, right_id: str | None, gold_left: str,
            gold_right: str) -> np.ndarray:

    if isinstance(labels, str):
        require_columns(scored, [labels], "labels")
        values = scored[labels]
    elif isinstance(labels, pd.DataFrame):
        require_columns(labels, [gold_left, gold_right], "gold pairs")
        lcol, rcol = link_id_columns(scored, left_id, right_id)
        pred_ids, gold_ids = comparable_ids([scored[lcol], scored[rcol]], [labels[gold_left], labels[gold_right]],
                                            f"({lcol!r}, {rcol!r})", f"({gold_left!r}, {gold_right!r})")
        return np.asarray(pd.MultiIndex.from_arrays(pred_ids).isin(pd.MultiIndex.from_arrays(gold_ids)))
    else:
        values = pd.Series(np.asarray(labels))
    if len(values) != len(scored):
        raise LinkInputError(f"labels has {len(values)} values for {len(scored)} scored pairs; give one per pair")
    if values.isna().any():
        raise LinkInputError(f"labels has {int(values.isna().sum())} missing values; label every pair True/False")
    uniq = set(pd.unique(values.to_numpy()).tolist())
    if not uniq <= {0, 1}:  # True/False compare equal to 1/0
        raise LinkInputError(f"labels must be booleans or 0/1; got values such as {sorted(map(repr, uniq))[:3]}")
    return values.to_numpy().astype(bool)


def suggest_threshold(
    scored_pairs: pd.DataFrame,
    labels: Any,
    *,
    target_precision: float | None = None,
    score: str = "score",
    plot: bool | str | Path = False,
    left_id: str | None = None,
    right_id: str | None = None,
    gold_left: str = "id_l",
    gold_right: str = "id_r",
) -> ThresholdSuggestion:
    """The score threshold that maximises F1 over ``scored_pairs`` (or, with ``target_precision``, the lowest
    threshold whose precision reaches it: the most recall at that precision).

    ``labels``: a boolean column name of ``scored_pairs``, a boolean/0-1 array (one per pair), or a frame
    of gold pairs (matched on ``left_id``/``right_id``, see :func:`evaluate`).  Recall is measured
    among the scored pairs (true pairs never retrieved are not counted).  ``plot=True`` draws the
    precision/recall curve (matplotlib) into ``result.figure``; a path also saves it there.
    """
    from sklearn.metrics import precision_recall_curve


    if not isinstance(scored_pairs, pd.DataFrame):
        raise LinkInputError(f"scored_pairs must be a DataFrame with a {score!r} column; got {type(scored_pairs).__name__}")
    require_columns(scored_pairs, [score], "score")
    from ltengine.evaluate.checks import score_values
    from ltengine.numeric import is_real

    if target_precision is not None and not (is_real(target_precision) and 0.0 < float(target_precision) <= 1.0):
        raise LinkInputError(f"target_precision must be a number in (0, 1]; got {target_precision!r}")
    s = score_values(scored_pairs, score)
    y = _labels(scored_pairs, labels, left_id, right_id, gold_left, gold_right)
    valid = ~np.isnan(s)
    y, s = y[valid], s[valid]
    if not y.any():
        raise LinkInputError("no pair is labelled a match: a threshold needs at least one true pair")
    precision, recall, thresholds = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)
    curve = pd.DataFrame({"threshold": thresholds, "precision": precision, "recall": recall, "f1": f1})
    if target_precision is None:
        best = int(np.flatnonzero(f1 == f1.max())[-1])  # ties: the highest threshold
        criterion = "max_f1"
    else:
        ok = np.flatnonzero(precision >= float(target_precision))
        if len(ok) == 0:
            raise LinkInputError(
                f"no threshold reaches precision {target_precision}: the best is {precision.max():.3f} "
                f"(at threshold {thresholds[int(precision.argmax())]:.4f}); lower target_precision or improve the scores"
            )
        best = int(ok[np.argmax(recall[ok])])
        criterion = "target_precision"
    result = ThresholdSuggestion(float(thresholds[best]), float(precision[best]), float(recall[best]),
                                 float(f1[best]), criterion, curve)
    if plot:
        result.figure = _plot(result, None if plot is True else Path(plot))
    return result


def _plot(result: ThresholdSuggestion, path: Path | None) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    curve = result.curve
    ax.plot(curve["threshold"], curve["precision"], label="precision")
    ax.plot(curve["threshold"], curve["recall"], label="recall")
    ax.plot(curve["threshold"], curve["f1"], label="F1")
    ax.axvline(result.threshold, color="grey", linestyle="--", label=f"threshold {result.threshold:.3f}")
    ax.set_xlabel("score threshold")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left")
    ax.set_title(f"{result.criterion}: P={result.precision:.3f} R={result.recall:.3f} F1={result.f1:.3f}")
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig

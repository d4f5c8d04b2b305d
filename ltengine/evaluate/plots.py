"""Charts of a linked output: the score distribution with the fitted components and the cut
(:func:`plot_scores`), and the waterfall of one explained pair (:func:`waterfall`, used by
:meth:`ltengine.evaluate.explain.Explanation.plot`).  matplotlib is imported only here, inside the
functions, and draws on a plain ``Figure`` (no pyplot, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import ColumnError, LinkInputError
from ltengine.evaluate.match_weights import bin_weights, find_calibration

#: The cut ``threshold="auto"`` applies: a pair is a match when its probability reaches it.
AUTO_CUT = 0.5
POSITIVE, NEGATIVE, TOTAL = "#2a9d4b", "#c0392b", "#34495e"


def _numbers(out: pd.DataFrame, column: str) -> np.ndarray:
    if column not in out.columns:
        raise ColumnError(f"the output has no {column!r} column to plot (columns: {', '.join(map(str, out.columns))})")
    values = pd.to_numeric(out[column], errors="coerce")
    bad = values.isna() & out[column].notna()
    if bad.any():
        raise ColumnError(f"column {column!r} holds non-numbers, e.g. {out[column][bad].iloc[0]!r}")
    return values.to_numpy(dtype=float)


def plot_scores(out: pd.DataFrame, path: str | Path | None = None, *, column: str = "score",
                bins: int = 40, report: Any = None) -> Any:
    """The distribution of ``column`` (default ``score``) split into the fitted components (each pair counted
    as a match with weight ``match_probability``, as a non-match with the rest), the distribution of
    ``match_probability`` with the cut at 0.5, and, when the run report (or ``report=``, as for
    :func:`ltengine.explain`) holds a binned calibration, each feature's fitted match weight per bin.
    Returns the matplotlib Figure; ``path`` also saves it."""
    from matplotlib.figure import Figure

    if not isinstance(out, pd.DataFrame):
        raise LinkInputError(f"plot_scores needs the linked output (a DataFrame), got {type(out).__name__}")
    if "match_probability" not in out.columns:
        raise ColumnError("the output has no match_probability column: link with an ltengine that writes it "
                          "(calibrated outputs) to plot its fitted components")
    if int(bins) < 2:
        raise LinkInputError(f"bins must be at least 2, got {bins}")
    probability = _numbers(out, "match_probability")
    keep = ~np.isnan(probability)  # unmatched rows kept by keep_unmatched have no pair
    if not keep.any():
        raise LinkInputError("the output has no scored pair to plot (every match_probability is missing)")
    probability = probability[keep]
    matches = int((probability >= AUTO_CUT).sum())
    with_scores = column in out.columns and column != "match_probability"
    curves = _weight_curves(out, report)
    panels = 1 + int(with_scores) + int(bool(curves))
    fig = Figure(figsize=(5.5 * panels, 4))
    axes = list(fig.subplots(1, panels, squeeze=False)[0])
    if curves:
        _draw_weights(axes.pop(), curves)
    if with_scores:
        scores = _numbers(out, column)[keep]
        ok = ~np.isnan(scores)
        edges = np.histogram_bin_edges(scores[ok], bins=int(bins))
        ax = axes[0]
        ax.hist([scores[ok], scores[ok]], bins=edges, weights=[probability[ok], 1.0 - probability[ok]],
                stacked=True, color=[POSITIVE, NEGATIVE], alpha=0.8,
                label=[f"matches (expected {probability[ok].sum():.0f})",
                       f"non-matches (expected {(1.0 - probability[ok]).sum():.0f})"])
        cut = _score_at_cut(scores[ok], probability[ok])
        if cut is not None:
            ax.axvline(cut, color="grey", linestyle="--", label=f"p = {AUTO_CUT} near {column} {cut:.3f}")
        ax.set_xlabel(column)
        ax.set_ylabel("pairs")
        ax.set_title(f"{column} by fitted component")
        ax.legend(loc="upper left", fontsize="small")
    ax = axes[-1]
    ax.hist(probability, bins=np.linspace(0.0, 1.0, 21), color=TOTAL, alpha=0.8)
    ax.axvline(AUTO_CUT, color="grey", linestyle="--", label=f"cut {AUTO_CUT}: {matches} of {len(probability)} pairs")
    ax.set_xlabel("match_probability")
    ax.set_ylabel("pairs")
    ax.set_title("match probability")
    ax.legend(loc="upper center", fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


def _weight_curves(out: pd.DataFrame, report: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per binned feature of the calibration: its inner edges and weights (empty when there is none)."""
    try:
        calibration = find_calibration(out, report)
    except LinkInputError:
        if report is not None:
            raise
        return {}
    features = calibration.get("features")
    if not isinstance(features, Mapping):
        return {}
    return {str(name): bin_weights(str(name), spec) for name, spec in features.items() if isinstance(spec, Mapping)}


def _draw_weights(ax: Any, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    for name, (edges, weights) in curves.items():
        if not len(edges):
            continue
        span = max(float(edges[-1] - edges[0]), 1e-3) * 0.05
        x = np.concatenate([[edges[0] - span], edges, [edges[-1] + span]])
        ax.stairs(weights / np.log(2.0), x, label=name, linewidth=1.5)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("feature value (bins of the fit)")
    ax.set_ylabel("match weight (log2 Bayes factor)")
    ax.set_title("fitted match weight per bin")
    ax.legend(loc="upper left", fontsize="small")


def _score_at_cut(scores: np.ndarray, probability: np.ndarray) -> float | None:
    """The score where the fitted probability crosses the cut: midway between the lowest-scored pair at or
    above it and the highest-scored pair below it that is still lower (None when one side is empty)."""
    above, below = scores[probability >= AUTO_CUT], scores[probability < AUTO_CUT]
    if not len(above) or not len(below):
        return None
    low = float(above.min())
    under = below[below <= low]
    return (low + float(under.max())) / 2.0 if len(under) else low


def waterfall(table: pd.DataFrame, *, title: str = "", path: str | Path | None = None) -> Any:
    """A Splink-style waterfall of an explanation table: the prior, each feature's match weight (log2
    Bayes factor; green raises the probability, red lowers it) and the final total, each bar labelled with
    the probability after it.  Returns the matplotlib Figure; ``path`` also saves it."""
    from matplotlib.figure import Figure

    missing = {"step", "feature", "match_weight", "probability_after"} - set(table.columns)
    if missing:
        raise ColumnError(f"not an explanation table: missing {', '.join(sorted(missing))}")
    labels, bottoms, heights, colours = [], [], [], []
    running = 0.0
    for record in table.itertuples(index=False):
        weight = float(record.match_weight)
        if record.step == "prior":
            labels.append("prior")
            bottoms.append(0.0)
            heights.append(weight)
            colours.append(TOTAL)
            running = weight
        elif record.step == "final":
            labels.append("final")
            bottoms.append(0.0)
            heights.append(weight)
            colours.append(TOTAL)
        else:
            labels.append(str(record.feature))
            bottoms.append(running)
            heights.append(weight)
            colours.append(POSITIVE if weight >= 0 else NEGATIVE)
            running += weight
    fig = Figure(figsize=(max(5.0, 1.0 + 0.9 * len(labels)), 4.5))
    ax = fig.subplots()
    positions = np.arange(len(labels))
    ax.bar(positions, heights, bottom=bottoms, color=colours, edgecolor="black", linewidth=0.5)
    for x, bottom, height, p in zip(positions, bottoms, heights, table["probability_after"]):
        ax.annotate(f"{height:+.2f}\np={float(p):.2f}", (x, bottom + max(height, 0.0)), ha="center", va="bottom",
                    fontsize="x-small", xytext=(0, 2), textcoords="offset points")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(positions)
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel("match weight (log2 Bayes factor)")
    ax.set_title(title, fontsize="small")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig

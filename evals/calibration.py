"""Calibration metrics for match probabilities: equal-mass bins, expected calibration error, Brier, AUC,
and a reliability plot (matplotlib, imported only when drawing).

``equal_mass_bins(p, n)`` sorts the probabilities (ties broken by input order, so the result is
deterministic) and cuts them into ``n`` contiguous bins whose sizes differ by at most one
(``numpy.array_split``); ``expected_calibration_error`` is ``sum_b |B_b| / N * |mean(y in B_b) - mean(p in B_b)|``
over those bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["auc", "brier", "calibration_summary", "equal_mass_bins", "expected_calibration_error",
           "reliability_plot"]


def _arrays(p: Sequence[float], y: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    prob, label = np.asarray(p, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if prob.shape != label.shape:
        raise ValueError(f"probabilities ({prob.size}) and labels ({label.size}) differ in length")
    if prob.size and (np.isnan(prob).any() or prob.min() < 0 or prob.max() > 1):
        raise ValueError("probabilities must be numbers in [0, 1] (no NaN)")
    return prob, label


def equal_mass_bins(p: Sequence[float], n_bins: int = 10) -> list[np.ndarray]:
    """Indices of ``p`` in ``n_bins`` bins of equal count (sizes differ by at most one), lowest ``p`` first."""
    prob = np.asarray(p, dtype=float).ravel()
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    order = np.argsort(prob, kind="stable")
    return [b for b in np.array_split(order, min(n_bins, max(len(order), 1))) if len(b)]


def reliability_table(p: Sequence[float], y: Sequence[int], n_bins: int = 10) -> list[dict[str, float]]:
    """Per equal-mass bin: count, mean predicted probability, observed match rate."""
    prob, label = _arrays(p, y)
    return [{"n": len(b), "mean_p": float(prob[b].mean()), "rate": float(label[b].mean())}
            for b in equal_mass_bins(prob, n_bins)]


def expected_calibration_error(p: Sequence[float], y: Sequence[int], n_bins: int = 10) -> float:
    """ECE over ``n_bins`` equal-mass bins (0 = perfectly calibrated); NaN when there is no row."""
    prob, label = _arrays(p, y)
    if not prob.size:
        return float("nan")
    return float(sum(len(b) * abs(label[b].mean() - prob[b].mean()) for b in equal_mass_bins(prob, n_bins)) / prob.size)


def brier(p: Sequence[float], y: Sequence[int]) -> float:
    """Mean squared difference between probability and 0/1 label."""
    prob, label = _arrays(p, y)
    return float(np.mean((prob - label) ** 2)) if prob.size else float("nan")


def auc(p: Sequence[float], y: Sequence[int]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half); NaN when one class is absent."""
    prob, label = _arrays(p, y)
    pos, neg = int((label == 1).sum()), int((label == 0).sum())
    if not pos or not neg:
        return float("nan")
    order = np.argsort(prob, kind="stable")
    ranks = np.empty(prob.size)
    sorted_p = prob[order]
    start = 0
    while start < prob.size:  # average ranks over ties
        stop = start
        while stop + 1 < prob.size and sorted_p[stop + 1] == sorted_p[start]:
            stop += 1
        ranks[order[start:stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return float((ranks[label == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def calibration_summary(p: Sequence[float], y: Sequence[int], n_bins: int = 10) -> dict[str, Any]:
    """ECE (equal-mass), Brier, AUC, counts and the reliability bins, rounded for a results file."""
    prob, label = _arrays(p, y)
    return {"n": int(prob.size), "positives": int(label.sum()),
            "ece": round(expected_calibration_error(prob, label, n_bins), 4),
            "brier": round(brier(prob, label), 4), "auc": round(auc(prob, label), 4),
            "bins": [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
                     for row in reliability_table(prob, label, n_bins)]}


def reliability_plot(curves: dict[str, list[dict[str, float]]], path: Path, title: str) -> Path:
    """One small reliability diagram per named set (``curves``: name -> :func:`reliability_table` rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves)
    cols = min(5, max(len(names), 1))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), dpi=100, squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        bins = curves[name]
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        ax.plot([b["mean_p"] for b in bins], [b["rate"] for b in bins], marker="o", markersize=3)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.supxlabel("mean match_probability (equal-mass bins)", fontsize=8)
    fig.supylabel("observed match rate", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

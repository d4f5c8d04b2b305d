"""Mapping a trained reranker's raw scores (logits) to calibrated 0..1 probabilities.

:func:`fit_score_calibration` fits Platt scaling (a logistic regression on the logit) or isotonic
regression (scikit-learn) on validation logits and their labels, and reports the calibration error
of each method measured by cross-fitting (each half of the validation pairs scored by a map fitted
on the other half), so the error reported is not the error on the pairs the map was fitted on.
The result is a JSON-able dict written beside the model (:data:`CALIBRATION_FILE`); the
cross-encoder reranker plugin reads it and applies it (the same two formulas as
:func:`apply_score_calibration`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ltengine.errors import LinkInputError

#: File beside a trained cross-encoder holding its score calibration (read by the reranker plugin).
CALIBRATION_FILE = "ltengine_calibration.json"
METHODS = ("auto", "platt", "isotonic")
#: Isotonic maps are step functions: this share of a sigmoid of the logit is mixed in so that scores
#: tied by a step keep the order of their logits (a reranker must still rank within a step).
ISOTONIC_TIE_BREAK = 1e-3
#: "auto" picks isotonic only from this many validation pairs, and only when its cross-fitted ECE is
#: lower than Platt's by at least ``AUTO_MARGIN`` (Platt keeps two parameters: steadier on little data).
AUTO_MIN_PAIRS, AUTO_MARGIN = 1000, 0.01


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Equal-mass ECE: pairs sorted by probability in ``bins`` groups of equal size; the
    pair-weighted mean |mean probability - share of matches| over the groups."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(p) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    total = 0.0
    for part in np.array_split(order, min(bins, len(p))):
        if len(part):
            total += len(part) * abs(p[part].mean() - y[part].mean())
    return float(total / len(p))


def apply_score_calibration(params: dict[str, Any], logits: np.ndarray,
                            retrieval: np.ndarray | None = None) -> np.ndarray:
    """Probabilities for ``logits`` under a fitted calibration (see the module docstring); a Platt map
    with ``w_score`` also reads each pair's ``retrieval`` score (0 where missing)."""
    z = np.asarray(logits, dtype=np.float64)
    if params["method"] == "platt":
        linear = float(params["a"]) * z + float(params["b"])
        if "w_score" in params:
            s = np.zeros(len(z)) if retrieval is None else np.nan_to_num(np.asarray(retrieval, dtype=np.float64))
            linear = linear + float(params["w_score"]) * s
        return 1.0 / (1.0 + np.exp(-linear))
    if params["method"] == "isotonic":
        steps = np.interp(z, np.asarray(params["x"], dtype=np.float64), np.asarray(params["y"], dtype=np.float64))
        eps = float(params.get("tie_break", ISOTONIC_TIE_BREAK))
        return (1.0 - eps) * steps + eps / (1.0 + np.exp(-z))
    raise LinkInputError(f"unknown score calibration method {params['method']!r}; expected 'platt' or 'isotonic'")


def _fit(method: str, z: np.ndarray, y: np.ndarray, retrieval: np.ndarray | None = None) -> dict[str, Any]:
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        x = z.reshape(-1, 1) if retrieval is None else np.column_stack([z, retrieval])
        model = LogisticRegression(C=1e4, max_iter=1000).fit(x, y)
        out = {"method": "platt", "a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}
        if retrieval is not None:
            out["w_score"] = float(model.coef_[0, 1])
        return out
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, y)
    x_knots, y_knots = model.X_thresholds_, model.y_thresholds_
    return {"method": "isotonic", "x": [float(v) for v in x_knots], "y": [float(v) for v in y_knots],
            "tie_break": ISOTONIC_TIE_BREAK}


def _cross_fitted(method: str, z: np.ndarray, y: np.ndarray, seed: int,
                  retrieval: np.ndarray | None = None) -> np.ndarray | None:
    """Out-of-fold probabilities (2 folds, stratified), or None when a fold lacks a class."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(z), dtype=np.int64)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        fold[idx] = rng.permutation(len(idx)) % 2
    out = np.empty(len(z), dtype=np.float64)
    for f in (0, 1):
        train, test = fold != f, fold == f
        if len(np.unique(y[train])) < 2 or not test.any():
            return None
        part = None if retrieval is None else retrieval[train]
        out[test] = apply_score_calibration(_fit(method, z[train], y[train], part), z[test],
                                            None if retrieval is None else retrieval[test])
    return out


def fit_score_calibration(
    logits: np.ndarray, labels: np.ndarray, method: str = "auto", seed: int = 0,
    retrieval: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fit ``method`` ("platt", "isotonic", or "auto": Platt, unless there are at least
    :data:`AUTO_MIN_PAIRS` pairs and isotonic's cross-fitted ECE is lower by :data:`AUTO_MARGIN`) on
    validation ``logits`` and 0/1 ``labels``.  With the pairs' ``retrieval`` scores (all finite) and
    ``method`` "auto" or "platt", the map is Platt over the logit *and* the retrieval score (``w_score``):
    the reranker's probability then keeps what retrieval knew, so a cross-encoder that learnt little cannot
    undo a good retrieval ranking.  An explicit "isotonic" stays a map of the logit alone.

    Returns ``{"method", parameters, "ece", "brier", "ece_uncalibrated", "pairs", "positives"}``:
    ``ece``/``brier`` are cross-fitted (2 folds) for the chosen method, ``ece_uncalibrated`` that of
    a plain sigmoid of the logits.
    """
    if method not in METHODS:
        raise LinkInputError(f"calibration must be one of {', '.join(METHODS)}; got {method!r}")
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(np.unique(y)) < 2:
        raise LinkInputError(
            "the validation pairs have only one class (all matches or all non-matches): a score calibration needs "
            "both; give more labelled rows or a larger validation share"
        )
    stacked = (method != "isotonic" and retrieval is not None and len(retrieval) == len(z)
               and bool(np.isfinite(retrieval).all()))
    r = np.asarray(retrieval, dtype=np.float64).reshape(-1) if stacked else None
    if stacked:
        method = "platt"  # the two-input map is a logistic regression
    scores: dict[str, tuple[float, float]] = {}
    for name in (("platt", "isotonic") if method == "auto" else (method,)):
        oof = _cross_fitted(name, z, y, seed, r if name == "platt" else None)
        if oof is not None:
            scores[name] = (expected_calibration_error(oof, y), float(np.mean((oof - y) ** 2)))
    chosen = "platt" if method == "auto" else method
    if (method == "auto" and len(y) >= AUTO_MIN_PAIRS and {"platt", "isotonic"} <= set(scores)
            and scores["isotonic"][0] <= scores["platt"][0] - AUTO_MARGIN):
        chosen = "isotonic"
    params = _fit(chosen, z, y, r if chosen == "platt" else None)
    ece, brier = scores.get(chosen, (float("nan"), float("nan")))
    params.update(
        ece=round(ece, 6),
        brier=round(brier, 6),
        ece_uncalibrated=round(expected_calibration_error(1.0 / (1.0 + np.exp(-z)), y), 6),
        compared={name: {"ece": round(e, 6), "brier": round(b, 6)} for name, (e, b) in scores.items()},
        pairs=len(y),
        positives=int(y.sum()),
    )
    return params

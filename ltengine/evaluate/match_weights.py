"""Reading a calibration's parameters (the run report's ``calibration``) as per-feature log-odds.

Two parameter forms are understood:

- **logistic**: ``intercept`` and ``weights`` (feature -> weight, or a list beside ``features``), optional
  ``mean``/``scale`` (standardisation).  A feature's contribution is ``weight * (value - mean) / scale``;
  the start is the intercept.
- **Fellegi-Sunter**: ``match_share``/``prior`` (share of candidate pairs that match) or ``prior_logit``, and
  per feature ``edges`` (inner bin edges, or with the outer ones) with ``weights``/``log_odds`` per bin (the
  form of :class:`ltengine.engine.calibration.MatchModel`), or ``m``/``u`` (per-bin probability among matches /
  non-matches).  A feature's contribution is the weight, ``ln(m/u)``, of the bin its value falls in; a
  missing value contributes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import LinkInputError

#: Where the run report keeps the calibration, and the output column it explains.
CALIBRATION_KEY = "calibration"
PROBABILITY_COLUMN = "match_probability"


@dataclass
class Term:
    """One feature's part of a pair's log-odds."""

    feature: str
    value: float
    log_odds: float
    bin: str = ""


def find_calibration(out: pd.DataFrame | None = None, report: Any = None) -> dict[str, Any]:
    """The calibration parameters: from ``report`` when given (the calibration itself, a run report, the
    ``attrs["ltengine"]`` dict, or a JSON file holding one of these), else from ``out``'s run report."""
    source = "report="
    if report is None:
        if out is None:
            raise LinkInputError("give the linked output or report= to find its calibration")
        report, source = out.attrs.get("ltengine", {}), "the output's run report"
    elif isinstance(report, (str, Path)):
        source = f"report file {str(report)!r}"
        try:
            report = json.loads(Path(report).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LinkInputError(f"cannot read the run report {source}: {exc}") from None
    if not isinstance(report, Mapping):
        raise LinkInputError(f"{source} is a {type(report).__name__}, not a run report (a dict)")
    for key in ("ltengine", "report", CALIBRATION_KEY):
        if isinstance(report.get(key), Mapping):
            report = report[key]
    if not _is_calibration(report):
        raise LinkInputError(
            f"{source} has no calibration (no '{CALIBRATION_KEY}' with weights or m/u bins): this output has no "
            f"fitted {PROBABILITY_COLUMN}; link again with an ltengine that writes {PROBABILITY_COLUMN}, and keep "
            "its run report (out.attrs, or the .report.json file the CLI writes beside the output)"
        )
    return dict(report)


def _is_calibration(params: Mapping[str, Any]) -> bool:
    return any(key in params for key in ("weights", "coef", "m", "u", "features", "comparisons"))


def contributions(calibration: Mapping[str, Any], value_of: Any) -> tuple[float, list[Term], str]:
    """The start (prior log-odds), one :class:`Term` per feature, and the method name, for the pair
    whose feature values ``value_of(name)`` gives.  Missing values (NaN) contribute nothing."""
    if any(key in calibration for key in ("weights", "coef")) and "m" not in calibration:
        return (*_logistic(calibration, value_of), "logistic")
    return (*_fellegi_sunter(calibration, value_of), "fellegi-sunter")


def _named(values: Any, names: Sequence[str] | None, what: str) -> dict[str, float]:
    if isinstance(values, Mapping):
        return {str(key): float(value) for key, value in values.items()}
    if names is None or len(names) != len(values):
        raise LinkInputError(f"calibration {what}: a list needs 'features' of the same length (names)")
    return {str(name): float(value) for name, value in zip(names, values)}


def _logistic(params: Mapping[str, Any], value_of: Any) -> tuple[float, list[Term]]:
    names = params.get("features")
    names = list(names) if isinstance(names, Sequence) and not isinstance(names, str) else None
    weights = _named(params.get("weights", params.get("coef")), names, "weights")
    mean = _named(params.get("mean", {}), list(weights), "mean")
    scale = _named(params.get("scale", {}), list(weights), "scale")
    terms = []
    for name, weight in weights.items():
        value = value_of(name)
        standard = (value - mean.get(name, 0.0)) / (scale.get(name, 1.0) or 1.0)
        terms.append(Term(name, value, 0.0 if math.isnan(value) else weight * standard))
    return float(params.get("intercept", params.get("bias", 0.0))), terms


def _prior_log_odds(params: Mapping[str, Any]) -> float:
    for key in ("prior_log_odds", "prior_logit"):
        if key in params:
            return float(params[key])
    prior = float(params.get("prior", params.get("match_share", params.get("lambda", math.nan))))
    if not 0.0 < prior < 1.0:
        raise LinkInputError(f"calibration prior must be a share in (0, 1), got {prior}")
    return math.log(prior / (1.0 - prior))


def _fellegi_sunter(params: Mapping[str, Any], value_of: Any) -> tuple[float, list[Term]]:
    features = params.get("features", params.get("comparisons"))
    if isinstance(features, Sequence) and not isinstance(features, str):
        features = {str(item.get("name", item.get("feature"))): item for item in features}
    if not isinstance(features, Mapping) or not features:
        raise LinkInputError("calibration has no features: expected 'weights' (logistic) or 'features' with m/u bins")
    terms = []
    for name, spec in features.items():
        value = value_of(name)
        terms.append(_bin_term(str(name), value, spec))
    return _prior_log_odds(params), terms


def bin_weights(name: str, spec: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A binned feature's inner edges and its log-odds weight per bin (one more than the edges)."""
    if "log_odds" in spec or "weights" in spec:
        per_bin = np.asarray(spec.get("log_odds", spec.get("weights")), dtype=float)
    elif "match_weight" in spec:
        per_bin = np.asarray(spec["match_weight"], dtype=float) * math.log(2.0)
    elif "m" in spec and "u" in spec:
        m, u = np.asarray(spec["m"], dtype=float), np.asarray(spec["u"], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_bin = np.log(m) - np.log(u)
    else:
        raise LinkInputError(f"calibration feature {name!r} has neither m/u nor log_odds per bin")
    edges = np.asarray(spec.get("edges", spec.get("bins", [])), dtype=float)
    if len(edges) == len(per_bin) + 1:
        edges = edges[1:-1]  # outer edges given: values beyond them fall in the end bins
    if len(edges) != len(per_bin) - 1:
        raise LinkInputError(
            f"calibration feature {name!r}: {len(per_bin)} bins need {len(per_bin) - 1} inner edges "
            f"(or {len(per_bin) + 1} with the outer ones), got {len(edges)}")
    return edges, per_bin


def _bin_term(name: str, value: float, spec: Mapping[str, Any]) -> Term:
    edges, per_bin = bin_weights(name, spec)
    if math.isnan(value):
        return Term(name, value, 0.0, "missing")
    index = int(np.searchsorted(edges, value, side="right"))
    low = f"{edges[index - 1]:.3g}" if index > 0 else "-inf"
    high = f"{edges[index]:.3g}" if index < len(edges) else "inf"
    return Term(name, value, float(per_bin[index]), f"[{low}, {high})")


def sigmoid(log_odds: float) -> float:
    """The probability of these log-odds (no overflow)."""
    if log_odds >= 0:
        return 1.0 / (1.0 + math.exp(-log_odds))
    odds = math.exp(log_odds)
    return odds / (1.0 + odds)

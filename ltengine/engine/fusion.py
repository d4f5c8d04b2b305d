"""Fusing semantic and lexical candidate scores (the hybrid mode), and fitting fusion weights.

    knn = lt.merge_knn(left, right, on="name", mode="hybrid", k=10)   # has score_semantic, score_lexical
    weights = lt.fit_fusion(knn, labels)          # labels: 1 where the pair is a match
    out = lt.merge(left, right, on="name", mode="hybrid", fuser_options=weights)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ltengine.engine.output import HYBRID_COLUMNS
from ltengine.errors import LinkInputError, PluginError

if TYPE_CHECKING:
    from ltengine.components import Fuser
    from ltengine.plugins import PluginHost

#: Component score columns kept in the output of the hybrid mode (registered in :mod:`ltengine.engine.output`).
SCORE_COLUMNS = HYBRID_COLUMNS


def fuse(fuser: Fuser, pairs: pd.DataFrame) -> np.ndarray:
    """Run ``fuser`` on ``pairs`` (with component scores and ranks); check its contract."""
    if pairs.empty:
        return np.zeros(0, dtype=np.float64)
    result = fuser.fuse(pairs)
    values = np.asarray(result.reindex(pairs.index) if isinstance(result, pd.Series) else result, dtype=np.float64)
    if values.shape != (len(pairs),):
        raise PluginError(f"fuser {fuser.name!r} returned {values.shape} scores for {len(pairs)} pairs")
    if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
        raise PluginError(f"fuser {fuser.name!r} must return finite scores in [0, 1]")
    return values


def fit_fusion(pairs: pd.DataFrame, labels: Any, fuser: str = "weighted", *,
               host: PluginHost | None = None, **kwargs: Any) -> dict[str, Any]:
    """Fit the options of ``fuser`` on labelled candidate pairs and return them (pass as ``fuser_options``).

    ``pairs``: a frame with ``score_semantic`` and ``score_lexical`` (e.g. from
    ``merge_knn(..., mode="hybrid")``); ``labels``: 1/True where the pair is a match, one per row.
    The default ``weighted`` fuser is fitted by logistic regression (scikit-learn).
    """
    from ltengine.plugins import get_host

    if not isinstance(pairs, pd.DataFrame):
        raise LinkInputError(f"fit_fusion needs a DataFrame of pairs; got {type(pairs).__name__}")
    if isinstance(labels, pd.Series):
        labels = labels.to_numpy()
    spec = (host or get_host()).registry.get("fuser", fuser)
    return dict(spec.cls.fit(pairs, labels, **kwargs))


def create_fuser(host: PluginHost, name: str, options: Mapping[str, Any], encoder: str | None = None) -> Fuser:
    """Instantiate fuser ``name``; a fuser whose Options have an ``encoder`` field is told the run's
    encoder (its registry name) unless the options set it."""
    import dataclasses

    spec = host.registry.get("fuser", name)
    options = dict(options)
    fields = {f.name for f in dataclasses.fields(spec.cls.Options)}
    if encoder is not None and "encoder" in fields and "encoder" not in options:
        options["encoder"] = encoder
    return spec.create(options=options)

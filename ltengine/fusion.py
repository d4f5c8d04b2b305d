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

from .errors import LinkInputError, PluginError
from .output import HYBRID_COLUMNS

if TYPE_CHECKING:
    from .components import Fuser
    from .plugins import PluginHost

#: Component score columns kept in the output of the hybrid mode (registered in :mod:`ltengine.output`).
SCORE_COLUMNS = HYBRID_COLUMNS


def add_component_ranks(pairs: pd.DataFrame, left_texts: Any = None) -> pd.DataFrame:
    """Add each pair's standing among its left row's candidates, per component score:

    ``rank_semantic`` / ``rank_lexical`` (1 = best, ties by lower id_r) and ``gap_semantic`` /
    ``gap_lexical`` (the score minus the row's best score, <= 0).  Left rows are ``id_l``, or in a
    ``merge_knn`` output (no ``id_l``) the runs that start at ``rank == 1``.  With ``left_texts``
    (the left text of each pair), ``script_l`` is added too: the dominant script of that text.
    """
    pairs = pairs.copy()
    if "id_l" in pairs.columns:
        row = pairs["id_l"]
    elif "rank" in pairs.columns:
        row = pd.Series(np.cumsum(pairs["rank"].to_numpy() == 1), index=pairs.index)
    else:
        raise LinkInputError("the pairs need an id_l column (or the rank column of a merge_knn output)")
    right = pairs["id_r"] if "id_r" in pairs.columns else pd.Series(np.arange(len(pairs)), index=pairs.index)
    keyed = pd.DataFrame({"row": row.to_numpy(), "id_r": right.to_numpy()}, index=pairs.index)
    for column, name in (("score_semantic", "semantic"), ("score_lexical", "lexical")):
        if column not in pairs.columns:
            continue
        keyed["score"] = pairs[column].to_numpy()
        ordered = keyed.sort_values(["row", "score", "id_r"], ascending=[True, False, True], kind="stable")
        pairs[f"rank_{name}"] = (ordered.groupby("row", sort=False).cumcount().astype(np.int64) + 1).reindex(pairs.index)
        pairs[f"gap_{name}"] = keyed["score"] - keyed.groupby("row", sort=False)["score"].transform("max")
    if left_texts is not None:
        from .scripts import dominant_script

        texts = pd.Series(np.asarray(left_texts, dtype=object), index=pairs.index)
        scripts = {text: dominant_script(text) or "none" for text in pd.unique(texts)}
        pairs["script_l"] = texts.map(scripts)
    return pairs


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
    from .plugins import get_host

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

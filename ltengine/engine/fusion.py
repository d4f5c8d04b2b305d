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

from ltengine.engine.decide import top_k_per_left
from ltengine.engine.output import HYBRID_COLUMNS
from ltengine.errors import ConfigError, LinkInputError, PluginError
from ltengine.lexical.scripts import profile_distance, scripts_differ
from ltengine.pair_features import add_component_ranks
from ltengine.retrieval import inner_products
from ltengine.row_order import sorted_unique

if TYPE_CHECKING:
    from ltengine.components import Fuser, Retriever
    from ltengine.config import LinkConfig
    from ltengine.engine.encoding import SideVectors
    from ltengine.plugins import PluginHost

#: Component score columns kept in the output of the hybrid mode (registered in :mod:`ltengine.engine.output`).
SCORE_COLUMNS = HYBRID_COLUMNS
#: Candidate pairs whose vectors are gathered at once when the hybrid mode scores them.
PAIR_CHUNK = 4096


def auto_mode(left: dict[str, float], right: dict[str, float], semantic: bool) -> tuple[str, dict[str, Any]]:
    """The mode ``"auto"`` picks for these script profiles (hybrid when the two sides' scripts differ
    and the right side was encoded), and what goes into the run report about it."""
    hybrid = scripts_differ(left, right) and semantic
    reason = (f"auto: script mix distance {profile_distance(left, right):.2f} ({'>=' if hybrid else '<'} 0.10) "
              f"between left {_top_scripts(left)} and right {_top_scripts(right)}")
    mode = "hybrid" if hybrid else "semantic"
    return mode, {"mode": mode, "mode_reason": reason, "scripts": {"left": left, "right": dict(right)}}


def _top_scripts(profile: dict[str, float]) -> str:
    return "(" + ", ".join(f"{s} {share:.0%}" for s, share in list(profile.items())[:3]) + ")" if profile else "(no letters)"


def check_hybrid_components(host: PluginHost, cfg: LinkConfig) -> None:
    """Fail before any work on an unknown lexical retriever or fuser (or bad options)."""
    spec = host.registry.get("retriever", cfg.lexical_retriever)
    if spec.cls.inputs != "texts":
        lexical = [s.name for s in host.registry.specs("retriever") if s.cls.inputs == "texts"]
        raise ConfigError(
            f"lexical_retriever {cfg.lexical_retriever!r} searches vectors, not texts; "
            f"use one of: {', '.join(lexical) or 'none'}"
        )
    spec.create(options=cfg.lexical_options)
    if cfg.mode in ("hybrid", "auto"):
        create_fuser(host, cfg.fuser, cfg.fuser_options)


def row_map(n: int, ids: np.ndarray) -> np.ndarray:
    """Row position -> index into ``ids`` (-1 where absent)."""
    rows = np.full(n, -1, dtype=np.int64)
    rows[ids] = np.arange(len(ids))
    return rows


def fuse_candidates(semantic: pd.DataFrame, lexical: pd.DataFrame, fuser: Fuser, *, block_of: np.ndarray,
                    blocks: list[tuple[Retriever, Retriever]], left_rows: np.ndarray, vectors: SideVectors,
                    lexical_texts: np.ndarray, right_vectors: np.ndarray | None, right_rows: np.ndarray | None,
                    k: int, threshold: float | None) -> pd.DataFrame:
    """Union two candidate lists, score every pair with both components, fuse, keep the best.

    ``block_of``: left row -> block number (-1: none); ``blocks``: per block number, its (semantic,
    lexical) retrievers; ``left_rows``: left row -> row of ``vectors`` (the left embeddings);
    ``lexical_texts``: per left row.  The semantic score comes from the block retriever's
    ``score_pairs``, or when ``right_vectors`` is given (a retriever that cannot score pairs) from
    those, ``right_rows`` mapping right rows to them.  Lexical features are the lexical retriever's
    :meth:`~ltengine.Retriever.pair_features`.  Returns the ``k`` best per left row (or, with
    ``threshold``, every pair whose fused score reaches it) with the component scores.
    """
    id_l, id_r = union_pairs(semantic, lexical)
    pairs = pd.DataFrame({"id_l": id_l, "id_r": id_r})
    # every pair is scored by score_pairs, also those the semantic search found: its score is the same up to the
    # last float32 bits, which depend on the search's batch, while score_pairs gives a pair one score however the
    # left table is split (one call and two halves give the same probabilities)
    semantic_scores = np.empty(len(pairs), dtype=np.float32)
    features: dict[str, np.ndarray] = {"score_lexical": np.zeros(len(pairs), dtype=np.float32)}
    pair_blocks = block_of[id_l]
    order = np.argsort(pair_blocks, kind="stable")
    bounds = np.searchsorted(pair_blocks[order], np.arange(len(blocks) + 1))
    for number, (semantic_index, lexical_index) in enumerate(blocks):
        rows = order[bounds[number] : bounds[number + 1]]
        if not len(rows):
            continue
        for lo in range(0, len(rows), PAIR_CHUNK):  # bounded memory: PAIR_CHUNK vectors at a time
            part = rows[lo : lo + PAIR_CHUNK]
            queries = vectors[left_rows[id_l[part]]]
            if right_vectors is None:  # the block's retriever scores the pairs from its own copy
                semantic_scores[part] = semantic_index.score_pairs(queries, id_r[part])
            else:  # a retriever without score_pairs: the vectors kept at fit
                semantic_scores[part] = inner_products(queries, right_vectors.__getitem__,
                                                       right_rows[id_r[part]])  # type: ignore[index]
        found = lexical_index.pair_features(list(lexical_texts[id_l[rows]]), id_r[rows])
        for name, values in found.items():
            features.setdefault(name, np.zeros(len(pairs), dtype=np.float32))[rows] = values
    pairs["score_semantic"] = semantic_scores
    for name, values in features.items():
        pairs[name] = values
    pairs["retrieval_score"] = fuse(fuser, add_component_ranks(pairs, lexical_texts[id_l]))
    if threshold is not None:  # range: every fused pair at or above the threshold
        pairs = top_k_per_left(pairs[pairs["retrieval_score"] >= threshold], len(pairs) or 1, score="retrieval_score")
    else:
        pairs = top_k_per_left(pairs, k, score="retrieval_score")
    return pairs[["id_l", "id_r", "retrieval_score", "rank", *SCORE_COLUMNS]]


def union_pairs(*frames: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (id_l, id_r) row-position pairs of ``frames``, sorted by id_l then id_r."""
    id_l = np.concatenate([f["id_l"].to_numpy(dtype=np.int64) for f in frames])
    id_r = np.concatenate([f["id_r"].to_numpy(dtype=np.int64) for f in frames])
    if not len(id_l):
        return id_l, id_r
    width = int(id_r.max()) + 1
    keys = sorted_unique(id_l * width + id_r)  # one int64 key per pair: sorted, distinct
    return keys // width, keys % width


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

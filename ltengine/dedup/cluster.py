"""Deduplication and clustering of one table: ``cluster_rows`` and ``dedup_rows``.

How it works (never an n x n matrix):

1. Each row is serialised (as in ``merge``).  Rows with the same text and the same blocking values are
   one *unit* (exact duplicates, similarity 1); rows with an empty text are singletons and never
   clustered with anything.
2. The units are linked to themselves with :class:`~ltengine.engine.linker.Linker` (``fit`` then
   ``candidates``, ``k + 1`` neighbours, self pairs dropped): a sparse, symmetric kNN graph whose
   edges carry the retrieval score and a match probability fitted without labels.  Blocks (``block_on``)
   are respected.  Queries go in chunks, so memory is the index plus one chunk of candidates plus the
   kept edges.
3. Optionally a reranker chain (``rerank=...``, as in ``merge``) judges the edges at or above the
   threshold; only edges it accepts (``is_match`` true) are kept, weighted by ``rerank_score``.
4. Clustering on the graph (``method``):

   - ``"connected"``: connected components over edges with score >= ``threshold`` (single linkage).
   - ``"average"``: average-linkage agglomerative clustering, merging while the mean similarity
     between two clusters is >= ``threshold``.  Pairs missing from the kNN graph count as
     similarity 0 (``missing_edges="zero"``, true average linkage when ``k`` is at least the
     cluster size) or are left out of the mean (``"ignore"``, the mean over retrieved pairs only).
   - ``"hdbscan"``: scikit-learn's HDBSCAN on the sparse kNN distance graph (``1 - score``, all retrieved
     edges), whose clusters are then split by the connected components of the threshold graph;
     points it calls noise become singletons.

   A cluster is always inside one connected component of the threshold graph, whatever the method.
   Every row gets a cluster id; a row with no neighbour above the threshold is its own cluster.

Step 2-3 live in :mod:`ltengine.dedup.graph`, step 4 in :mod:`ltengine.dedup.linkage`; this module holds
the public functions and resolves their configuration with :meth:`LinkConfig.resolve
<ltengine.config.LinkConfig.resolve>` (``mode`` as given, else ``merge``'s adaptive chain with ``threshold="auto"``
and semantic with a cosine threshold).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from ltengine.compat import ClusterSettings, cluster_settings, linktransformer_arguments
from ltengine.config import Columns, ConfigLike, LinkConfig, as_columns, check_threshold
from ltengine.dedup.graph import QUERY_CHUNK_TEXTS, knn_graph
from ltengine.dedup.linkage import average_linkage, connected_labels, dbscan_labels, hdbscan_labels
from ltengine.engine.output import CLUSTER_COLUMN, MATCH_PROBABILITY, check_clash
from ltengine.errors import ConfigError, LinkInputError, did_you_mean

Method = Literal["connected", "average", "hdbscan"]
METHODS = ("connected", "average", "hdbscan")
KEEP_POLICIES = ("first", "longest")
MISSING_EDGES = ("zero", "ignore")
#: Rows above which ``method="hdbscan"`` refuses to run (one HDBSCAN fit per connected component).
HDBSCAN_MAX_ROWS = 200_000
#: Duplicate thresholds, for the message of an out-of-range one.
_TYPICAL = "duplicate thresholds are 0.7-0.95, or 'auto'"
#: ``threshold="auto"``: edges are kept at this match probability (fitted without labels).
AUTO_CUT = 0.5
#: Chaining guard (``"auto"``): a component of more than ``k + 1`` units (distinct texts) is split by
#: average linkage at ``AUTO_CUT``.  Each unit retrieves ``k`` neighbours, so only a group of at most
#: ``k + 1`` can be seen whole; a larger component is held together by chains of single edges.  (FEBRL3,
#: quick: limits 50 / 22 / 11 / 5 give pairwise F1 0.73 / 0.91 / 0.95 / 0.95; raise ``k`` for larger groups.)


# -- configuration and input checks -----------------------------------------------------------------
def self_link_config(on: Columns, config: ConfigLike, options: dict[str, Any], *, adaptive: bool = False) -> LinkConfig:
    """The LinkConfig of a self-link, by :meth:`LinkConfig.resolve` (arguments in ``options`` win over ``config``).

    ``on`` is compared on both sides, else the config's ``left_on``.  The mode given (argument or
    config) is kept; ``"auto"`` (none given) is the adaptive chain of ``merge`` with ``adaptive`` (a match
    probability cut), else semantic (a numeric threshold is a cosine similarity).
    """
    on_cols = as_columns(on, "on") or None
    cfg = LinkConfig.resolve(config, left_on=on_cols, right_on=on_cols, **options)
    if not cfg.left_on:
        raise LinkInputError("no columns to compare: pass on='column' (or a list of columns)")
    changes: dict[str, Any] = {}
    if cfg.right_on != cfg.left_on:
        changes["right_on"] = cfg.left_on
    if cfg.mode == "auto" and not adaptive:
        changes["mode"] = "semantic"
    return cfg.replace(**changes) if changes else cfg


def _check_frame(df: Any, cfg: LinkConfig) -> pd.DataFrame:
    from ltengine.engine.text import check_columns, check_frame

    df = check_frame(df, "input")
    check_columns(df, cfg.left_on, "input", role="compared")
    check_columns(df, cfg.block_on, "input", role="blocking")
    return df


# -- the public functions ---------------------------------------------------------------------------
@linktransformer_arguments
def cluster_rows(
    df: pd.DataFrame,
    on: Columns = None,
    model: str | None = None,
    threshold: float | str = "auto",
    method: Method = "connected",
    k: int = 10,
    block_on: Columns = None,
    *,
    missing_edges: str = "zero",
    hdbscan_options: Mapping[str, Any] | None = None,
    cluster_type: str | None = None,
    cluster_params: Mapping[str, Any] | None = None,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """Cluster near-duplicate rows of ``df``: a copy with an int ``cluster`` column (0, 1, ... in order
    of first appearance) and ``match_probability``: the highest match probability of the row's edges inside
    its cluster (1.0 for a copy of another row's text); for a row alone, the highest of its edges (how close it
    came to joining a cluster; NaN without any).

    ``on``: the column(s) compared; ``threshold``: the cosine similarity (or reranker score) at
    which two rows are duplicates (semantic mode unless a mode is given), or ``"auto"`` (the default): the rows
    are linked by ``merge``'s adaptive chain (both retrievers, fused), a match-probability model is fitted without
    labels on the self-link's top-``k`` candidates and edges with ``match_probability >= 0.5`` are kept; a component
    of more than ``k + 1`` distinct texts (more than the kNN graph can see whole) is split by average linkage at the same cut
    (the chaining guard); the model and the guard are in the run report; ``method``: ``"connected"``, ``"average"`` or ``"hdbscan"`` (see
    the module docs); ``k``: neighbours retrieved per row (raise it when clusters are larger);
    ``block_on``: only rows with equal values there are compared.  Every row gets a cluster; rows
    without a near duplicate (and rows with an empty text) are singletons.  Other keyword
    arguments are :class:`LinkConfig` fields, e.g. ``rerank="cross-encoder:/path"`` to judge the
    edges, ``progress=False``.  ``out.attrs["ltengine"]["report"]`` holds counts and timings.
    LinkTransformer's ``cluster_type`` ("SLINK", "agglomerative", "HDBScan") and ``cluster_params`` (distance
    thresholds) are translated by :func:`ltengine.compat.cluster_settings` (instead of ``method``/``threshold``).
    """
    if isinstance(df, pd.DataFrame):
        check_clash(df.columns, (CLUSTER_COLUMN, MATCH_PROBABILITY), "input", "cluster_rows")
    method, threshold, hdbscan_options, settings = _translated(cluster_type, cluster_params, method, threshold,
                                                               hdbscan_options)
    df, labels, probability, attrs = _cluster_labels(df, on, model, threshold, method, k, block_on, missing_edges,
                                                     hdbscan_options, config, options, settings)
    out = df.copy()
    out[CLUSTER_COLUMN] = labels
    out[MATCH_PROBABILITY] = probability
    out.attrs["ltengine"] = attrs
    return out


def _cluster_labels(df: Any, on: Columns, model: str | None, threshold: float | str, method: Any, k: int,
                    block_on: Columns, missing_edges: str, hdbscan_options: Mapping[str, Any] | None,
                    config: ConfigLike, options: dict[str, Any],
                    settings: ClusterSettings | None = None,
                    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[str, Any]]:
    """The checked frame, a cluster id and a match probability per row, and the report (see :func:`cluster_rows`)."""
    start = time.perf_counter()
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}.{did_you_mean(str(method), METHODS)} Use one of: {', '.join(METHODS)}.")
    if missing_edges not in MISSING_EDGES:
        raise ConfigError(f"missing_edges must be one of {MISSING_EDGES}; got {missing_edges!r}")
    if hdbscan_options and method != "hdbscan":
        raise ConfigError("hdbscan_options only apply to method='hdbscan'")
    auto = isinstance(threshold, str) and threshold.strip().lower() == "auto"
    threshold = "auto" if auto else check_threshold(threshold, typical=_TYPICAL)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer (neighbours per row); got {k!r}")
    cfg = self_link_config(on, config, dict(options, model=model, block_on=as_columns(block_on, "block_on") or None),
                           adaptive=auto)
    df = _check_frame(df, cfg)
    if method == "hdbscan" and len(df) > HDBSCAN_MAX_ROWS:
        raise LinkInputError(
            f"method='hdbscan' is limited to {HDBSCAN_MAX_ROWS:,} rows (got {len(df):,}); use method='connected' "
            "or 'average', which scale to millions of rows, or block_on=... and cluster each block"
        )
    rerank = bool(cfg.rerank or cfg.rerank_options)
    graph = knn_graph(df, cfg, k=int(k), threshold=None if auto else threshold,
                      keep_all=method != "connected" and not rerank, chunk_texts=QUERY_CHUNK_TEXTS)
    # reranker scores and match probabilities are 0..1 probabilities
    cut = AUTO_CUT if auto or (rerank and method != "connected") else threshold
    algo_start = time.perf_counter()
    guard: dict[str, Any] = {}
    if method == "connected" and settings is not None and settings.min_samples > 2:
        sizes = np.bincount(graph.unit_of_row[graph.unit_of_row >= 0], minlength=graph.n_units)
        unit_labels = dbscan_labels(graph.n_units, graph.src, graph.dst, graph.weight, cut, settings.min_samples, sizes)
    elif method == "connected":
        strong = graph.weight >= cut if auto and not rerank else np.ones(len(graph.src), dtype=bool)
        unit_labels = connected_labels(graph.n_units, graph.src[strong], graph.dst[strong])
        if auto:
            unit_labels, guard = _chaining_guard(unit_labels, graph.src, graph.dst, graph.weight, missing_edges,
                                                 limit=int(k) + 1)
    elif method == "average":
        unit_labels = average_linkage(graph.n_units, graph.src, graph.dst, graph.weight, cut, missing_edges)
    else:
        unit_labels = hdbscan_labels(graph.n_units, graph.src, graph.dst, graph.weight, cut, hdbscan_options)
    labels = _row_labels(graph.unit_of_row, unit_labels)
    edge_p = graph.probability if graph.probability is not None else graph.weight  # after a reranker: its score
    probability = _row_probabilities(graph.unit_of_row, unit_labels, graph.src, graph.dst, edge_p)
    sizes = np.bincount(labels) if len(labels) else np.zeros(0, np.int64)
    report = dict(graph.report, on=list(cfg.left_on), method=method, threshold=threshold, k=int(k),
                  clusters=len(sizes), singletons=int((sizes == 1).sum()), largest_cluster=int(sizes.max(initial=0)))
    if settings is not None:
        report["linktransformer"] = settings.note
    if auto:
        report.update(cut={"match_probability": AUTO_CUT}, **({"chaining_guard": guard} if guard else {}))
    timings = report.pop("timings")
    timings.update(clustering=time.perf_counter() - algo_start, total=time.perf_counter() - start)
    return df, labels, probability, {"report": report, "timings": timings}


def _row_probabilities(unit_of_row: np.ndarray, unit_labels: np.ndarray, src: np.ndarray, dst: np.ndarray,
                       edge_p: np.ndarray) -> np.ndarray:
    """Per row: the highest match probability among its edges inside its cluster (1.0 for a copy of another
    row's text); for a row alone in its cluster, the highest of any of its edges (how close it came to
    joining one; NaN when it has none, or an empty text)."""
    n_units = len(unit_labels)
    inside = np.full(n_units, -np.inf)
    anywhere = np.full(n_units, -np.inf)
    same = unit_labels[src] == unit_labels[dst] if len(src) else np.zeros(0, dtype=bool)
    for target, keep in ((inside, same), (anywhere, np.ones(len(src), dtype=bool))):
        np.maximum.at(target, src[keep], edge_p[keep])
        np.maximum.at(target, dst[keep], edge_p[keep])
    has = unit_of_row >= 0
    copies = np.bincount(unit_of_row[has], minlength=n_units)
    alone = np.bincount(unit_labels, minlength=1)[unit_labels] == 1 if n_units else np.zeros(0, dtype=bool)
    per_unit = np.where(copies > 1, 1.0, np.where(alone, anywhere, inside))
    out = np.full(len(unit_of_row), np.nan)
    out[has] = per_unit[unit_of_row[has]]
    out[~np.isfinite(out)] = np.nan
    return out


def _translated(cluster_type: str | None, cluster_params: Mapping[str, Any] | None, method: Any, threshold: Any,
                hdbscan_options: Mapping[str, Any] | None) -> tuple[Any, Any, Any, ClusterSettings | None]:
    """(method, threshold, hdbscan_options, LinkTransformer settings) of a call: LinkTransformer's
    ``cluster_type``/``cluster_params`` replace ltengine's ``method``/``threshold``/``hdbscan_options``."""
    if cluster_type is None and cluster_params is None:
        return method, threshold, hdbscan_options, None
    if method != "connected" or not (isinstance(threshold, str) and threshold == "auto") or hdbscan_options:
        raise ConfigError("pass either LinkTransformer's cluster_type=/cluster_params= or ltengine's method=/"
                          "threshold=/hdbscan_options=, not both")
    settings = cluster_settings(cluster_type, cluster_params)
    return settings.method, settings.threshold, settings.hdbscan_options or None, settings


def _chaining_guard(labels: np.ndarray, src: np.ndarray, dst: np.ndarray, probability: np.ndarray,
                    missing_edges: str, limit: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Split components of more than ``limit`` units by average linkage on the match probabilities at
    ``AUTO_CUT``; the labels and what was done, for the report."""
    n = len(labels)
    sizes = np.bincount(labels, minlength=1) if n else np.zeros(1, np.int64)
    big = np.flatnonzero(sizes > limit)
    report: dict[str, Any] = {"max_units": limit, "split_components": len(big)}
    if not len(big):
        return labels, report
    inside = np.isin(labels[src], big) & (labels[src] == labels[dst])
    split = average_linkage(n, src[inside], dst[inside], probability[inside], AUTO_CUT, missing_edges)
    in_big = np.isin(labels, big)
    out = labels.copy()
    out[in_big] = labels.max() + 1 + split[in_big]
    out = pd.factorize(out)[0].astype(np.int64)
    report.update(largest_before=int(sizes.max()), parts=len(np.unique(split[in_big])),
                  note=f"components over {limit} units were split by average linkage at match_probability "
                       f">= {AUTO_CUT} (chaining guard)")
    return out, report


def _row_labels(unit_of_row: np.ndarray, unit_labels: np.ndarray) -> np.ndarray:
    """Cluster id per row, numbered by first appearance; empty-text rows are singletons."""
    raw = np.empty(len(unit_of_row), dtype=np.int64)
    has = unit_of_row >= 0
    raw[has] = unit_labels[unit_of_row[has]]
    raw[~has] = unit_labels.max(initial=-1) + 1 + np.arange(int((~has).sum()))
    return pd.factorize(raw)[0].astype(np.int64)


@linktransformer_arguments
def dedup_rows(
    df: pd.DataFrame,
    on: Columns = None,
    model: str | None = None,
    threshold: float | str = "auto",
    keep: str | Callable[[pd.DataFrame], Any] = "first",
    method: Method = "connected",
    k: int = 10,
    block_on: Columns = None,
    *,
    missing_edges: str = "zero",
    hdbscan_options: Mapping[str, Any] | None = None,
    cluster_type: str | None = None,
    cluster_params: Mapping[str, Any] | None = None,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """One row per cluster of near duplicates (see :func:`cluster_rows`), in the input's order and index, with the
    kept row's ``match_probability`` (as in :func:`cluster_rows`).

    ``keep``: ``"first"`` (the cluster's first row), ``"longest"`` (the longest text in ``on``; ties:
    first), or a function given each cluster of two or more rows (a DataFrame with the input's index)
    that returns the index label of the row to keep.  The other arguments are those of :func:`cluster_rows`.
    """
    if isinstance(df, pd.DataFrame):
        check_clash(df.columns, (MATCH_PROBABILITY,), "input", "dedup_rows")
    if not callable(keep) and keep not in KEEP_POLICIES:
        raise ConfigError(
            f"unknown keep={keep!r}.{did_you_mean(str(keep), KEEP_POLICIES)} Use 'first', 'longest' or a function "
            "that takes a cluster's rows and returns the index label of the row to keep."
        )
    method, threshold, hdbscan_options, settings = _translated(cluster_type, cluster_params, method, threshold,
                                                               hdbscan_options)
    df, labels, probability, attrs = _cluster_labels(df, on, model, threshold, method, k, block_on, missing_edges,
                                                     hdbscan_options, config, options, settings)
    positions = np.arange(len(df))
    if keep == "first":
        chosen = np.unique(labels, return_index=True)[1]
    elif keep == "longest":
        from ltengine.engine.text import serialize

        length = serialize(df, attrs["report"]["on"], "input").str.len().to_numpy()
        order = np.lexsort((positions, -length, labels))
        first = np.ones(len(order), dtype=bool)
        first[1:] = labels[order][1:] != labels[order][:-1]
        chosen = order[first]
    else:
        chosen = _keep_by_function(df, labels, keep)
    chosen = np.sort(chosen)
    out = df.iloc[chosen].copy()
    out[MATCH_PROBABILITY] = probability[chosen]
    out.attrs["ltengine"] = attrs
    return out


def _keep_by_function(frame: pd.DataFrame, labels: np.ndarray, keep: Callable[[pd.DataFrame], Any]) -> np.ndarray:
    sizes = np.bincount(labels)
    chosen = np.unique(labels, return_index=True)[1]  # singletons (and the default)
    multi = np.flatnonzero(sizes[labels] > 1)
    if len(multi) == 0:
        return chosen
    for label, rows in pd.Series(multi).groupby(labels[multi], sort=True):
        group = frame.iloc[rows.to_numpy()]
        picked = keep(group)
        where = np.flatnonzero(group.index == picked) if not isinstance(picked, (pd.Series, pd.DataFrame)) else []
        if len(where) != 1:
            raise LinkInputError(
                f"keep function returned {picked!r:.80} for cluster {int(label)}; it must return the index label of "
                f"one of the cluster's rows (here: {group.index.tolist()[:5]}), and the index must be unique"
            )
        chosen[label] = rows.to_numpy()[where[0]]
    return chosen

"""Deduplication and clustering of one table: ``cluster_rows`` and ``dedup_rows``.

How it works (never an n x n matrix):

1. Each row is serialised (as in ``merge``).  Rows with the same text and the same blocking values are
   one *unit* (exact duplicates, similarity 1); rows with an empty text are singletons and never
   clustered with anything.
2. The units are linked to themselves with :class:`~ltengine.engine.linker.Linker` (``fit`` then
   ``candidates``, ``k + 1`` neighbours, self pairs dropped): a sparse, symmetric kNN graph whose
   edges carry the cosine score.  Blocks (``block_on``) are respected.  Queries go in chunks, so
   memory is the index plus one chunk of candidates plus the kept edges.
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
"""

from __future__ import annotations

import heapq
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ltengine.config import LinkConfig
from ltengine.engine.output import CLUSTER_COLUMN, check_clash
from ltengine.errors import ConfigError, LinkInputError, did_you_mean
from ltengine.progress import progress_bar

Columns = str | Sequence[str] | None
Method = Literal["connected", "average", "hdbscan"]
METHODS = ("connected", "average", "hdbscan")
KEEP_POLICIES = ("first", "longest")
MISSING_EDGES = ("zero", "ignore")
#: Rows above which ``method="hdbscan"`` refuses to run (one HDBSCAN fit per connected component).
HDBSCAN_MAX_ROWS = 200_000
#: Unique texts searched per ``Linker.candidates`` call (a multiple of the encoder chunk keeps the
#: query chunks aligned with the chunks encoded by ``fit``).
QUERY_CHUNK_TEXTS = 16 * 4096


# -- input checks ---------------------------------------------------------------------------------
def check_threshold(threshold: Any, name: str = "threshold") -> float:
    """A similarity threshold in [-1, 1] (cosine), else ConfigError."""
    from ltengine.numeric import is_real

    if not is_real(threshold):
        raise ConfigError(f"{name} must be a number between -1 and 1 (cosine similarity); got {threshold!r}")
    value = float(threshold)
    if not -1.0 <= value <= 1.0:  # also rejects NaN
        raise ConfigError(
            f"{name} {threshold!r} is out of range: scores are cosine similarities in [-1, 1] "
            "(typical duplicate thresholds are 0.7-0.95)"
        )
    return value


def _as_columns(value: Columns, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _link_config(on: list[str], config: Any, options: dict[str, Any]) -> LinkConfig:
    """The LinkConfig of a self-link on ``on`` (explicit options override ``config``)."""
    from ltengine.engine.linker import _as_config

    base = _as_config(config)
    changes = {key: value for key, value in options.items() if value is not None}
    if on:
        changes.update(left_on=tuple(on), right_on=tuple(on))
    elif base.left_on:
        changes.update(right_on=base.left_on)
    if "mode" in LinkConfig.field_names():  # a hybrid lexical+semantic mode may exist; dedup is semantic
        changes.setdefault("mode", "semantic")
    cfg = base.replace(**changes)
    if not cfg.left_on:
        raise LinkInputError("no columns to compare: pass on='column' (or a list of columns)")
    return cfg


def _check_frame(df: Any, cfg: LinkConfig) -> pd.DataFrame:
    from ltengine.engine.text import check_columns, check_frame

    df = check_frame(df, "input")
    check_columns(df, cfg.left_on, "input", role="compared")
    check_columns(df, cfg.block_on, "input", role="blocking")
    return df


# -- the kNN graph --------------------------------------------------------------------------------
class Graph:
    """The sparse similarity graph of one table's rows, built on *units* (distinct texts per block).

    ``unit_of_row[i]``: the unit of row ``i`` (-1 for an empty text); ``src < dst``: unit edges with
    ``weight`` (cosine, or ``rerank_score`` after a reranker) and ``score`` (retrieval cosine).
    """

    def __init__(self, unit_of_row: np.ndarray, n_units: int, src: np.ndarray, dst: np.ndarray,
                 score: np.ndarray, weight: np.ndarray, report: dict[str, Any]) -> None:
        self.unit_of_row, self.n_units = unit_of_row, n_units
        self.src, self.dst, self.score, self.weight = src, dst, score, weight
        self.report = report


def _units(df: pd.DataFrame, cfg: LinkConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each row or -1, representative row of each unit, text of each unit), units sorted by text."""
    from ltengine.engine.text import serialize

    texts = serialize(df, cfg.left_on, "input", keep_symbols=cfg.keep_symbol_records).to_numpy(dtype=object)
    nonempty = texts != ""
    key = pd.DataFrame({"__text": texts})
    for i, col in enumerate(cfg.block_on):
        key[f"__b{i}"] = df[col].to_numpy(dtype=object)
    blocks_present = key.iloc[:, 1:].notna().all(axis=1).to_numpy() if cfg.block_on else np.ones(len(df), bool)
    # rows with a missing blocking value are left to the blocker (each its own unit)
    group = np.full(len(df), -1, dtype=np.int64)
    collapsible = nonempty & blocks_present
    if collapsible.any():
        group[collapsible] = key[collapsible].groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    rest = np.flatnonzero(nonempty & ~blocks_present)
    group[rest] = group.max(initial=-1) + 1 + np.arange(len(rest))
    rows = np.flatnonzero(nonempty)
    _, first = np.unique(group[rows], return_index=True)
    reps = rows[first]
    order = np.argsort(texts[reps], kind="stable")  # sorted texts: query chunks align with fit's encode chunks
    reps = reps[order]
    unit_of_group = np.empty(len(reps), dtype=np.int64)
    unit_of_group[group[reps]] = np.arange(len(reps))
    unit_of_row = np.full(len(df), -1, dtype=np.int64)
    unit_of_row[rows] = unit_of_group[group[rows]]
    return unit_of_row, reps, texts[reps]


def _query_chunks(texts: np.ndarray, chunk_texts: int) -> list[tuple[int, int]]:
    """Contiguous unit ranges holding ``chunk_texts`` distinct texts each (texts are sorted)."""
    if len(texts) == 0:
        return []
    codes = pd.factorize(pd.Series(texts, dtype=object), sort=False)[0]  # sorted input: codes ascend
    cuts = np.flatnonzero(np.diff(codes // chunk_texts)) + 1
    bounds = np.concatenate([[0], cuts, [len(texts)]])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def knn_graph(df: pd.DataFrame, cfg: LinkConfig, *, k: int, threshold: float, keep_all: bool) -> Graph:
    """Build the symmetric kNN graph of ``df``'s rows with the Linker (``cfg`` is a self-link config).

    ``keep_all`` keeps every retrieved edge (average linkage needs scores below the threshold);
    otherwise only edges >= ``threshold`` are kept.  With ``cfg.rerank`` the edges >= threshold are
    judged (each unordered pair once) and only accepted ones are kept.
    """
    from ltengine.engine.linker import Linker

    start = time.perf_counter()
    unit_of_row, reps, unit_texts = _units(df, cfg)
    n_units = len(reps)
    report: dict[str, Any] = {"rows": len(df), "empty_text": int((unit_of_row < 0).sum()), "units": n_units}
    units = df.iloc[reps][list(dict.fromkeys([*cfg.left_on, *cfg.block_on]))].reset_index(drop=True)
    rerank = bool(cfg.rerank or cfg.rerank_options)
    src_parts, dst_parts, score_parts = [], [], []
    linker = Linker(cfg)
    if n_units > 1:
        linker.fit(units, expected_queries=len(units))
        chunks = _query_chunks(unit_texts, QUERY_CHUNK_TEXTS)
        with progress_bar(n_units, "kNN graph", cfg.progress) as bar:
            for lo, hi in chunks:
                cand = linker.candidates(units.iloc[lo:hi], k=k + 1)
                id_l = cand["id_l"].to_numpy(dtype=np.int64) + lo
                id_r = cand["id_r"].to_numpy(dtype=np.int64)
                score = cand["score"].to_numpy(dtype=np.float32)
                keep = id_l != id_r
                if not keep_all or rerank:
                    keep &= score >= threshold
                a, b = np.minimum(id_l, id_r)[keep], np.maximum(id_l, id_r)[keep]
                src_parts.append(a)
                dst_parts.append(b)
                score_parts.append(score[keep])
                bar.update(hi - lo)
    src, dst, score = _dedup_edges(src_parts, dst_parts, score_parts)
    report["edges"] = len(src)
    weight = score.astype(np.float64)
    if rerank:
        src, dst, score, weight = _rerank_edges(src, dst, score, units, unit_texts, linker, report)
    report["timings"] = dict(linker.context.timings, graph_total=time.perf_counter() - start)
    report["linker"] = {key: value for key, value in linker.context.report.items() if key != "rerank"}
    return Graph(unit_of_row, n_units, src, dst, score, weight, report)


def _dedup_edges(src_parts: list, dst_parts: list, score_parts: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate edge parts; each (src, dst) once, with its highest score."""
    if not src_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    src, dst, score = np.concatenate(src_parts), np.concatenate(dst_parts), np.concatenate(score_parts)
    order = np.lexsort((-score, dst, src))
    src, dst, score = src[order], dst[order], score[order]
    first = np.ones(len(src), dtype=bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    return src[first], dst[first], score[first]


def _rerank_edges(src: np.ndarray, dst: np.ndarray, score: np.ndarray, units: pd.DataFrame, unit_texts: np.ndarray,
                  linker: Any, report: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """Judge the edges (>= threshold) with the configured rerankers; keep those with ``is_match`` true."""
    from ltengine.engine.rerank import apply_rerankers

    pairs = pd.DataFrame({"id_l": src, "id_r": dst, "score": score, "rank": np.ones(len(src), dtype=np.int64),
                          "text_l": unit_texts[src], "text_r": unit_texts[dst]})
    if len(pairs):
        pairs, _ = apply_rerankers(pairs, units, units, linker.context, mode=None)
        accepted = np.asarray(pairs["is_match"].fillna(False), dtype=bool)
    else:
        pairs["rerank_score"] = np.empty(0, np.float64)
        accepted = np.zeros(0, dtype=bool)
    report["rerank"] = dict(linker.context.report.get("rerank", {}), judged_edges=len(pairs),
                            accepted_edges=int(accepted.sum()))
    kept = pairs[accepted]
    return (kept["id_l"].to_numpy(np.int64), kept["id_r"].to_numpy(np.int64),
            kept["score"].to_numpy(np.float32), kept["rerank_score"].to_numpy(np.float64))


# -- clustering algorithms on the graph -------------------------------------------------------------
def connected_labels(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes (isolated nodes are their own component)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.empty(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1].astype(np.int64)


def average_linkage(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, threshold: float,
                    missing: str = "zero") -> np.ndarray:
    """Average-linkage agglomerative clustering on a sparse similarity graph; a label per node.

    Merges the two clusters with the highest mean similarity while it is >= ``threshold``.  The
    mean runs over all node pairs of the two clusters with absent pairs counting 0
    (``missing="zero"``), or over the pairs present in the graph (``"ignore"``).  Only edges inside a
    connected component of the >= threshold graph can take part in a merge, so each such component
    is clustered separately; pairs of nodes are decided directly.
    """
    labels = connected_labels(n, *_strong(src, dst, weight, threshold))
    sizes = np.bincount(labels, minlength=n) if n else np.zeros(0, np.int64)
    same = labels[src] == labels[dst]
    src, dst, weight = src[same], dst[same], weight[same]
    big = sizes[labels[src]] >= 3
    if not big.any():
        return pd.factorize(labels)[0].astype(np.int64)
    out = labels.copy()
    next_label = labels.max() + 1
    order = np.argsort(labels[src[big]], kind="stable")
    s, d, w = src[big][order], dst[big][order], weight[big][order]
    comp = labels[s]
    bounds = np.flatnonzero(np.diff(comp)) + 1
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(s)]])):
        members = np.unique(np.concatenate([s[lo:hi], d[lo:hi]]))
        local = _average_component(len(members), np.searchsorted(members, s[lo:hi]),
                                   np.searchsorted(members, d[lo:hi]), w[lo:hi], threshold, missing)
        out[members] = next_label + local
        next_label += local.max() + 1
    return pd.factorize(out)[0].astype(np.int64)


def _strong(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    keep = weight >= threshold
    return src[keep], dst[keep]


def _average_component(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, threshold: float,
                       missing: str) -> np.ndarray:
    """Average linkage on one component with a heap of candidate merges (lazy deletion)."""
    nbr: list[dict[int, list[float]]] = [{} for _ in range(n)]
    for a, b, w in zip(src.tolist(), dst.tolist(), weight.tolist()):
        nbr[a][b] = nbr[b][a] = [w, 1.0]
    size = [1] * n
    version = [0] * n
    alive = [True] * n
    parent = list(range(n))
    zero = missing == "zero"

    def mean(a: int, b: int, acc: list[float]) -> float:
        return acc[0] / (size[a] * size[b]) if zero else acc[0] / acc[1]

    heap: list[tuple[float, int, int, int, int]] = []
    for a in range(n):
        for b, acc in nbr[a].items():
            if a < b and (m := mean(a, b, acc)) >= threshold:
                heap.append((-m, a, b, 0, 0))
    heapq.heapify(heap)
    while heap:
        _, a, b, va, vb = heapq.heappop(heap)
        if not (alive[a] and alive[b]) or version[a] != va or version[b] != vb:
            continue
        big, small = (a, b) if len(nbr[a]) >= len(nbr[b]) else (b, a)
        for c, acc in nbr[small].items():
            if c == big:
                continue
            cur = nbr[big].get(c)
            merged = [acc[0] + cur[0], acc[1] + cur[1]] if cur else list(acc)
            nbr[big][c] = nbr[c][big] = merged
            del nbr[c][small]
        nbr[big].pop(small, None)
        nbr[small] = {}
        size[big] += size[small]
        alive[small] = False
        parent[small] = big
        version[big] += 1
        for c, acc in nbr[big].items():
            if (m := mean(big, c, acc)) >= threshold:
                lo, hi = (big, c) if big < c else (c, big)
                heapq.heappush(heap, (-m, lo, hi, version[lo], version[hi]))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    roots = np.array([root(x) for x in range(n)], dtype=np.int64)
    return pd.factorize(roots)[0].astype(np.int64)


def hdbscan_labels(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, threshold: float,
                   options: Mapping[str, Any] | None = None) -> np.ndarray:
    """HDBSCAN (scikit-learn) on the sparse distance graph ``1 - weight`` (each connected component of the
    whole graph on its own), intersected with the connected components of the >= ``threshold`` graph, so
    a cluster never holds rows joined only below the threshold.  Noise points become singletons."""
    from scipy.sparse import coo_matrix
    from sklearn.cluster import HDBSCAN

    params = {"min_cluster_size": 2, "min_samples": 1, **dict(options or {})}
    if "copy" in inspect.signature(HDBSCAN).parameters:
        params.setdefault("copy", True)  # explicit, to silence scikit-learn's FutureWarning
    if "metric" in params:
        raise ConfigError("hdbscan_options cannot set metric: ltengine passes a precomputed sparse distance graph")
    whole = connected_labels(n, src, dst)
    sizes = np.bincount(whole, minlength=n) if n else np.zeros(0, np.int64)
    dense = whole.copy()
    next_label = whole.max(initial=-1) + 1
    order = np.argsort(whole[src], kind="stable")
    s, d, w = src[order], dst[order], weight[order]
    comp = whole[s]
    bounds = np.flatnonzero(np.diff(comp)) + 1
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(s)]])):
        if hi <= lo or sizes[comp[lo]] < 3:
            continue
        members = np.unique(np.concatenate([s[lo:hi], d[lo:hi]]))
        a, b = np.searchsorted(members, s[lo:hi]), np.searchsorted(members, d[lo:hi])
        dist = np.maximum(1.0 - w[lo:hi], 1e-9)  # explicit zeros would read as missing edges
        m = len(members)
        matrix = coo_matrix((np.concatenate([dist, dist]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                            shape=(m, m)).tocsr()
        try:
            local = HDBSCAN(metric="precomputed", **params).fit(matrix).labels_.astype(np.int64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"HDBSCAN failed with hdbscan_options={dict(options or {})!r}: {exc}") from None
        noise = local < 0
        local[noise] = local.max(initial=-1) + 1 + np.arange(int(noise.sum()))
        dense[members] = next_label + local
        next_label += local.max() + 1
    strong = connected_labels(n, *_strong(src, dst, weight, threshold))
    return pd.factorize(dense * (strong.max(initial=0) + 1) + strong)[0].astype(np.int64)


# -- the public functions ---------------------------------------------------------------------------
def cluster_rows(
    df: pd.DataFrame,
    on: Columns = None,
    model: str | None = None,
    threshold: float = 0.8,
    method: Method = "connected",
    k: int = 10,
    block_on: Columns = None,
    *,
    missing_edges: str = "zero",
    hdbscan_options: Mapping[str, Any] | None = None,
    config: Any = None,
    **options: Any,
) -> pd.DataFrame:
    """Cluster near-duplicate rows of ``df``: a copy with an int ``cluster`` column (0, 1, ... in order
    of first appearance).

    ``on``: the column(s) compared; ``threshold``: the cosine similarity (or reranker score) at
    which two rows are duplicates; ``method``: ``"connected"``, ``"average"`` or ``"hdbscan"`` (see
    the module docs); ``k``: neighbours retrieved per row (raise it when clusters are larger);
    ``block_on``: only rows with equal values there are compared.  Every row gets a cluster; rows
    without a near duplicate (and rows with an empty text) are singletons.  Other keyword
    arguments are :class:`LinkConfig` fields, e.g. ``rerank="cross-encoder:/path"`` to judge the
    edges, ``progress=False``.  ``out.attrs["ltengine"]["report"]`` holds counts and timings.
    """
    if isinstance(df, pd.DataFrame):
        check_clash(df.columns, (CLUSTER_COLUMN,), "input", "cluster_rows")
    df, labels, attrs = _cluster_labels(df, on, model, threshold, method, k, block_on, missing_edges, hdbscan_options,
                                        config, options)
    out = df.copy()
    out[CLUSTER_COLUMN] = labels
    out.attrs["ltengine"] = attrs
    return out


def _cluster_labels(df: Any, on: Columns, model: str | None, threshold: float, method: Any, k: int,
                    block_on: Columns, missing_edges: str, hdbscan_options: Mapping[str, Any] | None, config: Any,
                    options: dict[str, Any]) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """The checked frame, a cluster id per row, and the report (see :func:`cluster_rows`)."""
    start = time.perf_counter()
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}.{did_you_mean(str(method), METHODS)} Use one of: {', '.join(METHODS)}.")
    if missing_edges not in MISSING_EDGES:
        raise ConfigError(f"missing_edges must be one of {MISSING_EDGES}; got {missing_edges!r}")
    if hdbscan_options and method != "hdbscan":
        raise ConfigError("hdbscan_options only apply to method='hdbscan'")
    threshold = check_threshold(threshold)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer (neighbours per row); got {k!r}")
    on_cols = _as_columns(on, "on")
    cfg = _link_config(on_cols, config, dict(options, model=model, block_on=_as_columns(block_on, "block_on") or None))
    df = _check_frame(df, cfg)
    if method == "hdbscan" and len(df) > HDBSCAN_MAX_ROWS:
        raise LinkInputError(
            f"method='hdbscan' is limited to {HDBSCAN_MAX_ROWS:,} rows (got {len(df):,}); use method='connected' "
            "or 'average', which scale to millions of rows, or block_on=... and cluster each block"
        )
    rerank = bool(cfg.rerank or cfg.rerank_options)
    graph = knn_graph(df, cfg, k=int(k), threshold=threshold, keep_all=method != "connected" and not rerank)
    cut = 0.5 if rerank and method != "connected" else threshold  # reranker scores are 0..1 probabilities
    algo_start = time.perf_counter()
    if method == "connected":
        unit_labels = connected_labels(graph.n_units, graph.src, graph.dst)
    elif method == "average":
        unit_labels = average_linkage(graph.n_units, graph.src, graph.dst, graph.weight, cut, missing_edges)
    else:
        unit_labels = hdbscan_labels(graph.n_units, graph.src, graph.dst, graph.weight, cut, hdbscan_options)
    labels = _row_labels(graph.unit_of_row, unit_labels)
    sizes = np.bincount(labels) if len(labels) else np.zeros(0, np.int64)
    report = dict(graph.report, on=list(cfg.left_on), method=method, threshold=threshold, k=int(k),
                  clusters=len(sizes), singletons=int((sizes == 1).sum()), largest_cluster=int(sizes.max(initial=0)))
    timings = report.pop("timings")
    timings.update(clustering=time.perf_counter() - algo_start, total=time.perf_counter() - start)
    return df, labels, {"report": report, "timings": timings}



def _row_labels(unit_of_row: np.ndarray, unit_labels: np.ndarray) -> np.ndarray:
    """Cluster id per row, numbered by first appearance; empty-text rows are singletons."""
    raw = np.empty(len(unit_of_row), dtype=np.int64)
    has = unit_of_row >= 0
    raw[has] = unit_labels[unit_of_row[has]]
    raw[~has] = unit_labels.max(initial=-1) + 1 + np.arange(int((~has).sum()))
    return pd.factorize(raw)[0].astype(np.int64)


def dedup_rows(
    df: pd.DataFrame,
    on: Columns = None,
    model: str | None = None,
    threshold: float = 0.8,
    keep: str | Callable[[pd.DataFrame], Any] = "first",
    method: Method = "connected",
    k: int = 10,
    block_on: Columns = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """One row per cluster of near duplicates (see :func:`cluster_rows`), in the input's order and index.

    ``keep``: ``"first"`` (the cluster's first row), ``"longest"`` (the longest text in ``on``; ties:
    first), or a function given each cluster of two or more rows (a DataFrame with the input's index)
    that returns the index label of the row to keep.
    """
    if not callable(keep) and keep not in KEEP_POLICIES:
        raise ConfigError(
            f"unknown keep={keep!r}.{did_you_mean(str(keep), KEEP_POLICIES)} Use 'first', 'longest' or a function "
            "that takes a cluster's rows and returns the index label of the row to keep."
        )
    extra = {key: kwargs.pop(key) for key in ("missing_edges", "hdbscan_options", "config") if key in kwargs}
    df, labels, attrs = _cluster_labels(df, on, model, threshold, method, k, block_on,
                                        extra.get("missing_edges", "zero"), extra.get("hdbscan_options"),
                                        extra.get("config"), kwargs)
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
    out = df.iloc[np.sort(chosen)]
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

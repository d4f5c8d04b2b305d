"""Clustering algorithms on a sparse similarity graph: connected components, average linkage, HDBSCAN."""

from __future__ import annotations

import heapq
import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import ConfigError


# -- the algorithms ------------------------------------------------------------------------------
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


def dbscan_labels(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, threshold: float, min_samples: int,
                  sizes: np.ndarray | None = None) -> np.ndarray:
    """DBSCAN (scikit-learn) on the sparse graph of edges with ``weight >= threshold`` (distance ``1 - weight``,
    ``eps = 1 - threshold``): a node needs ``min_samples`` nodes within reach, itself included, counted with
    ``sizes`` (rows per node) to be a core point.  Noise points become singletons.  LinkTransformer's SLINK."""
    from scipy.sparse import coo_matrix
    from sklearn.cluster import DBSCAN

    if n == 0:
        return np.empty(0, dtype=np.int64)
    keep = weight >= threshold
    lo, hi = np.minimum(src[keep], dst[keep]), np.maximum(src[keep], dst[keep])
    pair, first = np.unique(lo.astype(np.int64) * n + hi, return_index=True)  # each undirected edge once
    a, b = pair // n, pair % n
    dist = np.clip(1.0 - weight[keep][first].astype(np.float64), 1e-9, None)  # explicit zeros read as missing
    matrix = coo_matrix((np.concatenate([dist, dist]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                        shape=(n, n)).tocsr()
    eps = max(1.0 - float(threshold), 0.0) + 1e-6  # float32 scores at the threshold stay in reach
    labels = DBSCAN(eps=eps, min_samples=int(min_samples), metric="precomputed").fit(
        matrix, sample_weight=None if sizes is None else np.asarray(sizes, dtype=np.float64)).labels_.astype(np.int64)
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return pd.factorize(labels)[0].astype(np.int64)

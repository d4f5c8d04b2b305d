"""Incremental clustering: :func:`update_clusters` adds new rows to the clusters of :func:`cluster_rows`.

Only the new rows are searched: the existing rows' distinct texts (per block) are indexed once, the new
ones added to that index (:meth:`Linker.add <ltengine.engine.linker.Linker.add>`), and each new text
retrieves its ``k + 1`` nearest texts among old and new.  Edges at or above ``threshold`` then join:

- ``method="connected"``: every edge joins (single linkage).  A new row that links two existing clusters
  merges them (reported in ``report["merges"]``); with ``apply_merges=True`` (the default) the merged
  cluster takes the smallest of their ids, so the partition equals ``cluster_rows`` over all rows at once
  whenever the kNN graph of each run holds every pair at or above the threshold (no text has more
  than ``k`` neighbours at or above it: raise ``k`` otherwise); with ``apply_merges=False`` every existing
  row keeps its id and the merge is only reported.
- ``"average"`` and ``"hdbscan"``: edges are taken strongest first and a new row joins at most one
  existing cluster (existing clusters never merge), new rows without an existing match form clusters
  among themselves.  This is an approximation of re-clustering with those methods: re-run
  :func:`cluster_rows` now and then.

Every existing row keeps its cluster id (except the absorbed side of an applied merge); new clusters
get the ids after the largest existing one, in order of first appearance.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ltengine.config import Columns, ConfigLike, as_columns, check_threshold
from ltengine.dedup.cluster import METHODS, self_link_config
from ltengine.engine.output import CLUSTER_COLUMN, check_clash
from ltengine.errors import ConfigError, LinkInputError, did_you_mean


def update_clusters(
    clusters: pd.DataFrame,
    new_rows: pd.DataFrame,
    on: Columns = None,
    model: str | None = None,
    threshold: float | None = None,
    method: str = "connected",
    k: int = 10,
    block_on: Columns = None,
    *,
    apply_merges: bool = True,
    config: ConfigLike = None,
    **options: Any,
) -> pd.DataFrame:
    """``clusters`` (a :func:`cluster_rows` result, with its ``cluster`` column) followed by ``new_rows``,
    each new row in an existing cluster or a new one, without re-clustering the existing rows.

    ``threshold``: the cosine similarity the clusters were made with (a number; ``"auto"`` fits a model on
    the whole table, which an update cannot reproduce).  ``on``, ``model``, ``k``, ``block_on`` and the
    other keyword arguments as for :func:`cluster_rows` (pass the same ones).  ``method`` and
    ``apply_merges``: see the module docs.  ``out.attrs["ltengine"]["report"]`` lists ``merges`` (each:
    the kept id, the absorbed ids, the new rows' index labels that joined them), ``new_clusters`` and
    ``joined_existing`` (new rows that joined an existing cluster).
    """
    start = time.perf_counter()
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}.{did_you_mean(str(method), METHODS)} Use one of: {', '.join(METHODS)}.")
    if threshold is None or isinstance(threshold, str):
        raise ConfigError("update_clusters needs the numeric threshold the clusters were made with (e.g. threshold=0.85); "
                          "threshold='auto' fits its model on the whole table, which an update cannot reproduce")
    threshold = check_threshold(threshold, typical="duplicate thresholds are 0.7-0.95")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer (neighbours per row); got {k!r}")
    for name, frame in (("clusters", clusters), ("new_rows", new_rows)):
        if not isinstance(frame, pd.DataFrame):
            raise LinkInputError(f"{name} must be a pandas DataFrame; got {type(frame).__name__}")
    if CLUSTER_COLUMN not in clusters.columns:
        raise LinkInputError(f"clusters has no {CLUSTER_COLUMN!r} column: pass the frame cluster_rows returned")
    check_clash(new_rows.columns, (CLUSTER_COLUMN,), "new_rows", "update_clusters")
    old_ids = pd.to_numeric(clusters[CLUSTER_COLUMN], errors="coerce")
    if old_ids.isna().any() or (old_ids < 0).any() or (old_ids % 1 != 0).any():
        raise LinkInputError(f"clusters[{CLUSTER_COLUMN!r}] must hold non-negative integer cluster ids")
    old_ids = old_ids.to_numpy(dtype=np.int64)
    cfg = self_link_config(on, config, dict(options, model=model, block_on=as_columns(block_on, "block_on") or None))
    old = _checked(clusters.drop(columns=CLUSTER_COLUMN), cfg, "clusters")
    new = _checked(new_rows, cfg, "new_rows")
    unit_of_row, reps, new_units = _units(pd.concat([old, new], ignore_index=True), cfg, len(old))
    edges = _new_edges(pd.concat([old, new], ignore_index=True), cfg, unit_of_row, reps, new_units, len(old),
                       k=int(k), threshold=threshold)
    labels, report = _join(old_ids, unit_of_row, edges, len(old), method, apply_merges, new.index)
    out_old = clusters.copy()
    out_old[CLUSTER_COLUMN] = labels[: len(old)]
    out_new = new_rows.copy()
    out_new[CLUSTER_COLUMN] = labels[len(old):]
    out = pd.concat([out_old, out_new])
    report.update(rows=len(out), rows_added=len(new), threshold=threshold, method=method, k=int(k),
                  on=list(cfg.left_on), clusters=int(pd.Series(labels).nunique()))
    out.attrs["ltengine"] = {"report": report, "timings": {"total": time.perf_counter() - start}}
    return out


def _checked(df: pd.DataFrame, cfg: Any, side: str) -> pd.DataFrame:
    from ltengine.engine.text import check_columns, check_frame

    df = check_frame(df, side)
    check_columns(df, cfg.left_on, side, role="compared")
    check_columns(df, cfg.block_on, side, role="blocking")
    return df


def _units(frame: pd.DataFrame, cfg: Any, n_old: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each row or -1 for an empty text, representative row of each unit, whether each unit holds
    a new row); units (distinct text and blocking values) with an existing row come first."""
    from ltengine.engine.text import serialize

    texts = serialize(frame, cfg.left_on, "input", keep_symbols=cfg.keep_symbol_records).to_numpy(dtype=object)
    key = pd.DataFrame({"__text": texts})
    for i, col in enumerate(cfg.block_on):
        key[f"__b{i}"] = frame[col].to_numpy(dtype=object)
    nonempty = texts != ""
    group = np.full(len(frame), -1, dtype=np.int64)
    if nonempty.any():
        group[nonempty] = key[nonempty].groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    rows = np.flatnonzero(nonempty)
    # first row of each group: an existing row when the group has one (rows are ordered old, then new)
    _, first = np.unique(group[rows], return_index=True)
    reps = rows[first]
    order = np.argsort(reps, kind="stable")
    reps = reps[order]
    unit_of_group = np.empty(len(reps), dtype=np.int64)
    unit_of_group[group[reps]] = np.arange(len(reps))
    unit_of_row = np.full(len(frame), -1, dtype=np.int64)
    unit_of_row[rows] = unit_of_group[group[rows]]
    new_units = np.zeros(len(reps), dtype=bool)
    new_units[unit_of_row[n_old:][unit_of_row[n_old:] >= 0]] = True
    return unit_of_row, reps, new_units


def _new_edges(frame: pd.DataFrame, cfg: Any, unit_of_row: np.ndarray, reps: np.ndarray, new_units: np.ndarray,
               n_old: int, *, k: int, threshold: float) -> pd.DataFrame:
    """Unit edges (``a``, ``b``, ``score``) at or above ``threshold`` found by the units holding new rows."""
    from ltengine.engine.linker import Linker

    columns = list(dict.fromkeys([*cfg.left_on, *cfg.block_on]))
    units = frame.iloc[reps][columns].reset_index(drop=True)
    n_existing = int((reps < n_old).sum())  # units with an existing row: the first n_existing
    queries = np.flatnonzero(new_units)
    if not len(queries) or len(units) < 2:
        return pd.DataFrame({"a": [], "b": [], "score": []})
    linker = Linker(cfg)
    if n_existing:
        linker.fit(units.iloc[:n_existing], expected_queries=len(queries))
        if n_existing < len(units):
            linker.add(units.iloc[n_existing:])
    else:
        linker.fit(units, expected_queries=len(queries))
    cand = linker.candidates(units.iloc[queries], k=k + 1)
    a = queries[cand["id_l"].to_numpy(dtype=np.int64)]
    b = cand["id_r"].to_numpy(dtype=np.int64)
    score = cand["score"].to_numpy(dtype=np.float64)
    keep = (a != b) & (score >= threshold)
    return pd.DataFrame({"a": a[keep], "b": b[keep], "score": score[keep]})


def _join(old_ids: np.ndarray, unit_of_row: np.ndarray, edges: pd.DataFrame, n_old: int, method: str,
          apply_merges: bool, new_labels: pd.Index) -> tuple[np.ndarray, dict[str, Any]]:
    """A cluster id per row (existing, then new) and the report's merges and counts."""
    n_units = int(unit_of_row.max(initial=-1)) + 1
    parent = np.arange(n_units)
    holds: dict[int, int] = {}  # root unit -> the existing cluster id it holds (non-connected methods)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    def union(x: int, y: int, strict: bool) -> None:
        rx, ry = root(x), root(y)
        if rx == ry or (strict and rx in holds and ry in holds and holds[rx] != holds[ry]):
            return
        parent[ry] = rx
        if ry in holds:
            holds.setdefault(rx, holds.pop(ry))

    old_units = unit_of_row[:n_old]
    has_unit = old_units >= 0
    first_of_cluster: dict[int, int] = {}
    for unit, cid in zip(old_units[has_unit].tolist(), old_ids[has_unit].tolist()):
        if cid in first_of_cluster:  # rows of one existing cluster stay together
            union(first_of_cluster[cid], unit, strict=False)
        else:
            first_of_cluster[cid] = unit
            holds.setdefault(root(unit), cid)
    strict = method != "connected"
    ordered = edges.sort_values("score", ascending=False, kind="stable") if strict else edges
    for a, b in zip(ordered["a"].tolist(), ordered["b"].tolist()):
        union(a, b, strict)
    component_of_cluster: dict[int, list[int]] = {}
    for cid, unit in first_of_cluster.items():
        component_of_cluster.setdefault(root(unit), []).append(cid)
    labels = np.empty(len(unit_of_row), dtype=np.int64)
    labels[:n_old] = old_ids
    kept = {r: min(cids) for r, cids in component_of_cluster.items()}
    merges, relabel = [], {}
    for r, cids in component_of_cluster.items():
        if len(cids) > 1:
            relabel.update({cid: kept[r] for cid in cids})
            merges.append({"cluster": kept[r], "absorbed": sorted(c for c in cids if c != kept[r]), "new_rows": []})
    if apply_merges and relabel:
        labels[:n_old] = [relabel.get(cid, cid) for cid in old_ids.tolist()]
    next_id = int(old_ids.max(initial=-1)) + 1
    fresh: dict[int, int] = {}
    joined = 0
    merge_of = {m["cluster"]: m for m in merges}
    for i, unit in enumerate(unit_of_row[n_old:].tolist()):
        r = root(unit) if unit >= 0 else -1 - i
        if r in kept:
            labels[n_old + i] = kept[r]
            joined += 1
            if kept[r] in merge_of:
                merge_of[kept[r]]["new_rows"].append(new_labels[i])
        else:
            if r not in fresh:
                fresh[r] = next_id
                next_id += 1
            labels[n_old + i] = fresh[r]
    for merge in merges:
        merge["new_rows"] = [label.item() if isinstance(label, np.generic) else label for label in merge["new_rows"]]
    report = {"merges": merges, "merges_applied": bool(apply_merges), "new_clusters": len(fresh),
              "joined_existing": joined, "edges": len(edges)}
    return labels, report

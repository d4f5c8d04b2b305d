"""Metrics of links and clusters against gold: :func:`evaluate`, :func:`cluster_metrics`, :func:`link_metrics`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import ColumnError, LinkInputError
from ltengine.evaluate.checks import comparable_ids, link_id_columns, require_columns


# -- gold and predictions --------------------------------------------------------------------------
def _gold_kind(gold: Any, gold_left: str, gold_right: str, cluster: str) -> str:
    if isinstance(gold, pd.Series):
        return "clusters"
    if not isinstance(gold, pd.DataFrame):
        raise LinkInputError(f"gold must be a DataFrame (pairs or clusters) or a Series of clusters; got {type(gold).__name__}")
    if {gold_left, gold_right} <= set(gold.columns):
        return "pairs"
    if cluster in gold.columns:
        return "clusters"
    raise ColumnError(
        f"gold has neither pair columns ({gold_left!r}, {gold_right!r}) nor a {cluster!r} column; its columns are "
        f"{', '.join(map(str, gold.columns))}. Pass gold_left=/gold_right= or cluster= to name them."
    )


def _gold_clusters(gold: Any, ids: pd.Index, id_col: str | None, cluster: str) -> np.ndarray:
    """Gold cluster label of each id in ``ids`` (Series indexed by id, or frame with [id, cluster])."""
    if isinstance(gold, pd.Series):
        series = gold
    else:
        key = id_col or "id"
        if key in gold.columns:
            series = gold.set_index(key)[cluster]
        elif id_col is None:
            series = gold[cluster]  # aligned with the predictions' index
        else:
            require_columns(gold, [key], "record id of the gold clusters")
    if not series.index.is_unique:
        raise LinkInputError("gold clusters list a record id more than once; give each record one cluster")
    (id_values,), (gold_ids,) = comparable_ids([ids], [series.index], f"({id_col or 'the index'})", "(gold index)")
    ids = pd.Index(id_values)
    values = pd.Series(series.to_numpy(), index=pd.Index(gold_ids)).reindex(ids)
    missing = ids[values.isna().to_numpy()]
    if len(missing):
        raise LinkInputError(
            f"{len(missing)} predicted records have no gold cluster, e.g. {missing[:5].tolist()}; give every "
            "evaluated record a gold cluster (or filter the predictions to the gold records)"
        )
    return pd.factorize(values)[0]


def _clusters_from_pairs(gold: pd.DataFrame, ids: pd.Index, gold_left: str, gold_right: str) -> np.ndarray:
    """Gold clusters as connected components of the gold pairs; ids in no pair are singletons."""
    from ltengine.dedup.linkage import connected_labels

    (id_values,), (left, right) = comparable_ids([ids], [gold[gold_left], gold[gold_right]], "(record ids)",
                                                 f"({gold_left!r}, {gold_right!r})")
    ids = pd.Index(id_values)
    a, b = ids.get_indexer(left), ids.get_indexer(right)
    unknown = (a < 0) | (b < 0)
    if unknown.any():
        bad = gold[unknown].iloc[0]
        raise LinkInputError(
            f"{int(unknown.sum())} gold pairs name records that are not in the predictions, e.g. "
            f"({bad[gold_left]!r}, {bad[gold_right]!r}); filter gold to the evaluated records"
        )
    return connected_labels(len(ids), a, b)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def cluster_metrics(pred_labels: Any, gold_labels: Any) -> dict[str, float]:
    """Pairwise and B-cubed precision/recall/F1 and adjusted Rand index of two labelings of the same records.

    Pairwise: over all pairs of records, a pair is predicted when both are in one predicted
    cluster, true when both are in one gold cluster.  B-cubed: per record, the share of its
    predicted cluster that is in its gold cluster (precision) and vice versa (recall), averaged.
    Undefined ratios (no predicted or no gold pairs) are 0, as in scikit-learn.
    """
    from sklearn.metrics import adjusted_rand_score
    from sklearn.metrics.cluster import contingency_matrix

    pred = pd.factorize(np.asarray(pred_labels))[0]
    gold = pd.factorize(np.asarray(gold_labels))[0]
    if len(pred) != len(gold):
        raise LinkInputError(f"pred_labels has {len(pred)} labels but gold_labels {len(gold)}; give one per record")
    for what, labels in (("pred_labels", pred), ("gold_labels", gold)):
        if (labels < 0).any():
            raise LinkInputError(f"{what} has {int((labels < 0).sum())} missing labels; give every record a cluster")
    n = len(pred)
    if n == 0:
        return {"records": 0}
    table = contingency_matrix(gold, pred, sparse=True).tocoo()
    nij = table.data.astype(np.float64)
    gold_sizes = np.bincount(gold).astype(np.float64)
    pred_sizes = np.bincount(pred).astype(np.float64)
    true_pairs = float((nij * (nij - 1) / 2).sum())
    pred_pairs = float((pred_sizes * (pred_sizes - 1) / 2).sum())
    gold_pairs = float((gold_sizes * (gold_sizes - 1) / 2).sum())
    p, r = _ratio(true_pairs, pred_pairs), _ratio(true_pairs, gold_pairs)
    bp = float((nij**2 / pred_sizes[table.col]).sum() / n)
    br = float((nij**2 / gold_sizes[table.row]).sum() / n)
    return {
        "records": n,
        "pred_clusters": len(pred_sizes),
        "gold_clusters": len(gold_sizes),
        "pred_pairs": int(pred_pairs),
        "gold_pairs": int(gold_pairs),
        "true_pairs": int(true_pairs),
        "pairwise_precision": p,
        "pairwise_recall": r,
        "pairwise_f1": _f1(p, r),
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f1": _f1(bp, br),
        "adjusted_rand": float(adjusted_rand_score(gold, pred)),
    }


def _pairs_from_clusters(ids: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Every ordered pair (a, b), a != b, of records sharing a cluster."""
    frame = pd.DataFrame({"id": ids, "c": labels})
    frame = frame[frame.duplicated("c", keep=False)]
    pairs = frame.merge(frame, on="c", suffixes=("_l", "_r"))
    pairs = pairs[pairs["id_l"] != pairs["id_r"]]
    return pd.DataFrame({"l": pairs["id_l"].to_numpy(), "r": pairs["id_r"].to_numpy()})


def link_metrics(pred: pd.DataFrame, gold_pairs: pd.DataFrame, *, rank: str | None = None, score: str | None = None,
                 k: int | None = None, symmetric: bool = False) -> dict[str, float]:
    """Metrics of predicted links ``pred[l, r]`` against ``gold_pairs[l, r]`` (ids in columns ``l``, ``r``).

    Pairwise precision/recall/F1 over the distinct predicted pairs; per left record with a gold
    link ("query"): top-1 accuracy (its best prediction is a gold link), MRR (1 / rank of the first
    gold link, 0 if none) and recall@k (share of gold pairs among the first ``k`` predictions of
    their left record).  Order within a left record: ``rank``, else ``score`` (descending), else row
    order.  ``symmetric``: both columns hold the same records (a self-link): self pairs are dropped
    and (a, b) equals (b, a).
    """
    from ltengine.evaluate.checks import positive_k

    k = positive_k(k)
    pred = pred[pred["r"].notna() & pred["l"].notna()].copy()
    gold = gold_pairs[["l", "r"]].dropna()
    if symmetric:
        pred = pred[pred["l"] != pred["r"]]
        gold = gold[gold["l"] != gold["r"]]
        gold = pd.concat([gold, gold.rename(columns={"l": "r", "r": "l"})], ignore_index=True)
    gold = gold.drop_duplicates()
    pred["__order"] = np.arange(len(pred))
    by = [c for c in (rank, score) if c]
    if by:
        ascending = [True] * (rank is not None) + [False] * (score is not None)
        pred = pred.sort_values(["l", *by, "__order"], ascending=[True, *ascending, True], kind="stable")
    else:
        pred = pred.sort_values(["l", "__order"], kind="stable")
    pred = pred.drop_duplicates(["l", "r"])
    pred["__rank"] = pred.groupby("l", sort=False).cumcount() + 1
    gold_set = pd.MultiIndex.from_frame(gold[["l", "r"]])
    hit = pd.MultiIndex.from_frame(pred[["l", "r"]]).isin(gold_set)
    tp = int(hit.sum())
    pair_pred = len(pred)
    if symmetric:  # count unordered pairs once
        key = pd.DataFrame({"a": pred[["l", "r"]].min(axis=1), "b": pred[["l", "r"]].max(axis=1)})
        unordered = ~key.duplicated().to_numpy()
        tp, pair_pred = int(hit[unordered].sum()), int(unordered.sum())
        n_gold = len(gold) // 2
    else:
        n_gold = len(gold)
    p, r = _ratio(tp, pair_pred), _ratio(tp, n_gold)
    queries = pd.unique(gold["l"])
    first = pred.loc[hit, ["l", "__rank"]].groupby("l")["__rank"].min()
    first = first.reindex(queries)
    k_eff = int(k) if k is not None else int(pred["__rank"].max()) if len(pred) else 1
    found_at_k = int((hit & (pred["__rank"].to_numpy() <= k_eff)).sum())
    return {
        "pred_pairs": pair_pred,
        "gold_pairs": n_gold,
        "true_pairs": tp,
        "precision": p,
        "recall": r,
        "f1": _f1(p, r),
        "queries": len(queries),
        "top1": _ratio(int((first == 1).sum()), len(queries)),
        "mrr": float((1.0 / first).fillna(0.0).sum() / len(queries)) if len(queries) else 0.0,
        "k": k_eff,
        "recall_at_k": _ratio(found_at_k, len(gold)),
    }


def evaluate(
    pred: pd.DataFrame,
    gold: pd.DataFrame | pd.Series,
    *,
    kind: str | None = None,
    id: str | None = None,
    left_id: str | None = None,
    right_id: str | None = None,
    gold_left: str = "id_l",
    gold_right: str = "id_r",
    cluster: str = "cluster",
    k: int | None = None,
    symmetric: bool = False,
) -> dict[str, float]:
    """Metrics of ``pred`` (output of ``cluster_rows``, ``merge``, ``merge_knn``, ``merge_range``) against ``gold``.

    ``kind``: ``"clusters"`` (default when ``pred`` has a ``cluster`` column) or ``"links"``.
    ``gold``: a frame of true pairs (columns ``gold_left``/``gold_right``, default ``id_l``/``id_r``),
    or gold clusters (a Series of labels indexed by record id, or a frame with ``id`` and ``cluster``).

    Clusters: records are identified by column ``id`` (default: the index).  Gold pairs are turned
    into clusters by transitive closure.  Returns pairwise and B-cubed precision/recall/F1 and the
    adjusted Rand index (see :func:`cluster_metrics`).

    Links: ``left_id``/``right_id`` name the record ids in ``pred`` (default ``id_l``/``id_r`` or
    ``id_x``/``id_y``); rows without a right id (``keep_unmatched``) predict nothing.  Returns pairwise
    precision/recall/F1, top-1 accuracy, MRR and recall@``k`` (default: the largest rank) over the left
    records that have a gold link (see :func:`link_metrics`); ``symmetric=True`` for a table linked
    with itself.
    """
    if not isinstance(pred, pd.DataFrame):
        raise LinkInputError(f"pred must be a DataFrame (the output of cluster_rows or merge); got {type(pred).__name__}")
    from ltengine.evaluate.checks import check_pred_clusters, gold_cluster_series, positive_k

    k = positive_k(k)
    if kind is None:
        kind = "clusters" if cluster in pred.columns else "links"
    gold_kind = _gold_kind(gold, gold_left, gold_right, cluster)
    if kind == "clusters":
        require_columns(pred, [cluster], "predicted cluster")
        check_pred_clusters(pred, cluster)
        if id is not None:
            require_columns(pred, [id], "record id")
        ids = pd.Index(pred[id] if id is not None else pred.index)
        if not ids.is_unique:
            raise LinkInputError(f"record ids ({id or 'the index'}) repeat in the predictions; pass id= a unique column")
        if gold_kind == "pairs":
            gold_labels = _clusters_from_pairs(gold, ids, gold_left, gold_right)  # type: ignore[arg-type]
        else:
            gold_labels = _gold_clusters(gold, ids, id, cluster)
        return cluster_metrics(pred[cluster].to_numpy(), gold_labels)
    if kind != "links":
        raise LinkInputError(f"kind must be 'clusters' or 'links'; got {kind!r}")
    left_col, right_col = link_id_columns(pred, left_id, right_id)
    frame = pd.DataFrame({"l": pred[left_col].to_numpy(), "r": pred[right_col].to_numpy()})
    rank = score = None
    if "rank" in pred.columns:
        frame["rank"], rank = pred["rank"].to_numpy(), "rank"
    if "score" in pred.columns:
        frame["score"], score = pred["score"].to_numpy(), "score"
    if gold_kind == "pairs":
        gold_pairs = pd.DataFrame({"l": gold[gold_left].to_numpy(), "r": gold[gold_right].to_numpy()})
    else:
        series = gold_cluster_series(gold, id, cluster)
        gold_pairs = _pairs_from_clusters(series.index.to_numpy(), series.to_numpy())
    (frame["l"], frame["r"]), (gold_pairs["l"], gold_pairs["r"]) = comparable_ids(
        [frame["l"], frame["r"]], [gold_pairs["l"], gold_pairs["r"]], f"({left_col!r}, {right_col!r})",
        f"({gold_left!r}, {gold_right!r})" if gold_kind == "pairs" else "(gold cluster ids)")
    return link_metrics(frame, gold_pairs, rank=rank, score=score, k=k, symmetric=symmetric)

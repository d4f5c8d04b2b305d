"""``lt.train_model`` from ``"accurate"`` (multilingual-e5-small): test top-1 before/after, fp32 and int8.

    python -m evals.train_model [--suite quick|full] [--sets sub_zh,territory_ko,...] [--timing]

For each dev-visible set (ISO 3166-2 subdivision names and CLDR *territory* names -> English; never CLDR
language or currency names, which the shipped fusion weights were fitted on) the gold links are split by
entity into halves (md5 parity of the English id, :func:`evals.common.is_test`).  The model is trained on
(at most ``MAX_TRAIN`` of) the train half's pairs with ``train_model``'s defaults and a ``max_minutes``
budget; the test half's names are linked among the test half's English names with
``lt.merge(model="accurate")`` and ``lt.merge(model=<folder>)`` in the **default mode** (``auto``), the
trained folder both through its ONNX int8 export (the default) and its fp32 weights
(``encoder_options={"backend": "torch"}``), in the same run.  ``--timing`` trains on 5,000 pairs for
one epoch (or until ``TIMING_MINUTES``) and reports steps, wall and process time.  The machine is shared:
wall time, process time and the load average are recorded side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

import ltengine as lt
from evals.common import is_test, write_result
from evals.datasets import LinkTask, cldr_names, subdivisions

SETS = {"quick": ("sub_zh", "territory_ko", "territory_es"), "full": ("sub_zh", "sub_ja", "territory_ko", "territory_ar",
                                                                       "territory_es", "territory_de")}
MAX_TRAIN = 600
MAX_MINUTES = 8.0
TIMING_MINUTES = 10.0  # the target: an epoch that does not finish within it misses it


def _task(name: str) -> LinkTask:
    kind, lang = name.split("_", 1)
    return subdivisions(lang) if kind == "sub" else cldr_names("territory", lang)


def _pairs(task: LinkTask) -> pd.DataFrame:
    gold = task.gold.merge(task.left.add_suffix("_l"), on="id_l").merge(task.right.add_suffix("_r"), on="id_r")
    return gold[["id_l", "id_r", "name_l", "name_r"]].reset_index(drop=True)


def _top1(test: pd.DataFrame, model: str, cache_dir: str, **options: Any) -> float:
    left = test[["id_l", "name_l"]].drop_duplicates("id_l").rename(columns={"name_l": "name"})
    right = test[["id_r", "name_r"]].drop_duplicates("id_r").rename(columns={"name_r": "name"})
    out = lt.merge(left, right, on="name", model=model, cache_dir=cache_dir, progress=False, **options)
    truth = test.groupby("id_l")["name_r"].agg(set)
    return round(float(np.mean([name in truth[i] for i, name in zip(out["id_l"], out["name_y"])])), 4)


def run_set(name: str, work: str) -> dict[str, Any]:
    pairs = _pairs(_task(name))
    test_mask = is_test(pairs["id_r"])
    train, test = pairs[~test_mask], pairs[test_mask]
    train = train[train["id_r"].isin(train["id_r"].drop_duplicates().sample(frac=1.0, random_state=0)
                                     .head(MAX_TRAIN))].head(MAX_TRAIN)  # whole entities
    cache_dir = os.path.join(work, "cache")
    folder = os.path.join(work, f"model-{name}")
    base_top1 = _top1(test, "accurate", cache_dir)
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lt.LinkWarning)
        lt.train_model(train, left_on="name_l", right_on="name_r", output_dir=folder, max_minutes=MAX_MINUTES,
                       progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with open(os.path.join(folder, "ltengine-training.json"), encoding="utf-8") as fh:
        facts = json.load(fh)
    row: dict[str, Any] = {
        "set": name, "train_pairs": len(train), "test_pairs": len(test), "test_top1_base": base_top1,
        "test_top1_trained_int8": _top1(test, folder, cache_dir),
        "test_top1_trained_fp32": _top1(test, folder, cache_dir, encoder_options={"backend": "torch"}),
        "train_wall_s": round(wall, 1), "train_process_s": round(cpu, 1),
        "load_avg_1min": round((load_before + os.getloadavg()[0]) / 2, 2),
        **{k: facts.get(k) for k in ("steps", "epochs", "stopped", "validation_pairs", "validation_top1_before",
                                     "validation_top1_after", "validation_top1_after_engine", "mined_hard_negatives")},
    }
    for kind in ("int8", "fp32"):
        after = row[f"test_top1_trained_{kind}"]
        row[f"gain_pts_{kind}"] = round(100 * (after - base_top1), 1)
        row[f"error_ratio_{kind}"] = round((1 - after) / (1 - base_top1), 3) if base_top1 < 1 else None
    print(row, flush=True)
    return row


def timing(work: str) -> dict[str, Any]:
    """Training time on 5,000 pairs (subdivision names of several languages -> English), one epoch."""
    frames = [_pairs(subdivisions(lang)) for lang in ("fr", "de", "es", "ru", "zh", "ja", "uk", "pl")]
    pairs = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=0).head(5000)
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lt.LinkWarning)
        folder = lt.train_model(pairs, left_on="name_l", right_on="name_r", output_dir=os.path.join(work, "timing"),
                                epochs=1, max_minutes=TIMING_MINUTES, val_share=0.0, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with open(os.path.join(folder, "ltengine-training.json"), encoding="utf-8") as fh:
        facts = json.load(fh)
    steps, per_epoch = facts["steps"], facts["steps_per_epoch"]
    return {"pairs": len(pairs), "epochs": 1, "steps_done": steps, "steps_per_epoch": per_epoch,
            "stopped": facts["stopped"], "wall_s": round(wall, 1), "process_s": round(cpu, 1),
            "loop_wall_s": facts.get("training_seconds"), "load_avg_1min": round((load_before + os.getloadavg()[0]) / 2, 2),
            "complete": steps >= per_epoch,
            "note": "wall and process time include loading, hard-negative mining, saving and the int8 export; when "
                    "the epoch did not complete within max_minutes, the time for a full epoch is not measured"}


def run(suite: str, sets: list[str] | None, with_timing: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ltengine-train-model-") as work:
        rows = [run_set(name, work) for name in (SETS[suite] if sets is None else sets)]
        timed = timing(work) if with_timing else None
    return {"benchmark": "train_model", "suite": suite, "ltengine_version": lt.__version__,
            "what": "test top-1 (entity-split halves) of lt.merge(model='accurate') vs lt.merge(model=<trained from "
                    "accurate on the train half>), default mode, int8 export and fp32", "rows": rows,
            "timing_5000_pairs": timed, "max_train_pairs": MAX_TRAIN, "max_minutes": MAX_MINUTES,
            "note": "shared 2-core machine (see load_avg_1min): wall time is inflated, compare process time"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="evals.train_model")
    parser.add_argument("--suite", choices=("quick", "full"), default="quick")
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: the suite's)")
    parser.add_argument("--timing", action="store_true", help="also time 5,000 pairs, one epoch")
    parser.add_argument("--timing-only", action="store_true", help="only the 5,000-pair timing (no sets)")
    parser.add_argument("--out-name", default="train_model", help="results file name (evals/results/<name>.json)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sets = [] if args.timing_only else args.sets.split(",") if args.sets else None
    result = run(args.suite, sets, args.timing or args.timing_only)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(f"wrote {write_result(result, name=args.out_name)}")
    return result


if __name__ == "__main__":
    main()

"""Trained cross-encoder rerankers (lt.train_reranker) on dev-visible labelled sets, split by entity.

``python -m evals.train_reranker [--suite quick|full]`` writes ``evals/results/train_reranker.json``.

Sets: CLDR territory names zh -> en and ISO 3166-2 subdivision names ja -> en (cross-script; the default
chain is below 0.85 top-1 on both; the subdivisions give ~4,300 training pairs, the territories ~570) and
Fodors-Zagats restaurants (same language, longer records: name, address, city, type).  Left records
are split by entity (md5 parity of the left id, evals.common.is_test): the reranker is trained on the
candidates (merge_knn, k=10) of the training half, labelled from the gold links, and every number is
measured on the other half, before and after, in the same run.  Per set and retrieval chain: recall@10
(the ceiling of any reranker of the top 10), top-1 and F1 of retrieval alone (F1 of the best pair per
left row kept when match_probability >= 0.5), and of retrieval + the trained cross-encoder (best pair
by rerank_score, kept when is_match).  Also: time to train on 5,000 labelled pairs (steps timed, then
scaled to 5,000 pairs x epochs: see ``timing``) and rerank throughput (pairs/s).  The machine is a
shared 2-core CPU: wall and process times are recorded with the load average.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

import ltengine as lt
from evals.common import is_test, main_for, prf
from evals.datasets import LinkTask, cldr_names, subdivisions
from evals.entity_matching import restaurants
from ltengine.learn.folders import read_training_info


def _labelled(task: LinkTask, left: pd.DataFrame, on: list[str], k: int, **link: Any) -> pd.DataFrame:
    cands = lt.merge_knn(left, task.right, on=on, k=k, progress=False, **link)
    gold = set(zip(task.gold["id_l"], task.gold["id_r"]))
    cands["label"] = [int((a, b) in gold) for a, b in zip(cands["id_x"], cands["id_y"])]
    return cands


def _measure(task: LinkTask, left: pd.DataFrame, on: list[str], k: int, rerank: str | None, **link: Any) -> dict:
    gold = set(zip(task.gold["id_l"], task.gold["id_r"]))
    gold_test = {(a, b) for a, b in gold if a in set(left["id"])}
    with_gold = {a for a, _ in gold_test}
    start, cpu = time.perf_counter(), time.process_time()
    out = lt.merge_knn(left, task.right, on=on, k=k, progress=False, rerank=rerank, **link)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    score = "rerank_score" if rerank else "score"
    best = out.sort_values(["id_x", score], ascending=[True, False], kind="stable").groupby("id_x").head(1)
    hit = {a for a, b in zip(best["id_x"], best["id_y"]) if (a, b) in gold}
    recall = {a for a, b in zip(out["id_x"], out["id_y"]) if (a, b) in gold}
    keep = best["is_match"].fillna(False).astype(bool) if rerank else best["match_probability"] >= 0.5
    predicted = set(zip(best.loc[keep.to_numpy(), "id_x"], best.loc[keep.to_numpy(), "id_y"]))
    result = {"top1": round(len(hit & with_gold) / len(with_gold), 4),
              f"recall@{k}": round(len(recall & with_gold) / len(with_gold), 4),
              **prf(predicted, gold_test), "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1)}
    if rerank:
        result["pairs_reranked"] = len(out)
    return result


def run_set(task: LinkTask, on: list[str], chains: dict[str, dict], train_chain: str, base_model: str, k: int,
            train_options: dict, workdir: str) -> dict:
    test = is_test(task.left["id"])
    train_left, test_left = task.left[~test], task.left[test]
    cands = _labelled(task, train_left, on, k, **chains[train_chain])
    start, cpu = time.perf_counter(), time.process_time()
    load = os.getloadavg()[0]
    path = lt.train_reranker(cands, [c + "_x" if c + "_x" in cands else c for c in on],
                             [c + "_y" if c + "_y" in cands else c for c in on], "label", base_model=base_model,
                             output_dir=os.path.join(workdir, task.name), overwrite=True, progress=False,
                             **train_options)
    training = {"wall_seconds": round(time.perf_counter() - start, 1),
                "cpu_seconds": round(time.process_time() - cpu, 1), "load_avg_1m_start": round(load, 2),
                "load_avg_1m_end": round(os.getloadavg()[0], 2), "labelled_rows": len(cands),
                "labelled_positives": int(cands["label"].sum()),
                "model_card": {key: value for key, value in read_training_info(path).items()
                               if key not in ("history", "created")}}
    rows = []
    for name, link in chains.items():
        before = _measure(task, test_left, on, k, None, **link)
        after = _measure(task, test_left, on, k, f"cross-encoder:{path}", **link)
        rows.append({"set": task.name, "chain": name, "n_test_left": int(test.sum()),
                     "n_test_gold": int(task.gold["id_l"].isin(set(test_left["id"])).sum()),
                     "retrieval": before, "with_reranker": after,
                     "top1_gain_pts": round(100 * (after["top1"] - before["top1"]), 1)})
    return {"training": training, "rows": rows, "model": path}


def timing(path: str, pairs: list[tuple[str, str]], steps: int = 8, batch_size: int = 16) -> dict:
    """Seconds per training step (batch of 16) of the model's base, timed over ``steps`` steps and scaled
    to 5,000 pairs x 2 epochs; rerank throughput of the trained model over ``pairs``."""
    from ltengine.learn.reranker_train import TrainSettings, load_cross_encoder, predict_logits, train_loop

    model = load_cross_encoder(path, 128)
    labels = np.arange(steps * batch_size) % 2
    sample = [pairs[i % len(pairs)] for i in range(steps * batch_size)]
    start, cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    train_loop(model, sample, labels, [], np.zeros(0), TrainSettings(epochs=1, batch_size=batch_size, progress=False))
    wall, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    per_step = wall / steps
    start2, cpu2 = time.perf_counter(), time.process_time()
    predict_logits(model, pairs, 128)
    wall2, cpu2_s = time.perf_counter() - start2, time.process_time() - cpu2
    return {"train_seconds_per_step_wall": round(per_step, 2), "train_cpu_seconds_per_step": round(cpu_s / steps, 2),
            "estimated_minutes_5000_pairs_2_epochs_wall": round(per_step * 2 * 5000 / batch_size / 60, 1),
            "estimated_minutes_5000_pairs_2_epochs_cpu": round(cpu_s / steps * 2 * 5000 / batch_size / 60, 1),
            "rerank_pairs": len(pairs), "rerank_pairs_per_s_wall": round(len(pairs) / wall2, 1),
            "rerank_pairs_per_s_cpu": round(len(pairs) / max(cpu2_s, 1e-9), 1),
            "load_avg_1m": round(load, 2), "load_avg_1m_end": round(os.getloadavg()[0], 2)}


def run(suite: str = "full") -> dict:
    with tempfile.TemporaryDirectory(prefix="ltengine-train-reranker-") as workdir:  # trained models are scratch
        return _run_in(suite, workdir)


def _run_in(suite: str, workdir: str) -> dict:
    quick = suite == "quick"
    k = 10
    train_options = {"epochs": 2 if quick else 3, "batch_size": 16, "max_length": 64, "seed": 0,
                     "max_minutes": 12.0}
    results: dict[str, Any] = {"benchmark": "train_reranker", "suite": suite,
                               "command": f"python -m evals.train_reranker --suite {suite}", "sets": {}}
    zh = cldr_names("territory", "zh")
    default = "default (fast, hybrid)"  # the chain both cross-script rerankers are trained on
    chains = {default: {"model": "fast"}, "semantic (accurate)": {"model": "accurate", "mode": "semantic"}}
    results["sets"]["territory_zh"] = run_set(zh, ["name"], chains, default, "accurate", k, train_options, workdir)
    results["sets"]["subdivisions_ja"] = run_set(subdivisions("ja"), ["name"], {default: chains[default]}, default,
                                                 "accurate", k, train_options, workdir)
    rest = restaurants()
    chains = {"default (fast)": {"model": "fast"}}
    results["sets"]["restaurants"] = run_set(rest, ["name", "addr", "city", "type"], chains, "default (fast)",
                                             "all-MiniLM-L6-v2", k, {**train_options, "max_length": 128}, workdir)
    path = results["sets"]["territory_zh"]["model"]
    names = list(zip(zh.left["name"], zh.right["name"]))
    results["timing_accurate"] = timing(path, names * 4)
    results["rows"] = [row for s in results["sets"].values() for row in s["rows"]]
    results["notes"] = ("2-core CPU shared with other jobs during the run: wall times are inflated; process (CPU) "
                        "times and load averages are recorded beside them. Training time for 5,000 pairs is "
                        "extrapolated from timed steps of the same model (batch 16, 2 epochs).")
    return results


def onnx_int8_check(path: str, pairs: list[tuple[str, str]], batch_size: int = 64) -> dict:
    """Export the trained cross-encoder to ONNX, int8-quantise it (onnxruntime dynamic quantisation) and
    compare its pairs/s and scores with torch fp32 on ``pairs``: the export is worth wiring in only if faster."""
    import torch
    from onnxruntime import InferenceSession, SessionOptions
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ltengine.learn.reranker_train import load_cross_encoder, predict_logits

    model = load_cross_encoder(path, 128)
    net, tok = model.model.eval(), model.tokenizer
    scratch = tempfile.TemporaryDirectory(prefix="ce-onnx-")  # removed when the check returns
    folder = scratch.name
    sample = tok(["a b"], ["c"], return_tensors="pt")
    names = list(sample.keys())
    with torch.inference_mode():
        torch.onnx.export(net, tuple(sample[n] for n in names), f"{folder}/fp32.onnx", input_names=names,
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in names} | {"logits": {0: "batch"}})
    quantize_dynamic(f"{folder}/fp32.onnx", f"{folder}/int8.onnx", weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True)
    options = SessionOptions()
    session = InferenceSession(f"{folder}/int8.onnx", options, providers=["CPUExecutionProvider"])
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))

    def onnx_logits() -> np.ndarray:
        out = np.empty(len(pairs))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tok([pairs[i][0] for i in idx], [pairs[i][1] for i in idx], padding=True, truncation=True,
                      max_length=128, return_tensors="np")
            out[idx] = session.run(None, {n: enc[n].astype(np.int64) for n in names})[0].reshape(-1)
        return out

    timings = {}
    for name, fn in (("torch_fp32", lambda: predict_logits(model, pairs, 128, batch_size)), ("onnx_int8", onnx_logits)):
        fn()  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        logits = fn()
        timings[name] = {"pairs_per_s_wall": round(len(pairs) / (time.perf_counter() - start), 1),
                         "pairs_per_s_cpu": round(len(pairs) / max(time.process_time() - cpu, 1e-9), 1),
                         "logits": logits}
    a, b = timings["torch_fp32"].pop("logits"), timings["onnx_int8"].pop("logits")
    scratch.cleanup()  # the session holds the model in memory
    return {**timings, "pairs": len(pairs), "max_abs_logit_diff": round(float(np.abs(a - b).max()), 4),
            "spearman": round(float(pd.Series(a).corr(pd.Series(b), method="spearman")), 4),
            "speedup_cpu": round(timings["onnx_int8"]["pairs_per_s_cpu"] / timings["torch_fp32"]["pairs_per_s_cpu"], 2),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


if __name__ == "__main__":
    import sys

    if "--onnx" in sys.argv:  # python -m evals.train_reranker --onnx: the ONNX int8 check on the saved model
        import json

        from evals.common import RESULTS

        result_path = RESULTS / "train_reranker.json"
        saved = json.loads(result_path.read_text())
        model_dir = saved["sets"]["territory_zh"]["model"]
        zh = cldr_names("territory", "zh")
        saved["onnx_int8"] = onnx_int8_check(model_dir, list(zip(zh.left["name"], zh.right["name"])) * 2)
        result_path.write_text(json.dumps(saved, indent=2, ensure_ascii=False, default=str) + "\n")
        print(json.dumps(saved["onnx_int8"], indent=1))
    else:
        main_for(run)

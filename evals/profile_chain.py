"""Where the default chain's time goes: cProfile over ``lt.merge`` (ltengine's defaults) on the GeoNames
link task, summarised by stage.

Run::

    python -m evals.profile_chain                 # 20,000 x 20,000 (the issue's task)
    python -m evals.profile_chain --n 2000        # reduced size
    python -m evals.profile_chain --n 10000 --right 1000000 --out-name profile_chain_1m   # the 1M scale run

Two views, both in ``evals/results/profile_chain.json``:

* ``stage_timers``: ltengine's own per-stage wall timers of the run (``out.attrs["ltengine"]["timings"]``:
  block, encode, build, search, rerank, fuse, calibrate, total_link), without the profiler's overhead;
* ``stages``: from the profile, the time spent inside each stage's code (serialisation, encoding, index
  build, search, lexical stage, string features, fusion, calibration, output assembly, blocking),
  counted at the stage's entry points (calls into the stage from outside it), so a stage's figure
  includes the libraries it calls (numpy, FAISS, ONNX Runtime, ...).  Stages can nest (the lexical
  retriever's build runs inside "index build"): the figures are not meant to add up; ``merge_seconds``
  is the whole call.  ``top_functions``: the 25 functions with the most own time.

Records wall and CPU time (``process_time``) and the load average: on a shared machine the wall
times are inflated, the proportions less so.  The embedding cache is a fresh folder (cold run).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.common import machine, write_result
from evals.peers import code_version

#: Stage -> (path pattern, function-name pattern) pairs; a function belongs to the first stage it matches.
STAGES: dict[str, list[tuple[str, str]]] = {
    "serialisation": [(r"ltengine/engine/text\.py$", r".*"),
                      (r"ltengine/lexical/(transliterate|cleaning|scripts|names)\.py$", r".*")],
    "encoding": [(r"ltengine/engine/encoding\.py$", r".*")],
    "lexical stage": [(r"plugins/(lexical_retriever|_lexical_state|_lexical_analyzers)\.py$", r".*")],
    "index build": [(r"plugins/(faiss_retriever|exact_retriever)\.py$", r"^(build|add|kind_for|_owned)$")],
    "search": [(r"plugins/(faiss_retriever|exact_retriever)\.py$", r"^(search|search_range|score_pairs)$"),
               (r"ltengine/retrieval\.py$", r".*")],
    "string features": [(r"ltengine/lexical/string_features\.py$", r".*"), (r"ltengine/pair_features\.py$", r".*")],
    "fusion": [(r"ltengine/engine/(fusion|adaptive)\.py$", r".*"), (r"plugins/(fusers|fusion_weights)\.py$", r".*")],
    "calibration": [(r"ltengine/engine/calibration\.py$", r".*")],
    "output assembly": [(r"ltengine/engine/(output|decide)\.py$", r".*")],
    "blocking": [(r"ltengine/engine/blocks\.py$", r".*"), (r"plugins/blocking\.py$", r".*")],
}


def stage_of(path: str, func: str) -> str | None:
    path = path.replace(os.sep, "/")
    for stage, rules in STAGES.items():
        if any(re.search(p, path) and re.search(f, func) for p, f in rules):
            return stage
    return None


def summarise(stats: pstats.Stats) -> dict[str, float]:
    """Seconds per stage: the cumulative time of the calls entering each stage from outside it."""
    totals = dict.fromkeys(STAGES, 0.0)
    raw = stats.stats  # type: ignore[attr-defined]
    for (path, _, func), (_, _, _, _, callers) in raw.items():
        stage = stage_of(path, func)
        if stage is None:
            continue
        for (cpath, _, cfunc), caller_stats in callers.items():
            if stage_of(cpath, cfunc) != stage:
                totals[stage] += caller_stats[3]  # cumulative time of the calls from this caller
    return {k: round(v, 3) for k, v in totals.items()}


def top_functions(stats: pstats.Stats, count: int = 25) -> list[list[Any]]:
    raw = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:count]
    return [[f"{Path(path).name}:{line}({func})", round(tt, 3), round(ct, 3), nc, stage_of(path, func) or "-"]
            for (path, line, func), (_, nc, tt, ct, _) in rows]


def run(suite: str = "quick", n: int | None = None, cpu_timer: bool = False, right: int | None = None) -> dict[str, Any]:
    """Profile one cold ``lt.merge`` with ltengine's defaults on ``n`` x ``n`` GeoNames names
    (``cpu_timer``: the profile counts CPU time, all threads, instead of wall time: steadier on a loaded machine).
    ``right``: ``n`` left names against ``right`` right rows of :func:`evals.scale.frames` (the scale run's data)."""
    import ltengine as lt
    from evals.datasets import geonames_link_task

    n = n or (2_000 if suite == "quick" else 20_000)
    if right is None:
        task = geonames_link_task(n)
        left_rows, right_rows = task.left, task.right
    else:
        from evals.scale import frames

        left_rows, right_rows = frames(right, n_left=n)
    load_start = round(os.getloadavg()[0], 2)
    profiler = cProfile.Profile(time.process_time) if cpu_timer else cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="lt_profile_") as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        out = profiler.runcall(lt.merge, left_rows, right_rows, on="name", cache_dir=Path(tmp) / "cache",
                               progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = pstats.Stats(profiler)
    info = out.attrs.get("ltengine", {})
    timers = {k: round(v, 3) for k, v in info.get("timings", {}).items()}
    stages = summarise(stats)
    load_end = round(os.getloadavg()[0], 2)
    return {
        "benchmark": "profile_chain",
        "title": f"where the default chain's time goes: lt.merge, {n:,} x {len(right_rows):,} GeoNames names",
        "suite": "full" if n >= 20_000 or right else "quick",
        "command": f"python -m evals.profile_chain --n {n}" + (f" --right {right}" if right else "")
        + (" --cpu-timer" if cpu_timer else ""),
        "profile_timer": "process_time (CPU, all threads)" if cpu_timer else "perf_counter (wall)",
        "tables": [
            {"title": "time inside each stage (profiled, inclusive; stages can nest)",
             "columns": ["stage", "seconds", "share of merge"],
             "rows": [[s, v, round(v / (cpu if cpu_timer else wall), 3)] for s, v in stages.items()]},
            {"title": "ltengine's own stage timers (same run)", "columns": ["timer", "seconds"],
             "rows": [[k, v] for k, v in timers.items()]},
            {"title": "functions with the most own time", "columns": ["function", "own s", "cumulative s", "calls",
                                                                      "stage"],
             "rows": top_functions(stats)},
        ],
        "notes": [f"merge: {wall:.1f} s wall, {cpu:.1f} s CPU (profiled: cProfile adds overhead to Python calls)",
                  f"load average (1 min) {load_start} at start, {load_end} at end on {os.cpu_count()} cores: "
                  "wall times are inflated when the load is high"],
        "n": n,
        "merge_seconds": round(wall, 2),
        "merge_cpu_seconds": round(cpu, 2),
        "records_per_second": round(n / wall, 1),
        "right_rows": len(right_rows),
        "mode": info.get("report", {}).get("mode"),
        "stages": stages,
        "stage_timers": timers,
        "load_average": {"start": load_start, "end": load_end},
        "machine_at_start": machine(),
        "code": code_version(),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="cProfile of the default chain, by stage")
    parser.add_argument("--n", type=int, default=20_000, help="rows per side (default 20,000)")
    parser.add_argument("--cpu-timer", action="store_true", help="profile CPU time instead of wall time")
    parser.add_argument("--right", type=int, help="right rows from the scale run's data (default: the n x n task)")
    parser.add_argument("--out-name", help="result file name (evals/results/<name>.json)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run("full" if args.n >= 20_000 else "quick", args.n, args.cpu_timer, args.right)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(f"wrote {write_result(result, args.out_name)}")


if __name__ == "__main__":
    main()

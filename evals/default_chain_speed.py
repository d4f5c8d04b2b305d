"""Speed of the default chain on the GeoNames 20k x 20k task, before and after the adaptive chain, paired.

    python -m evals.default_chain_speed [--n 20000] [--pairs 2] [--before 6d89357^] [--models fast,accurate]

``lt.merge(left, right, on="name", model=...)`` with everything else at its default (``mode="auto"``),
``n`` GeoNames alternate names (many scripts) linked to ``n`` main city names (the task of
``evals.speed_vs_linktransformer``).  Each run is its own fresh process with an empty embedding cache
(cold), through ``evals/peers/ltengine_merge.py``; the timed span is the ``merge`` call (model load from
disk, encoding both sides, search, fusion, calibration, output).  ``before`` is the code of the given
commit (default: the parent of the commit that added ``engine/adaptive.py``: the chain without the
self-fitted fusion) exported with ``git archive``; ``after`` is this checkout.  Rounds alternate the
order (before, after / after, before) so a drift of the machine load hits both alike; the summary gives
medians.  records/s = (left + right rows) / merge seconds (the issue's targets: >= 1,000 fast, >= 600
accurate); the self-calibration's share is ``fuse`` + ``calibrate`` minus the before run's, over the
after run's wall time, and also the stage timers of the after run (``calibrate`` and ``fuse``).
Top-1 (the merged right row is the true city) shows the speed was not bought with accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.common import machine, write_result
from evals.peers import code_version
from evals.speed_vs_linktransformer import top1, write_task

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path("evals") / "peers" / "ltengine_merge.py"
BEFORE = "6d89357^"
MODELS = {"fast": "fast", "accurate": "accurate"}


def export(commit: str, into: Path) -> Path:
    """``commit``'s tree under ``into/code``, with ``ltengine_plugins`` pointing at its ``plugins``."""
    code = into / "code"
    code.mkdir(parents=True)
    archive = into / "code.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), commit], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(code, filter="data")
    (code / "ltengine_plugins").symlink_to(code / "plugins")
    return code


def run_once(code: Path, model: str, left: Path, right: Path, home: Path) -> dict[str, Any]:
    """One cold merge in a fresh process on ``code``'s ltengine and plugins; the worker's JSON."""
    cmd = [sys.executable, str(code / WORKER), "--left", str(left), "--right", str(right), "--left-on", "name",
           "--cache-dir", str(home / "cache"), "--no-preimport", "--out", str(home / "out.csv")]
    cmd += ["--model", model]
    env = dict(os.environ, PYTHONPATH=str(code), LTENGINE_HOME=str(home),
               LTENGINE_MODELS_DIR=os.environ.get("LTENGINE_MODELS_DIR", str(Path.home() / ".ltengine" / "models")))
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=code, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(load_before=round(load, 2), load_after=round(os.getloadavg()[0], 2))
    return result


def measure(n: int, pairs: int, before: str, models: list[str]) -> dict[str, Any]:
    from evals.datasets import geonames_link_task

    task = geonames_link_task(n)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lt_chain_speed_") as tmp:
        tmp_path = Path(tmp)
        left, right = write_task(task, tmp_path)
        codes = {"before": export(before, tmp_path / "before"), "after": ROOT}
        for name in models:
            for round_no in range(pairs):
                for side in ("before", "after") if round_no % 2 == 0 else ("after", "before"):
                    home = tmp_path / f"home{len(runs)}"
                    result = run_once(codes[side], MODELS[name], left, right, home)
                    result.update(side=side, model_name=name, round=round_no + 1,
                                  top1=top1(home / "out.csv", task.gold),
                                  records_per_s=round((len(task.left) + len(task.right)) / result["seconds"], 1))
                    print(f"[chain-speed] {name} {side} round {round_no + 1}: {result['seconds']} s, "
                          f"{result['records_per_s']} rec/s, top-1 {result['top1']}, mode {result['mode']}, "
                          f"load {result['load_before']}->{result['load_after']}", file=sys.stderr, flush=True)
                    runs.append(result)
    return {"n": n, "task": task.name, "runs": runs}


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in dict.fromkeys(r["model_name"] for r in runs):
        mine = {side: [r for r in runs if r["model_name"] == name and r["side"] == side]
                for side in ("before", "after")}
        med = {side: statistics.median(r["seconds"] for r in mine[side]) for side in mine}
        stage = {side: statistics.median(r["timings"].get("fuse", 0.0) + r["timings"].get("calibrate", 0.0)
                                         for r in mine[side]) for side in mine}
        after = mine["after"][0]
        records = after["left_rows"] + after["right_rows"]
        rows.append({"model": name, "seconds_before": round(med["before"], 1), "seconds_after": round(med["after"], 1),
                     "records_per_s_before": round(records / med["before"], 1),
                     "records_per_s_after": round(records / med["after"], 1),
                     "top1_before": mine["before"][0]["top1"], "top1_after": after["top1"],
                     "mode_before": mine["before"][0]["mode"], "mode_after": after["mode"],
                     "fuse_calibrate_s_after": round(stage["after"], 2),
                     "self_calibration_share": round((stage["after"] - stage["before"]) / med["after"], 3),
                     "wall_change": round(med["after"] / med["before"] - 1, 3)})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--before", default=BEFORE)
    ap.add_argument("--models", default="fast,accurate")
    ap.add_argument("--out-name", default="default_chain_speed",
                    help="results file name under evals/results (the default is the file the README cites)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    measured = measure(args.n, args.pairs, args.before, args.models.split(","))
    rows = summarise(measured["runs"])
    columns = list(rows[0]) if rows else []
    result = {"benchmark": "default_chain_speed", "title": f"default chain, GeoNames {args.n:,} x {args.n:,}, "
              "before/after the adaptive chain (paired, cold, medians)",
              "command": f"python -m evals.default_chain_speed --n {args.n} --pairs {args.pairs} "
                         f"--before {args.before} --models {args.models} --out-name {args.out_name}",
              "tables": [{"title": "records/s and the self-calibration's share", "columns": columns,
                          "rows": [list(r.values()) for r in rows]}],
              "rows": rows, "runs": measured["runs"], "code": code_version(), "machine": machine(),
              "seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(rows, indent=1))
    print(f"wrote {write_result(result, args.out_name)}")
    return result


if __name__ == "__main__":
    main()

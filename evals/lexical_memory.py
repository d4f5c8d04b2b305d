"""Peak memory of building the char-ngram index alone, before and after a change, in fresh processes.

The lexical stage's index (``CharNgramRetriever.build`` on :mod:`evals.scale`'s GeoNames right side, the
``auto`` analyzer) is built in a fresh interpreter from each checkout, alternating which goes first.  Each
process loads the names, resets the kernel's peak-RSS mark (``/proc/self/clear_refs``, Linux), builds the
index and reports from ``/proc/self/status``:

* ``start MiB``: resident memory just before the build (the names and the libraries loaded);
* ``peak MiB``: the highest resident memory during the build (``VmHWM``);
* ``added at peak``: peak - start, what the build itself needs at its worst;
* ``held after``: resident memory once the build returned (the index, and heap the allocator kept).

Run::

    git worktree add /tmp/before <commit>; ln -s plugins /tmp/before/ltengine_plugins
    python -m evals.lexical_memory --before /tmp/before --right 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from evals.common import machine, write_result
from evals.overhead_pairs import ROOT, version

WORKER = """
import gc, json, sys, time
import numpy as np
from evals.scale import frames
from ltengine_plugins.lexical_retriever import CharNgramRetriever

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

left, right = frames(int(sys.argv[1]))
texts = list(right["name"])
del left, right
retriever = CharNgramRetriever()
gc.collect()
open("/proc/self/clear_refs", "w").write("5")
start, clock = status("VmRSS:"), time.perf_counter()
retriever.build(texts, np.arange(len(texts)))
print(json.dumps({"start": start, "peak": status("VmHWM:"), "after": status("VmRSS:"),
                  "seconds": time.perf_counter() - clock, "entries": int(retriever.matrix.nnz),
                  "parts": list(retriever.parts)}))
"""


def run_in_checkout(checkout: Path, code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter with ``checkout`` first on the path; its last stdout line, as JSON."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=checkout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the worker in {checkout} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build_once(checkout: Path, n_right: int) -> dict[str, Any]:
    return run_in_checkout(checkout, WORKER, str(n_right))


def run(checkouts: dict[str, Path], n_right: int, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in checkouts}
    for round_ in range(rounds):
        order = list(checkouts) if round_ % 2 == 0 else list(checkouts)[::-1]
        for label in order:
            runs[label].append(build_once(checkouts[label], n_right))
            print(label, runs[label][-1], flush=True)
    rows = []
    for label, results in runs.items():
        med = {key: round(statistics.median(r[key] for r in results), 1) for key in ("start", "peak", "after", "seconds")}
        added = round(statistics.median(r["peak"] - r["start"] for r in results), 1)
        rows.append([label, med["start"], med["peak"], added, med["after"], med["seconds"], results[0]["entries"],
                     "+".join(results[0]["parts"])])
    return {
        "benchmark": "lexical_memory",
        "title": f"char-ngram index build on {n_right:,} GeoNames right names: peak memory, before and after",
        "suite": "custom",
        "command": f"python -m evals.lexical_memory --before <checkout> --right {n_right} --rounds {rounds}",
        "tables": [{"title": "one build per fresh process (medians over rounds)",
                    "columns": ["checkout", "start MiB", "peak MiB", "added at peak MiB", "held after MiB",
                                "build s", "index entries", "parts"],
                    "rows": rows}],
        "runs": runs,
        "notes": [f"{rounds} rounds, the checkouts alternating which runs first",
                  "peak: VmHWM after resetting it with /proc/self/clear_refs just before the build"],
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="peak memory of the char-ngram index build, before and after")
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare against")
    parser.add_argument("--after", type=Path, default=ROOT, help="the changed checkout (default: this one)")
    parser.add_argument("--right", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out-name", default=None)
    args = parser.parse_args(argv)
    checkouts = {f"before ({version(args.before)})": args.before, f"after ({version(args.after)})": args.after}
    result = run(checkouts, args.right, args.rounds)
    for row in result["tables"][0]["rows"]:
        print(row)
    print(f"wrote {write_result(result, args.out_name or f'lexical_memory_{args.right}')}")


if __name__ == "__main__":
    main()

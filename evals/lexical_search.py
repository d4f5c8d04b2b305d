"""The char-ngram retriever's top-k search alone, before and after a change, in fresh processes.

Each checkout, in a fresh interpreter (alternating which goes first), builds the lexical index on
:mod:`evals.scale`'s GeoNames right side (the ``auto`` analyzer), then searches the 10,000 left names for their
``k`` best rows ``--searches`` times: the first search also turns the queries into TF-IDF rows (romanising
them), later ones reuse the rows the retriever remembers, so they time the top-k product alone.  Reported:

* wall and CPU seconds of the first search and the median of the later ones;
* how the two checkouts' results compare: left rows whose top-k list (ids in rank order) is identical, rows
  whose best row is identical, the largest score difference of a pair both return, and how many of the rows
  that differ do so only where the two scores at each differing rank are within ``1e-6`` (ties, near-ties);
* top-1 "same place" (the best row's city is the left name's), as ``evals.scale`` counts it.

Run::

    git worktree add /tmp/before <commit>; ln -s plugins /tmp/before/ltengine_plugins
    python -m evals.lexical_search --before /tmp/before --right 100000 --rounds 3
    python -m evals.lexical_search --before /tmp/before --repeated distinct   # 30 % of the names one value
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from evals.common import machine, write_result
from evals.lexical_memory import run_in_checkout
from evals.overhead_pairs import ROOT, version

#: ``--repeated``: the share of names replaced by one repeated value, as in a column often holding "unknown"
REPEATED_SHARE = 0.3


def repeated_value(left: Any, right: Any, mode: str) -> tuple[Any, Any]:
    """``mode`` "none": the frames as they are; "same": 30 % of the right names and 30 % of the left names become
    "unknown" (at 100k each such query ties with 30,000 copies); "distinct": the left ones become "unknown <row>"."""
    if mode == "none":
        return left, right
    rng = np.random.default_rng(0)
    left, right = left.copy(), right.copy()
    right.iloc[rng.choice(len(right), round(REPEATED_SHARE * len(right)), replace=False),
               right.columns.get_loc("name")] = "unknown"
    rows = np.sort(rng.choice(len(left), round(REPEATED_SHARE * len(left)), replace=False))
    left.iloc[rows, left.columns.get_loc("name")] = ["unknown" if mode == "same" else f"unknown {r}" for r in rows]
    return left, right


# the worker runs in the other checkout too, so it carries repeated_value's source rather than importing it
WORKER = """
import json, sys, time
from typing import Any
import numpy as np
from evals.scale import frames
from ltengine_plugins.lexical_retriever import CharNgramRetriever
# repeated_value
left, right = repeated_value(*frames(int(sys.argv[1])), sys.argv[5])
k, out, searches = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
retriever = CharNgramRetriever()
retriever.build(list(right["name"]), np.arange(len(right)))
queries, times = list(left["name"]), []
for _ in range(searches):
    clock, cpu = time.perf_counter(), time.process_time()
    found = retriever.search(queries, np.arange(len(queries)), k)
    times.append([time.perf_counter() - clock, time.process_time() - cpu])
np.savez(out, id_l=found["id_l"].to_numpy(), id_r=found["id_r"].to_numpy(), score=found["retrieval_score"].to_numpy(),
         rank=found["rank"].to_numpy())
print(json.dumps({"times": times, "parts": list(retriever.parts)}))
"""
WORKER = WORKER.replace("# repeated_value\n", f"REPEATED_SHARE = {REPEATED_SHARE}\n{inspect.getsource(repeated_value)}\n")


def top_lists(found: Any, n_left: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_left, k) right ids and scores in rank order; -1 / nan where a row has fewer."""
    ids = np.full((n_left, k), -1, dtype=np.int64)
    scores = np.full((n_left, k), np.nan, dtype=np.float64)
    ids[found["id_l"], found["rank"] - 1] = found["id_r"]
    scores[found["id_l"], found["rank"] - 1] = found["score"]
    return ids, scores


def compare(before: Any, after: Any, n_left: int, k: int) -> dict[str, Any]:
    """How two searches' results differ (see the module)."""
    (ids_a, scores_a), (ids_b, scores_b) = top_lists(before, n_left, k), top_lists(after, n_left, k)
    same_list = (ids_a == ids_b).all(axis=1)
    diffs, only_ties = [], 0
    for row in range(n_left):
        shared, at_a, at_b = np.intersect1d(ids_a[row], ids_b[row], return_indices=True)
        shared_scores = shared >= 0
        if shared_scores.any():
            diffs.append(np.abs(scores_a[row, at_a[shared_scores]] - scores_b[row, at_b[shared_scores]]).max())
        if not same_list[row]:  # where the ids differ, are the scores (nearly) equal: ties ordered differently?
            moved = ids_a[row] != ids_b[row]
            only_ties += bool((np.abs(scores_a[row, moved] - scores_b[row, moved]) <= 1e-6).all())
    return {"rows with identical top-k lists": round(float(same_list.mean()), 4),
            "rows with the same best row": round(float((ids_a[:, 0] == ids_b[:, 0]).mean()), 4),
            "largest score difference of a shared pair": float(max(diffs, default=0.0)),
            "differing rows": int((~same_list).sum()),
            "of which only where the two scores at each differing rank are within 1e-6": only_ties}


def run(checkouts: dict[str, Path], n_right: int, k: int, rounds: int, searches: int,
        repeated: str = "none") -> dict[str, Any]:
    from evals.scale import frames

    left, right = repeated_value(*frames(n_right), repeated)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in checkouts}
    outputs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lt_lexical_search_") as folder:
        for round_ in range(rounds):
            order = list(checkouts) if round_ % 2 == 0 else list(checkouts)[::-1]
            for number, label in enumerate(order):
                out = Path(folder) / f"{round_}_{number}.npz"
                runs[label].append(run_in_checkout(checkouts[label], WORKER, str(n_right), str(k), str(out), str(searches),
                                                   repeated))
                print(label, runs[label][-1], flush=True)
                with np.load(out) as data:
                    outputs[label] = {key: data[key] for key in data.files}
    rows = []
    for label, results in runs.items():
        first = [r["times"][0] for r in results]
        later = [t for r in results for t in r["times"][1:]]
        found = outputs[label]
        best = found["rank"] == 1
        top1 = float((left["city"].to_numpy()[found["id_l"][best]] == right["city"].to_numpy()[found["id_r"][best]]).sum()
                     / len(left))
        rows.append([label, round(statistics.median(t[0] for t in first), 2), round(statistics.median(t[1] for t in first), 2),
                     round(statistics.median(t[0] for t in later), 2) if later else None,
                     round(statistics.median(t[1] for t in later), 2) if later else None, round(top1, 4),
                     "+".join(results[0]["parts"])])
    labels = list(checkouts)
    after_over_before = rows[1][3] / rows[0][3] if rows[0][3] else None
    return {
        "benchmark": "lexical_search",
        "title": f"char-ngram top-{k} search of 10,000 GeoNames names over {n_right:,}: before and after",
        "suite": "custom",
        "command": f"python -m evals.lexical_search --before <checkout> --right {n_right} --k {k} --rounds {rounds} "
                   f"--searches {searches} --repeated {repeated}",
        "tables": [{"title": "one index per fresh process (medians over rounds; later searches reuse the query rows)",
                    "columns": ["checkout", "first search s", "first search CPU s", "later searches s",
                                "later searches CPU s", "top-1 same place", "parts"],
                    "rows": rows}],
        "after / before, later searches": None if after_over_before is None else round(after_over_before, 3),
        "results compared (the last round's)": compare(outputs[labels[0]], outputs[labels[1]], len(left), k),
        "runs": runs,
        "notes": [f"{rounds} rounds, the checkouts alternating which runs first; {searches} searches per process",
                  "2 threads (sparse_dot_topn's, os.cpu_count() capped at 8)"],
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the char-ngram top-k search alone, before and after")
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare against")
    parser.add_argument("--after", type=Path, default=ROOT, help="the changed checkout (default: this one)")
    parser.add_argument("--right", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--searches", type=int, default=3)
    parser.add_argument("--repeated", choices=["none", "same", "distinct"], default="none",
                        help="replace 30%% of the names by one repeated value (see repeated_value)")
    parser.add_argument("--out-name", default=None)
    args = parser.parse_args(argv)
    checkouts = {f"before ({version(args.before)})": args.before, f"after ({version(args.after)})": args.after}
    result = run(checkouts, args.right, args.k, args.rounds, args.searches, args.repeated)
    for row in result["tables"][0]["rows"]:
        print(row)
    print("after / before (later searches):", result["after / before, later searches"])
    print(result["results compared (the last round's)"])
    print(f"wrote {write_result(result, args.out_name or f'lexical_search_{args.right}')}")


if __name__ == "__main__":
    main()

"""Building the char-ngram index's TF-IDF rows: scikit-learn's ``TfidfVectorizer`` against ltengine's NumPy one.

The lexical stage's index is, per analyzer part, the TF-IDF rows of the right side's keys (character 1-3-grams).
:class:`ltengine_plugins._char_ngrams.NgramTfidfVectorizer` computes what scikit-learn's ``TfidfVectorizer``
computes (the retriever used scikit-learn's until 2026-12-03); this times both, side by side in one process, on
the keys the ``auto`` analyzer builds for ``evals.scale``'s GeoNames right side (romanised keys, ``char_wb``;
folded raw keys, ``char_wb``), and checks that the rows, vocabulary and IDF are identical:

* ``fit_transform`` on the right keys, and ``transform`` of the 10,000 left keys, best and median of
  ``--repeats`` alternating runs (wall and CPU seconds);
* importing ``sklearn.feature_extraction.text`` in a fresh interpreter (the NumPy vectorizer does not), the
  median of ``--repeats`` processes.

Run::

    python -m evals.lexical_build                   # 100,000 right rows
    python -m evals.lexical_build --right 1000000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from evals.common import machine, write_result

IMPORT = "import time, numpy, scipy.sparse, pandas; t = time.perf_counter(); " \
         "import sklearn.feature_extraction.text; print(time.perf_counter() - t)"


def same_rows(a: Any, b: Any) -> bool:
    return (type(a) is type(b) and a.shape == b.shape
            and all(np.array_equal(getattr(a, f), getattr(b, f)) and getattr(a, f).dtype == getattr(b, f).dtype
                    for f in ("indptr", "indices", "data")))


def timed(work: Any) -> tuple[float, float, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    out = work()
    return time.perf_counter() - start, time.process_time() - cpu, out


def run(n_right: int, repeats: int) -> dict[str, Any]:
    from ltengine_plugins._char_ngrams import NgramTfidfVectorizer
    from ltengine_plugins.lexical_retriever import CharNgramRetriever
    from sklearn.feature_extraction.text import TfidfVectorizer

    from evals.scale import frames
    from ltengine.lexical.names import raw_key

    left, right = frames(n_right)
    retriever = CharNgramRetriever()
    parts = {"romanised": (retriever.keys(list(right["name"])), retriever.keys(list(left["name"]))),
             "raw": ([raw_key(t) for t in right["name"]], [raw_key(t) for t in left["name"]])}
    options = {"analyzer": "char_wb", "ngram_range": (1, 3), "sublinear_tf": True, "dtype": np.float32}
    systems = {"scikit-learn TfidfVectorizer": lambda: TfidfVectorizer(**options, lowercase=False),
               "ltengine NgramTfidfVectorizer": lambda: NgramTfidfVectorizer(**options)}
    rows, identical = [], {}
    for part, (right_keys, left_keys) in parts.items():
        runs: dict[str, dict[str, list[float]]] = {name: {"fit": [], "fit_cpu": [], "transform": []} for name in systems}
        outputs: dict[str, Any] = {}
        for round_ in range(repeats):
            order = list(systems) if round_ % 2 == 0 else list(systems)[::-1]  # alternate who goes first
            for name in order:
                vectorizer = systems[name]()
                wall, cpu, fitted = timed(lambda v=vectorizer, keys=right_keys: v.fit_transform(keys))
                runs[name]["fit"].append(wall)
                runs[name]["fit_cpu"].append(cpu)
                wall, _, queried = timed(lambda v=vectorizer, keys=left_keys: v.transform(keys))
                runs[name]["transform"].append(wall)
                outputs[name] = (fitted, queried, vectorizer)
        (a_rows, a_query, a), (b_rows, b_query, b) = outputs.values()
        identical[part] = (same_rows(a_rows, b_rows) and same_rows(a_query, b_query)
                           and list(a.vocabulary_.items()) == list(b.vocabulary_.items())
                           and np.array_equal(a.idf_, b.idf_))
        base = statistics.median(runs["scikit-learn TfidfVectorizer"]["fit"])
        for name, timing in runs.items():
            rows.append([part, name, round(min(timing["fit"]), 3), round(statistics.median(timing["fit"]), 3),
                         round(statistics.median(timing["fit_cpu"]), 3), round(base / statistics.median(timing["fit"]), 2),
                         round(statistics.median(timing["transform"]), 3), len(right_keys),
                         sum(map(len, right_keys))])
    imports = [float(subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True,
                                    check=True).stdout) for _ in range(repeats)]
    return {
        "benchmark": "lexical_build",
        "title": f"char-ngram TF-IDF rows of {n_right:,} GeoNames keys: scikit-learn vs NumPy",
        "suite": "custom",
        "command": f"python -m evals.lexical_build --right {n_right} --repeats {repeats}",
        "tables": [{"title": "fit_transform on the right keys, transform of the 10,000 left keys (seconds)",
                    "columns": ["part", "vectorizer", "fit best s", "fit median s", "fit CPU s (median)",
                                "speed-up (median)", "transform median s", "texts", "characters"],
                    "rows": rows},
                   {"title": "importing sklearn.feature_extraction.text in a fresh interpreter",
                    "columns": ["median s", "min s", "max s"],
                    "rows": [[round(statistics.median(imports), 3), round(min(imports), 3), round(max(imports), 3)]]}],
        "identical": identical,
        "notes": [f"{repeats} rounds, the two vectorizers alternating which runs first",
                  ("identical: rows (indptr, indices, data and their dtypes), vocabulary dict (items and order) and "
                   "IDF equal, for both the fitted rows and the left keys' rows")],
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="char-ngram TF-IDF: scikit-learn vs NumPy")
    parser.add_argument("--right", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    result = run(args.right, args.repeats)
    for table in result["tables"]:
        for row in table["rows"]:
            print(row)
    print("identical:", result["identical"])
    name = "lexical_build" if args.right == 100_000 else f"lexical_build_{args.right}"
    print(f"wrote {write_result(result, name)}")


if __name__ == "__main__":
    main()

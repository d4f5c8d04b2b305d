"""Encode the same names with ltengine's sentence-transformers encoder at several batch sizes, interleaved.

Evidence for the encoder's default ``batch_size`` (plugins/st_encoder.py)::

    .venv/bin/python evals/peers/st_batch_sweep.py --texts left.csv right.csv --column name \
        --sizes 32 64 128 256 --reps 3

Each repetition encodes every text once per batch size (order reversed every other repetition, so
drifting machine load hits every size), model loaded and warm, no cache.  Prints JSON: per batch
size the wall and CPU seconds of each repetition, and names/s of the median.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import statistics
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", nargs="+", required=True, help="CSV files whose --column is encoded")
    ap.add_argument("--column", default="name")
    ap.add_argument("--limit", type=int, default=None, help="first N unique texts only")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    args = ap.parse_args(argv)

    import pandas as pd

    import ltengine as lt
    from ltengine.engine.encoding import resolve_encoder

    texts = list(dict.fromkeys(t for f in args.texts for t in pd.read_csv(f, dtype=str, keep_default_na=False)[args.column] if t))
    texts = texts[: args.limit] if args.limit else texts
    host = lt.get_host()
    encoders = {b: resolve_encoder(host.registry, lt.LinkConfig(model=args.model, encoder_options={"batch_size": b}))
                for b in args.sizes}
    encoders[args.sizes[0]].encode(texts[:64], role="document")  # load and warm up
    runs: dict[int, list[tuple[float, float]]] = {b: [] for b in args.sizes}
    for rep in range(args.reps):
        for b in args.sizes if rep % 2 == 0 else args.sizes[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            encoders[b].encode(texts, role="document")
            runs[b].append((round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)))
    out = {
        "texts": len(texts),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "runs_wall_cpu": runs,
        "names_per_s_median": {b: round(len(texts) / statistics.median(w for w, _ in r), 1) for b, r in runs.items()},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

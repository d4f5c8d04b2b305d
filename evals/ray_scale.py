"""The same link with the local executor and with ``executor="ray"`` on this machine: Ray's overhead, and
scaling with 1 and 2 workers (encoding actors = index shards = workers).

Data: :func:`evals.scale.frames` (GeoNames names; right = N name records, left = held-out alternate names
of cities that keep other names on the right).  Each run: ``lt.merge(left, right, on="name",
mode="semantic", cache=False)`` (usem3 + FAISS ``auto``, no embedding cache, so every run encodes
everything), the model load included (the local run loads it once in this process; each Ray
encoding actor loads it once).  One local Ray (``num_cpus=2``) serves the Ray runs.

Measured per run: wall seconds, CPU seconds of this process and of all its descendants (Ray's
raylet, GCS and workers; sampled every 0.25 s, so a worker's last 0.25 s may be missed), peak RSS of
this process and of the whole process tree, and their peak PSS (proportional set size: pages shared between
processes, such as Ray's object store, counted once; at the tree's PSS peak, its split by kind of process
and when it came), top-1 equal to the local run (and where it differs
beyond ties, whether its cosine is higher or lower than the local top-1's), top-1 "same place", and
from the run report the per-shard costs (encode seconds per role, index build and search seconds
per shard), which the README's 10M x 10M projection is computed from.

The machine is shared (2 cores, other jobs running): wall times are inflated by their load; the
load average is recorded before and after each run.

Run::

    python -m evals.ray_scale --suite quick          # 20,000 right x 5,000 left
    python -m evals.ray_scale --sizes 100000 10000   # right rows, left rows
    python -m evals.ray_scale --sizes 1000000 1000000 --workers --out-name link_1m   # local only
    python -m evals.ray_scale --sizes 200000 50000 --workers --local-chunk 1024      # local against itself
    python -m evals.ray_scale --sizes 1000000 1000000 --workers 1 --skip-local   # Ray alone: its own peak memory
    python -m evals.ray_scale --batch-rounding 5000      # usem3's vectors, batch by batch

Writes ``evals/results/ray_scale.json``.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

import numpy as np

from evals.common import write_result

SUITES = {"quick": (20_000, 5_000), "full": (100_000, 10_000)}


def proportional_mib(pid: int) -> float:
    """The process's proportional set size (PSS) in MiB: its private pages plus its share of pages mapped by
    several processes (Ray's shared-memory object store), so the sum over a process tree counts each page once.
    0 where /proc/<pid>/smaps_rollup cannot be read (not Linux, or the process ended)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def process_kind(name: str) -> str:
    """What a process of the tree is, from its name: a shard or encoding actor, or one of Ray's daemons."""
    if "_Shard" in name:
        return "shard actors"
    if "MapWorker" in name or "EncodeChunks" in name:
        return "encoding actors"
    return "Ray daemons and idle workers"


class TreeMonitor:
    """CPU seconds and peak RSS of this process and its descendants while the block runs."""

    def __init__(self, interval: float = 0.25) -> None:
        import psutil

        self.root = psutil.Process()
        self.interval = interval
        self.cpu: dict[int, float] = {}
        self.base: dict[int, float] = {}
        self.peak_tree_mib = self.peak_tree_pss_mib = 0.0
        self.peak_self_mib = self.peak_self_pss_mib = 0.0
        #: at the tree's PSS peak: PSS per kind of process (driver, shard, encoding actor, Ray's daemons) and when.
        self.peak_parts: dict[str, float] = {}
        self.peak_at_s = 0.0
        self.started = time.perf_counter()
        self.stop = threading.Event()

    def _sample(self) -> None:
        import psutil

        tree_rss = tree_pss = 0.0
        parts: dict[str, float] = {}
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                rss = proc.memory_info().rss / 2**20
                kind = "driver" if proc.pid == self.root.pid else process_kind(proc.name())
            except psutil.Error:  # the process ended between listing and reading: its last sample stays
                times, rss = None, 0.0
            if times is None:
                continue
            self.cpu[proc.pid] = times.user + times.system
            pss = proportional_mib(proc.pid)
            tree_rss += rss
            tree_pss += pss
            parts[kind] = parts.get(kind, 0.0) + pss
            if proc.pid == self.root.pid:
                self.peak_self_mib = max(self.peak_self_mib, rss)
                self.peak_self_pss_mib = max(self.peak_self_pss_mib, pss)
        self.peak_tree_mib = max(self.peak_tree_mib, tree_rss)
        if tree_pss > self.peak_tree_pss_mib:
            self.peak_tree_pss_mib = tree_pss
            self.peak_parts = {kind: round(mib, 1) for kind, mib in sorted(parts.items())}
            self.peak_at_s = round(time.perf_counter() - self.started, 1)

    def __enter__(self) -> TreeMonitor:  # noqa: PYI034
        self._sample()
        self.base = dict(self.cpu)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()

    @property
    def cpu_s(self) -> float:
        return sum(value - self.base.get(pid, 0.0) for pid, value in self.cpu.items())


def measure(name: str, left: Any, right: Any, options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    import ltengine as lt

    load_before = os.getloadavg()[0]
    process_start = time.process_time()
    start = time.perf_counter()
    with TreeMonitor() as monitor:
        out = lt.merge(left, right, on="name", mode="semantic", cache=False, progress=False, **options)
    wall = time.perf_counter() - start
    report = out.attrs["ltengine"]["report"]
    row = {"run": name, "wall_s": round(wall, 2), "process_cpu_s": round(time.process_time() - process_start, 2),
           "tree_cpu_s": round(monitor.cpu_s, 2), "peak_rss_self_mib": round(monitor.peak_self_mib, 1),
           "peak_rss_tree_mib": round(monitor.peak_tree_mib, 1), "peak_pss_self_mib": round(monitor.peak_self_pss_mib, 1),
           "peak_pss_tree_mib": round(monitor.peak_tree_pss_mib, 1), "peak_pss_tree_parts_mib": monitor.peak_parts,
           "peak_pss_tree_at_s": monitor.peak_at_s, "load_1m_before": round(load_before, 2),
           "load_1m_after": round(os.getloadavg()[0], 2), "index": report.get("index"),
           "timings": {k: round(v, 3) for k, v in out.attrs["ltengine"]["timings"].items()}}
    if "execution" in report:
        execution = report["execution"]
        row["encode_actors"] = len(execution["encode_actors"])
        row["encoding"] = {role: {k: v for k, v in e.items() if k != "actors"}
                           for role, e in execution["encoding"].items()}
        row["shards"] = [{k: v for k, v in s.items() if k not in ("actor", "node")} for s in execution["shards"]]
    return row, out


def overlapping_frames(n_right: int, n_left: int, seed: int = 0) -> tuple[Any, Any]:
    """(left, right) when GeoNames cannot give ``n_left`` held-out names beside ``n_right`` (it has 1.2M name
    records): right = the first ``n_right`` records, left = ``n_left`` records sampled from all of them, so
    left names may also be right rows (the search does the same work; top-1 quality is not meaningful)."""
    from evals.datasets import geonames_names

    task = geonames_names(max_rows=max(n_right, n_left))
    records = task.records.assign(city=task.gold_cluster.to_numpy())
    cols = ["id", "name", "country", "city"]
    left = records.sample(n=n_left, random_state=seed)[cols].reset_index(drop=True)
    return left, records.iloc[:n_right][cols].reset_index(drop=True)


def run(n_right: int, n_left: int, workers: tuple[int, ...] = (1, 2), suite: str = "custom",
        local_chunk: int | None = None, skip_local: bool = False) -> dict[str, Any]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from evals.scale import frames

    try:
        left, right = frames(n_right, n_left)
        overlap = False
    except ValueError:  # not enough held-out names (1M x 1M)
        left, right = overlapping_frames(n_right, n_left)
        overlap = True
    rows = []
    gold = left["city"].to_numpy()
    local_row, local = ({"wall_s": None, "tree_cpu_s": None}, None) if skip_local else measure("local", left, right, {})
    if not skip_local:
        rows.append(local_row)

    def quality(out: Any) -> dict[str, float]:
        if local is None:  # --skip-local: nothing to compare with
            return {"top1_same_place": round(float((out["city_y"].to_numpy() == gold).mean()), 4)}
        same = out["id_y"].to_numpy() == local["id_y"].to_numpy()
        # a tie: another right row with the same top score (GeoNames repeats names, in variants that encode
        # alike, across cities); FAISS orders equal scores by its own blocking, which differs by thread count
        tied = np.isclose(out["score"].to_numpy(), local["score"].to_numpy(), atol=1e-5)
        # beyond ties, the side whose top-1 has the higher cosine is the nearer to exact search (the exact top-1
        # has the highest cosine): a sharded run that differs from an approximate local one is not wrong for that
        diff = out["score"].to_numpy() - local["score"].to_numpy()
        differs = ~same & ~tied
        return {"top1_equal_local": round(float(same.mean()), 5),
                "top1_differs_higher_score": round(float((differs & (diff > 0)).mean()), 5),
                "top1_differs_lower_score": round(float((differs & (diff < 0)).mean()), 5),
                "top1_equal_or_tied_local": round(float((same | tied).mean()), 5),
                "max_score_diff_local": float(np.abs(out["score"].to_numpy() - local["score"].to_numpy()).max()),
                "top1_same_place": round(float((out["city_y"].to_numpy() == gold).mean()), 4)}

    if local is not None:
        local_row.update(quality(local))
    if local_chunk:  # the local executor against itself, the encoder fed other batches: the floor of agreement
        row, out = measure(f"local, encode_chunk_size={local_chunk}", left, right, {"encode_chunk_size": local_chunk})
        row.update(quality(out))
        row["overhead_vs_local"] = round(row["wall_s"] / local_row["wall_s"] - 1, 3)
        rows.append(row)
    if workers:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    for count in workers:
        options = {"executor": "ray", "executor_options": {"num_cpus": 2, "encode_actors": count, "shards": count,
                                                           }}
        row, out = measure(f"ray, {count} worker{'s' if count > 1 else ''}", left, right, options)
        row.update(quality(out))
        if local is not None:
            row["overhead_vs_local"] = round(row["wall_s"] / local_row["wall_s"] - 1, 3)
            row["cpu_overhead_vs_local"] = round(row["tree_cpu_s"] / max(local_row["tree_cpu_s"], 1e-9) - 1, 3)
        rows.append(row)
    if workers:
        ray.shutdown()
    columns = ["run", "wall s", "CPU s (tree)", "CPU s (this process)", "wall overhead vs local",
               "peak RSS tree MiB", "peak PSS tree MiB", "peak PSS this process MiB", "top-1 = local",
               "top-1 = local or tied", "differs: higher cosine", "differs: lower cosine", "top-1 same place",
               "load 1m"]
    table = [[r["run"], r["wall_s"], r["tree_cpu_s"], r["process_cpu_s"], r.get("overhead_vs_local", "–"),
              r["peak_rss_tree_mib"], r["peak_pss_tree_mib"], r["peak_pss_self_mib"], r.get("top1_equal_local", "–"),
              r.get("top1_equal_or_tied_local", "–"), r.get("top1_differs_higher_score", "–"),
              r.get("top1_differs_lower_score", "–"),
              r["top1_same_place"], f"{r['load_1m_before']} -> {r['load_1m_after']}"] for r in rows]
    return {
        "benchmark": "ray_scale", "suite": suite,
        "title": f"lt.merge local vs executor='ray' ({n_right:,} right x {n_left:,} left GeoNames names, usem3, "
                 "mode='semantic', no cache)",
        "command": f"python -m evals.ray_scale --sizes {n_right} {n_left} --workers {' '.join(map(str, workers))}"
                   + (f" --local-chunk {local_chunk}" if local_chunk else "") + (" --skip-local" if skip_local else ""),
        "left_names_may_be_right_rows": overlap,
        "tables": [{"title": "local vs Ray (1 and 2 workers) on this 2-core machine", "columns": columns,
                    "rows": table}],
        "notes": [("2 CPU cores shared with other jobs: wall times are inflated by their load (load average "
                   "before -> after each run); CPU s (tree) counts this process and every descendant (Ray's "
                   "raylet, GCS and workers), sampled every 0.25 s"),
                  ("peak RSS tree sums each process's resident pages, so pages shared by several processes (Ray's "
                   "shared-memory object store, mapped by the raylet, the driver and the workers) count once per "
                   "process; peak PSS tree (proportional set size, /proc/<pid>/smaps_rollup) counts each page once"),
                  ("differs: higher / lower cosine: share of rows whose top-1 differs from the local run's beyond "
                   "ties, with a higher / lower cosine than the local top-1 (the exact top-1 has the highest)"),
                  "1 and 2 workers share the same 2 cores: more workers cannot run faster than the cores allow"],
        "n_right": n_right, "n_left": n_left, "rows": rows,
    }


def batch_rounding(n: int = 5000) -> dict[str, Any]:
    """How much usem3's vectors depend on the batch a text is encoded in: the distinct right names of the
    GeoNames task encoded in first-seen order in batches of 1,024 (as Ray Data feeds an encoding actor) and
    sorted in chunks of 2,048 (as the local executor does); the largest difference and the share of rows that
    differ at all."""
    import ltengine as lt
    from evals.datasets import geonames_link_task

    texts = list(dict.fromkeys(geonames_link_task(n).right["name"]))
    encoder = lt.get_host().registry.get("encoder", "usem3").create()
    ray_like = np.concatenate([encoder.encode(texts[i : i + 1024], role="document")
                               for i in range(0, len(texts), 1024)])
    ordered = sorted(texts)
    local_like = np.concatenate([encoder.encode(ordered[i : i + 2048], role="document")
                                 for i in range(0, len(ordered), 2048)])
    position = {text: row for row, text in enumerate(ordered)}
    diff = np.abs(ray_like - local_like[[position[text] for text in texts]])
    largest, share = float(diff.max()), round(float((diff.max(axis=1) > 0).mean()), 4)
    return {"benchmark": "encoder_batch_rounding", "command": f"python -m evals.ray_scale --batch-rounding {n}",
            "title": "usem3 vectors of the same texts encoded in other batches (Ray-like vs local-like)",
            "tables": [{"title": "difference between the two encodings", "columns":
                        ["texts", "largest absolute difference", "share of rows that differ"],
                        "rows": [[len(texts), largest, share]]}],
            "texts": len(texts), "max_abs_diff": largest, "share_of_rows_differing": share}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="quick")
    parser.add_argument("--sizes", type=int, nargs=2, metavar=("RIGHT", "LEFT"))
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                        help="Ray worker counts to run after the local run (none: the local run only)")
    parser.add_argument("--out-name", default="ray_scale", help="result file name (evals/results/<name>.json)")
    parser.add_argument("--local-chunk", type=int, help="also run the local executor again with this "
                        "encode_chunk_size (the encoder sees other batches; float rounding differs in the last bits)")
    parser.add_argument("--skip-local", action="store_true", help="no local run: the Ray runs alone, each peak "
                        "measured in a process that ran nothing else (no comparison with local)")
    parser.add_argument("--batch-rounding", type=int, metavar="N", help="only measure how usem3's vectors depend on "
                        "the batch (N GeoNames names; writes evals/results/encoder_batch_rounding.json)")
    args = parser.parse_args(argv)
    if args.batch_rounding:
        print(f"wrote {write_result(batch_rounding(args.batch_rounding), 'encoder_batch_rounding')}")
        return
    n_right, n_left = args.sizes or SUITES[args.suite]
    start = time.perf_counter()
    result = run(n_right, n_left, tuple(args.workers), suite="custom" if args.sizes else args.suite,
                 local_chunk=args.local_chunk, skip_local=args.skip_local)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(f"wrote {write_result(result, args.out_name)}")
    print(np.array(result["tables"][0]["rows"], dtype=object))


if __name__ == "__main__":
    main()

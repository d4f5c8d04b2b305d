"""Which processes use the CPU, sampled: every ``--interval`` seconds, each process's CPU over the interval (in % of
one core), for those above 3 %, as tab-separated lines ``seconds  pid  percent  command``; then, with
``--summary``, the lines of a finished sample summed per window and per kind of process (Ray's encoding actors,
shard actors, the driver, Ray's daemons and idle workers).

Run beside a benchmark, stop it with Ctrl-C (or ``kill``)::

    python -m evals.cpu_sample --out /tmp/cpu.tsv &
    python -m evals.ray_scale --sizes 200000 50000 --workers 1 --out-name ...
    python -m evals.cpu_sample --summary /tmp/cpu.tsv --window 20

This is how the one busy encoding actor of a 1-worker Ray run was seen (README, "Scale out with Ray").
"""

from __future__ import annotations

import argparse
import collections
import time

from evals.ray_scale import process_kind


def sample(out: str, interval: float) -> None:
    import psutil

    previous: dict[int, float] = {}
    start = time.time()
    with open(out, "w", encoding="utf-8") as fh:
        while True:
            now, current, names = time.time(), {}, {}
            for proc in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
                times = proc.info["cpu_times"]
                if times is None:
                    continue
                current[proc.pid] = times.user + times.system
                names[proc.pid] = " ".join(proc.info["cmdline"] or [proc.info["name"] or "?"])[:60]
            for pid, used in current.items():
                percent = (used - previous[pid]) / interval * 100 if pid in previous else 0.0
                if percent > 3:
                    fh.write(f"{now - start:.0f}\t{pid}\t{percent:.0f}\t{names[pid]}\n")
            fh.flush()
            previous = current
            time.sleep(interval)


def kind(command: str) -> str:
    """The driver (an ``evals`` run), a kind of Ray process (:func:`evals.ray_scale.process_kind`), or the command."""
    if "evals" in command:
        return "driver"
    return process_kind(command) if "ray" in command else command[:25]


def summary(path: str, window: int, interval: float) -> None:
    windows: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            seconds, _, percent, command = line.rstrip("\n").split("\t", 3)
            windows[int(seconds) // window * window][kind(command)] += float(percent) * interval / window
    for start in sorted(windows):
        parts = ", ".join(f"{name} {share:.0f} %" for name, share in windows[start].most_common(4))
        print(f"{start:>6} s  {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="sample until stopped, writing here")
    parser.add_argument("--summary", help="summarise a finished sample")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--window", type=int, default=10)
    args = parser.parse_args()
    if args.summary:
        summary(args.summary, args.window, args.interval)
    elif args.out:
        sample(args.out, args.interval)
    else:
        parser.error("give --out (to sample) or --summary (to read a sample)")


if __name__ == "__main__":
    main()

"""The benchmark runner: ``python -m evals run --suite quick|full [--only NAME ...] [--out DIR]``.

Each registered benchmark module (see :data:`BENCHMARKS`) runs in its own Python process through
its ``run(suite)`` (the contract of :mod:`evals.common`), so a crash, a timeout or a plugin it
registers cannot affect the others.  The child writes ``<out>/<name>.json`` with its wall time and
peak RSS added; the runner records every benchmark's status (ok, failed, timeout, skipped) in
``<out>/_suite.json`` and then rebuilds the report (:mod:`evals.report`).  A benchmark that fails
leaves its previous results file alone; the report marks it.
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import importlib
import importlib.util
import json
import os
import resource
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.benchmarks import BENCHMARKS, FULL_ONLY, ROOT, SUMMARY, TIMEOUTS, module_name, short_name
from evals.common import RESULTS, SUITES, machine, write_result

#: Exit status of a child whose module exists but has no ``run``.
_NO_RUN = 3
_TAIL_LINES = 25


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name(name)) is not None
    except ModuleNotFoundError:  # parent package missing
        return False


# -- the child: one benchmark in this process ------------------------------------------------------
def run_one(name: str, suite: str, out: Path) -> int:
    """Import ``name``, call ``run(suite)``, write ``<out>/<short name>.json``; return an exit status."""
    module = importlib.import_module(module_name(name))
    run = getattr(module, "run", None)
    if not callable(run):
        print(f"{module.__name__} has no run(suite) function (see evals/common.py)", file=sys.stderr)
        return _NO_RUN
    load_before = machine().get("load_avg_1m")
    start = time.perf_counter()
    result = run(suite)
    seconds = time.perf_counter() - start
    if not isinstance(result, dict):
        raise TypeError(f"{module.__name__}.run() returned {type(result).__name__}, not a dict (see evals/common.py)")
    result.setdefault("benchmark", short_name(name))
    result.setdefault("suite", suite)
    result.setdefault("seconds", round(seconds, 1))
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["generated_at"] = _now()
    info = machine()
    if load_before is not None:
        info["load_avg_1m_at_start"] = load_before
    result["machine"] = info
    path = write_result(result, short_name(name), out)
    print(f"wrote {path}")
    return 0


# -- the parent: many benchmarks, one process each ---------------------------------------------------
def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # the repo root and this process's own additions to sys.path, but not the interpreter's
    # stdlib/site-packages: the child finds those itself, and on PYTHONPATH they would leak into
    # peers' interpreters (LinkTransformer's venv: wandb/protobuf import errors)
    system = [Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}]
    added = [p for p in sys.path if p and Path(p).is_dir()
             and not any(Path(p).resolve().is_relative_to(root) for root in system)]
    paths = [str(ROOT), *added, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _spawn(name: str, suite: str, out: Path, timeout: float | None, echo: bool) -> tuple[int | None, list[str]]:
    """Run one benchmark in a child process; (exit status or None on timeout, last output lines)."""
    cmd = [sys.executable, "-m", "evals.suite", "_one", name, "--suite", suite, "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", bufsize=1)
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if echo:
                print(f"  [{short_name(name)}] {line}", end="", flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        status: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        status = None
    reader.join(timeout=5)
    return status, list(tail)


def load_summary(out: Path) -> dict[str, Any]:
    path = out / SUMMARY
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    return {"benchmarks": {}}


def run_suite(
    suite: str = "quick",
    only: Sequence[str] | None = None,
    out: Path = RESULTS,
    *,
    benchmarks: Sequence[str] = BENCHMARKS,
    timeout: float | None = -1.0,
    report: bool = True,
    echo: bool = True,
) -> dict[str, Any]:
    """Run ``benchmarks`` (or the ``only`` subset, in registry order) and record each one's status.

    ``timeout``: seconds per benchmark (default: :data:`TIMEOUTS` of the suite; None = no limit).
    Returns the summary written to ``<out>/_suite.json``; builds the report unless ``report=False``.
    """
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {SUITES}, not {suite!r}")
    names = list(benchmarks)
    if benchmarks is BENCHMARKS and (suite == "full" or only):
        names += list(FULL_ONLY)
    if only:
        unknown = [n for n in only if n not in names and short_name(n) not in map(short_name, names)]
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {unknown}; registered: {', '.join(map(short_name, names))}")
        wanted = {short_name(n) for n in only}
        names = [n for n in names if short_name(n) in wanted]
    limit = TIMEOUTS[suite] if timeout == -1.0 else timeout
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = load_summary(out)
    summary.setdefault("benchmarks", {})
    started, t0, load_start = _now(), time.perf_counter(), machine().get("load_avg_1m")
    for name in names:
        key = short_name(name)
        entry: dict[str, Any] = {"suite": suite, "finished_at": None}
        if not _module_exists(name):
            entry.update(status="skipped", seconds=None, note=f"module {module_name(name)} does not exist yet")
        else:
            print(f"== {key} ({suite})", flush=True)
            start = time.perf_counter()
            status, tail = _spawn(name, suite, out, limit, echo)
            entry["seconds"] = round(time.perf_counter() - start, 1)
            if status == 0:
                entry["status"] = "ok"
                result = json.loads((out / f"{key}.json").read_text())
                entry["peak_rss_mib"] = result.get("peak_rss_mib")
            elif status == _NO_RUN:
                entry.update(status="skipped", note=f"{module_name(name)} has no run(suite) yet")
            elif status is None:
                entry.update(status="timeout", note=f"killed after {limit:.0f} s", output_tail=tail)
            else:
                entry.update(status="failed", note=_error_line(tail, status), output_tail=tail)
        entry["finished_at"] = _now()
        summary["benchmarks"][key] = entry
        print(f"== {key}: {entry['status']} in {entry.get('seconds') or 0} s" +
              (f" ({entry['note']})" if entry.get("note") else ""), flush=True)
    summary["order"] = [short_name(n) for n in benchmarks]
    record = {"suite": suite, "benchmarks": [short_name(n) for n in names], "started_at": started,
              "seconds": round(time.perf_counter() - t0, 1), "load_avg_1m_at_start": load_start, "machine": machine()}
    summary["last_run"] = record
    if not only:  # the whole suite: its total time is what the README quotes
        summary.setdefault("complete_runs", {})[suite] = record
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(f"suite {suite}: {len(names)} benchmark(s) in {summary['last_run']['seconds']} s", flush=True)
    if report:
        from evals.report import write_report

        path = write_report(out)
        print(f"wrote {path}")
    return summary


def _error_line(tail: list[str], status: int) -> str:
    """The exception line of a child's traceback, else its exit status."""
    for line in reversed(tail):
        text = line.strip()
        if text and not text.startswith(("File ", "^", "~")) and ("Error" in text or "Exception" in text):
            return text[:300]
    return f"exit status {status}"


def main(argv: list[str] | None = None) -> int:
    """``python -m evals.suite _one NAME --suite S --out DIR``: the child entry point."""
    parser = argparse.ArgumentParser(description="run one benchmark (used by python -m evals run)")
    parser.add_argument("cmd", choices=["_one"])
    parser.add_argument("name")
    parser.add_argument("--suite", choices=SUITES, default="quick")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        return run_one(args.name, args.suite, args.out)
    except Exception:  # noqa: BLE001 - the parent records the traceback's last lines
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())

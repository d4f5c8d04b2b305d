"""``python -m evals run --suite quick|full [--only NAME ...] [--out DIR]``, ``python -m evals report``,
``python -m evals readme``, ``python -m evals list``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evals.benchmarks import BENCHMARKS, module_name, short_name
from evals.common import RESULTS, SUITES
from evals.suite import _module_exists, run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals", description="ltengine's benchmarks and their report")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the benchmarks, write results/*.json and the report")
    run.add_argument("--suite", choices=SUITES, default="quick",
                     help="quick: small sizes, under 10 minutes in all on 2 cores; full: the published sizes")
    run.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (see `list`)")
    run.add_argument("--out", type=Path, default=RESULTS, help="results folder (default evals/results)")
    run.add_argument("--timeout", type=float, default=-1.0,
                     help="seconds per benchmark before it is killed (default: 600 for quick, none for full; 0 = none)")
    run.add_argument("--no-report", action="store_true", help="do not rebuild the report")
    rep = sub.add_parser("report", help="rebuild the report from existing results JSON (no rerun)")
    rep.add_argument("--out", type=Path, default=RESULTS, help="results folder (default evals/results)")
    rep.add_argument("--report", type=Path, default=None, help="report path (default evals/REPORT.md)")
    readme = sub.add_parser("readme", help="print the README's benchmark block built from the results")
    readme.add_argument("--out", type=Path, default=RESULTS, help="results folder (default evals/results)")
    sub.add_parser("list", help="list the registered benchmarks")
    args = parser.parse_args(argv)

    if args.cmd == "run":
        timeout = None if args.timeout == 0 else args.timeout
        summary = run_suite(args.suite, args.only, args.out, timeout=timeout, report=not args.no_report)
        ran = [summary["benchmarks"][short_name(n)] for n in summary["last_run"]["benchmarks"]]
        return 1 if any(e["status"] in ("failed", "timeout") for e in ran) else 0
    if args.cmd == "report":
        from evals.report import write_report

        print(f"wrote {write_report(args.out, args.report)}")
        return 0
    if args.cmd == "readme":
        from evals.report import readme_table

        sys.stdout.write(readme_table(args.out))
        return 0
    for name in BENCHMARKS:
        print(f"{short_name(name):28s} {module_name(name)}{'' if _module_exists(name) else '  (not written yet)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build ``evals/REPORT.md`` (and PNG plots) from ``evals/results/*.json``, generically.

Every results file that follows the contract of :mod:`evals.common` becomes a section: its title,
the command that reproduces it, suite, wall time, peak memory, machine load, notes, its tables as
Markdown and its declared plots (matplotlib, Agg backend, imported only here) as PNGs under
``results/plots/``.  ``python -m evals report`` rebuilds the report without rerunning anything;
:func:`readme_table` gives the compact block for the README.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from evals.benchmarks import BENCHMARKS, SUMMARY, short_name
from evals.common import RESULTS

SUITE_COMMAND = "python -m evals run --suite {suite}"


# -- loading ------------------------------------------------------------------------------------------
def load_results(results_dir: Path = RESULTS) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(suite summary, {benchmark name: result}) in report order: registry order, then the rest by name."""
    results_dir = Path(results_dir)
    summary: dict[str, Any] = {"benchmarks": {}}
    if (results_dir / SUMMARY).exists():
        summary = json.loads((results_dir / SUMMARY).read_text())
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("*.json")):
        if path.name.startswith("_"):
            continue
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            data = {"title": path.stem, "notes": [f"unreadable results file: {exc}"]}
        if not isinstance(data, dict):  # older list-shaped results
            data = {"raw": data}
        found[path.stem] = data
    order = list(summary.get("order") or map(short_name, BENCHMARKS))
    names = [n for n in order if n in found] + [n for n in found if n not in order]
    return summary, {n: found[n] for n in names}


# -- formatting ---------------------------------------------------------------------------------------
def fmt(value: Any) -> str:
    """A table cell: thousands separators for big numbers, three decimals for small ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        size = abs(value)
        if size >= 1000:
            return f"{value:,.0f}"
        if size >= 100:
            return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
        if size >= 10:
            return f"{value:.1f}"
        if size >= 1 or value == 0:
            return f"{value:.2f}"
        if size >= 0.01:  # 0.9996 is not 1.000
            return f"{value:.3f}" if round(size, 3) < 1 else f"{value:.4f}"
        return f"{value:.2g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("columns"), list) and isinstance(value.get("rows"), list)


def markdown_table(table: dict[str, Any], max_rows: int | None = None) -> str:
    """A contract table (``columns`` and ``rows``) as a Markdown table."""
    columns = [str(c) for c in table.get("columns", [])]
    rows = list(table.get("rows", []))
    shown = rows if max_rows is None else rows[:max_rows]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    shown = [[row.get(c) for c in columns] if isinstance(row, dict) else row for row in shown]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in shown]
    if len(shown) < len(rows):
        lines.append(f"\n({len(rows) - len(shown)} more rows in the full report)")
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "plot"


def _anchor(title: str) -> str:
    """GitHub's heading anchor for ``title``."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


# -- plots --------------------------------------------------------------------------------------------
def _column(table: dict[str, Any], name: str) -> list[Any]:
    columns = list(table["columns"])
    if name not in columns:
        raise KeyError(f"plot refers to column {name!r}; the table has {columns}")
    i = columns.index(name)
    return [row.get(name) if isinstance(row, dict) else row[i] for row in table["rows"]]


def _series(table: dict[str, Any], plot: dict[str, Any]) -> tuple[list[Any], dict[str, list[Any]]]:
    """x values and {label: y values}; ``group`` pivots a long table (one series per group value)."""
    ys = [plot["y"]] if isinstance(plot["y"], str) else list(plot["y"])
    x_all = _column(table, plot["x"])
    if not plot.get("group"):
        return x_all, {y: _column(table, y) for y in ys}
    groups = _column(table, plot["group"])
    values = _column(table, ys[0])
    xs = list(dict.fromkeys(x_all))
    series: dict[str, list[Any]] = {}
    for g in dict.fromkeys(groups):
        lookup = {x: v for x, gg, v in zip(x_all, groups, values) if gg == g}
        series[str(g)] = [lookup.get(x) for x in xs]
    return xs, series


def _human(value: float, _pos: object = None) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _readable_log_ticks(axis: object) -> None:
    """Log-axis labels as 2k, 10k, 1M instead of 2×10³; minor labels only on short ranges."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(_human))  # type: ignore[attr-defined]
    low, high = sorted(axis.get_view_interval())  # type: ignore[attr-defined]
    short = low > 0 and high / low < 100
    def minor(value: float, _pos: object = None) -> str:  # label 2x and 5x only, so labels don't collide
        lead = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
        return _human(value) if lead in (2, 5) else ""

    axis.set_minor_formatter(FuncFormatter(minor) if short else NullFormatter())  # type: ignore[attr-defined]


def render_plot(result: dict[str, Any], plot: dict[str, Any], path: Path) -> Path:
    """Draw one declared plot (``kind`` bar or line) to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = result["tables"][int(plot.get("table", 0))]
    xs, series = _series(table, plot)
    num = lambda v: float("nan") if v is None else float(v)
    width = max(6.0, 0.45 * len(xs) * max(1, len(series)) ** 0.5) + (2.5 if len(series) > 1 else 0.0)
    fig, ax = plt.subplots(figsize=(width, 4.5), dpi=110)
    try:
        if plot.get("kind", "bar") == "bar":
            width = 0.8 / max(1, len(series))
            for i, (label, ys) in enumerate(series.items()):
                pos = [j + (i - (len(series) - 1) / 2) * width for j in range(len(xs))]
                ax.bar(pos, [num(v) for v in ys], width=width, label=label)
            long = len(xs) > 10 or max((len(str(x)) for x in xs), default=0) > 8
            ax.set_xticks(range(len(xs)), [str(x) for x in xs], rotation=30 if long else 0, ha="right" if long else "center")
        elif plot["kind"] == "line":
            for label, ys in series.items():
                pts = [(float(x), num(y)) for x, y in zip(xs, ys) if y is not None]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        else:
            raise ValueError(f"unknown plot kind {plot['kind']!r}: use 'bar' or 'line'")
        for axis, key in ((ax.xaxis, "logx"), (ax.yaxis, "logy")):
            if plot.get(key):
                (ax.set_xscale if key == "logx" else ax.set_yscale)("log")
                _readable_log_ticks(axis)
        if plot.get("ylim"):
            ax.set_ylim(*plot["ylim"])
        ax.set_xlabel(plot.get("xlabel", plot["x"]))
        ax.set_ylabel(plot.get("ylabel", ", ".join(series) if len(series) == 1 else "value"))
        ax.set_title(plot.get("title", result.get("title", "")), fontsize=10)
        if len(series) > 1:  # outside the axes: bars near 1.0 stay visible
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


# -- the report ---------------------------------------------------------------------------------------
def _default_report_path(results_dir: Path) -> Path:
    return RESULTS.parent / "REPORT.md" if Path(results_dir).resolve() == RESULTS.resolve() else results_dir / "REPORT.md"


def _run_line(result: dict[str, Any]) -> str:
    bits = [f"suite `{result['suite']}`" if result.get("suite") else None,
            f"{fmt(float(result['seconds']))} s" if result.get("seconds") is not None else None,
            f"peak RSS {fmt(float(result['peak_rss_mib']))} MiB" if result.get("peak_rss_mib") else None]
    m = result.get("machine") or {}
    if not isinstance(m, dict):
        bits.append(str(m))
    elif m:
        load = m.get("load_avg_1m")
        start = m.get("load_avg_1m_at_start")
        load_text = f"load {start} → {load}" if start is not None else (f"load {load}" if load is not None else None)
        bits += [f"{m.get('cpus')} CPUs" if m.get("cpus") else None, load_text]
    if result.get("generated_at"):
        bits.append(result["generated_at"].replace("T", " "))
    return " · ".join(b for b in bits if b)


def _section(name: str, result: dict[str, Any], entry: dict[str, Any] | None, plots_dir: Path,
             base: Path) -> list[str]:
    title = result.get("title") or name
    out = [f"## {title}", ""]
    if result.get("command"):
        out += [f"`{result['command']}`", ""]
    line = _run_line(result)
    if line:
        out += [line, ""]
    if entry and entry.get("status") not in (None, "ok"):
        out += [(f"> **Last run {entry['status']}** ({entry.get('finished_at', '')}): {entry.get('note', '')}. "
                "The numbers below are from an earlier run."), ""]
    for note in result.get("notes") or []:
        out.append(f"- {note}")
    if result.get("notes"):
        out.append("")
    tables = result.get("tables") or []
    if not tables:
        out += [f"Results in an older format: see [`{name}.json`]({os.path.relpath(plots_dir.parent / (name + '.json'), base)}).", ""]
    for table in tables:
        if not _is_table(table):
            out += [f"(a table without columns/rows: see `{name}.json`)", ""]
            continue
        if table.get("title"):
            out += [f"**{table['title']}**", ""]
        out += [markdown_table(table), ""]
        if table.get("note"):
            out += [f"_{table['note']}_", ""]
    for i, plot in enumerate(result.get("plots") or []):
        png = plots_dir / f"{name}-{i}-{_slug(plot.get('title', ''))}.png"
        try:
            render_plot(result, plot, png)
        except Exception as exc:  # noqa: BLE001 - a bad plot spec must not lose the report
            out += [f"(plot {i} could not be drawn: {exc})", ""]
            continue
        out += [f"![{plot.get('title', name)}]({os.path.relpath(png, base)})", ""]
    return out


def _run_sentence(record: dict[str, Any]) -> str:
    m = record.get("machine") or {}
    load = m.get("load_avg_1m")
    start = record.get("load_avg_1m_at_start")
    load_text = f", 1-minute load {start} at the start and {load} at the end" if start is not None else ""
    return (f"`{SUITE_COMMAND.format(suite=record.get('suite', 'quick'))}` started "
            f"{str(record.get('started_at', '')).replace('T', ' ')} took {fmt(float(record.get('seconds', 0)))} s "
            f"on {m.get('cpus', '?')} CPUs{load_text} ({m.get('platform', '')}, Python {m.get('python', '')}).")


def build_report(results_dir: Path = RESULTS, report_path: Path | None = None) -> str:
    """The Markdown report of every results file in ``results_dir`` (renders the plots as a side effect)."""
    results_dir = Path(results_dir)
    report_path = Path(report_path) if report_path else _default_report_path(results_dir)
    base = report_path.parent
    plots_dir = results_dir / "plots"
    summary, results = load_results(results_dir)
    entries = summary.get("benchmarks", {})
    last = summary.get("last_run") or {}
    lines = ["# ltengine benchmarks", ""]
    for suite, record in (summary.get("complete_runs") or {}).items():
        lines += [f"Whole {suite} suite: {_run_sentence(record)}", ""]
    if last and last not in (summary.get("complete_runs") or {}).values():
        lines += [f"Last run, {', '.join(last.get('benchmarks', []))} only: {_run_sentence(last)}", ""]
    lines += [("Every section names the command that reproduces it; `python -m evals report` rebuilds this file "
              "from `evals/results/*.json` without rerunning. Timings come from a shared 2-core machine: "
              "compare systems within one section (measured side by side in one run), not across sections."), ""]
    lines += ["| benchmark | status | suite | seconds | peak RSS MiB | note |", "|---|---|---|---|---|---|"]
    names = list(dict.fromkeys([*summary.get("order", []), *results, *entries]))
    for name in names:
        entry, result = entries.get(name), results.get(name)
        if entry is None and result is None:
            continue
        status = (entry or {}).get("status", "standalone run" if result else "not run")
        title = (result or {}).get("title")
        label = f"[{name}](#{_anchor(title)})" if result and title else name
        lines.append("| " + " | ".join([
            label, status, str((entry or result or {}).get("suite", "")),
            fmt((entry or {}).get("seconds", (result or {}).get("seconds"))),
            fmt((entry or {}).get("peak_rss_mib", (result or {}).get("peak_rss_mib"))),
            fmt((entry or {}).get("note", "")),
        ]) + " |")
    lines.append("")
    for name, result in results.items():
        try:
            lines += _section(name, result, entries.get(name), plots_dir, base)
        except Exception as exc:  # noqa: BLE001 - one odd results file must not lose the report
            lines += [f"## {name}", "", (f"(this results file could not be rendered: {type(exc).__name__}: {exc}; "
                      f"see `{name}.json`)"), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(results_dir: Path = RESULTS, report_path: Path | None = None) -> Path:
    """Write :func:`build_report` to ``report_path`` (default ``evals/REPORT.md``); return the path."""
    results_dir = Path(results_dir)
    report_path = Path(report_path) if report_path else _default_report_path(results_dir)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(build_report(results_dir, report_path), encoding="utf-8")
    return report_path


def readme_table(results_dir: Path = RESULTS, max_rows: int = 10, report_link: str = "evals/REPORT.md") -> str:
    """The README's benchmark block: per benchmark its headline table (``readme`` if the result has
    one, else its first table, at most ``max_rows`` rows) and the command that reproduces it."""
    summary, results = load_results(results_dir)
    entries = summary.get("benchmarks", {})
    runs = summary.get("complete_runs") or {}
    last = runs.get("quick") or next(iter(runs.values()), None) or summary.get("last_run") or {}
    m = last.get("machine") or {}
    lines = [(f"Reproduce every number below with `{SUITE_COMMAND.format(suite=last.get('suite', 'quick'))}` "
             f"({fmt(float(last.get('seconds', 0)))} s in all on {m.get('cpus', '?')} shared CPUs); the full "
             f"report with plots and every table is [{report_link}]({report_link})."), ""]
    for name, result in results.items():
        if entries.get(name, {}).get("status", "ok") != "ok":
            continue
        table = result.get("readme") if _is_table(result.get("readme")) else (result.get("tables") or [None])[0]
        if not _is_table(table):
            continue
        title = result.get("title") or name
        caption = f"**{title}**" + (f" — {table['title']}" if table.get("title") else "")
        lines += [f"{caption} (`{result.get('command', f'python -m evals.{name}')}`):", "",
                  markdown_table(table, max_rows), ""]
        if table.get("note"):
            lines += [table["note"], ""]
    return "\n".join(lines).rstrip() + "\n"

"""``ltengine explain``: why one row of a linked file got its match probability.

The calibration travels beside the output as ``<output>.report.json`` (the run report, which
``ltengine link`` writes there), or is given with ``--report``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ltengine.cli.io import report_path


@click.command()
@click.argument("linked_file", type=click.Path(dir_okay=False))
@click.option("--row", type=click.IntRange(min=0), required=True, help="Row of the linked file (0 = first data row).")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), default=None,
              help="Run report JSON with the calibration (default: LINKED_FILE.report.json).")
@click.option("--out", "-o", "chart", type=click.Path(dir_okay=False), default=None,
              help="Also draw the waterfall chart into this image file (.png, .svg, .pdf).")
def explain(linked_file: str, row: int, report_file: str | None, chart: str | None) -> None:
    """Show how each feature moved the match probability of one row of LINKED_FILE (a merged output)."""
    from ltengine.cli.io import read_table
    from ltengine.errors import LTEngineError
    from ltengine.evaluate.explain import explain as explain_row

    report = Path(report_file) if report_file else report_path(linked_file)
    try:
        if not report.is_file():
            what = "--report file" if report_file else "run report"
            raise click.ClickException(
                f"{what} {str(report)!r} not found: it holds the calibration that scored the file; give the run "
                "report (out.attrs['ltengine']['report'] saved as JSON) with --report, or save it as "
                f"{report_path(linked_file).name} beside the file")
        result = explain_row(read_table(linked_file), row, report=report)
        if chart:
            result.plot(chart)
    except LTEngineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(result))
    if result.reported_probability is None:
        click.echo("(the file has no match_probability column to compare with)", err=True)
    if chart:
        click.echo(f"wrote the waterfall chart to {chart}", err=True)

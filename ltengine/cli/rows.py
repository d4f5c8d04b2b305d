"""``ltengine classify`` and ``ltengine transform``: row tasks on one file (see :func:`ltengine.classify_rows`,
:func:`ltengine.transform_rows`).  Wire them into a click group with :func:`add_commands`."""

from __future__ import annotations

import json
from typing import Any

import click

from ltengine.config import split_columns


def _llm_options(api_base: str | None, rows_per_request: int | None, concurrency: int | None) -> dict[str, Any]:
    options = {"api_base": api_base, "batch_size": rows_per_request, "concurrency": concurrency}
    return {key: value for key, value in options.items() if value is not None}


def _common(func: Any) -> Any:
    options = [
        click.argument("infile", metavar="IN", type=click.Path(dir_okay=False)),
        click.option("--on", required=True, help="Column(s) holding each row's text (comma-separated)."),
        click.option("--output-column", default=None, help="Name of the new column (default as LinkTransformer's)."),
        click.option("--api-base", default=None, help="OpenAI-compatible server URL (local models)."),
        click.option("--rows-per-request", type=click.IntRange(min=1), default=None,
                     help="Rows sent to the LLM per request (default 10)."),
        click.option("--concurrency", type=click.IntRange(min=1), default=None, help="LLM requests in flight."),
        click.option("--max-cost", type=float, default=None, help="Stop at this many dollars (rows left: error 'budget')."),
        click.option("--max-calls", type=click.IntRange(min=0), default=None, help="Stop after this many LLM requests."),
        click.option("--dry-run", is_flag=True, help="Estimate LLM requests, tokens and dollars; call nothing."),
        click.option("--no-progress", is_flag=True, help="Hide progress bars."),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the answer/embedding cache."),
        click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
                     help="Output .csv/.tsv/.parquet/.jsonl file (written atomically; never IN unless --force)."),
        click.option("--force", is_flag=True, help="Allow --out to be IN (replaces it)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run(infile: str, out: str, force: bool, work: Any) -> Any:
    from ltengine.cli.io import read_table, write_report, write_table
    from ltengine.cli.output import prepare_output
    from ltengine.errors import LTEngineError

    try:
        prepare_output(out, [infile], force=force)  # fail before any work, not after
        result = work(read_table(infile))
        write_table(result, out)
        write_report(result.attrs.get("ltengine", {}), out)
    except LTEngineError as exc:
        raise click.ClickException(str(exc)) from None
    return result


def _summary(result: Any, column: str, task: str) -> str:
    report = result.attrs.get("ltengine", {}).get(task, {})
    missing = int(result[column].isna().sum())
    parts = [f"{len(result)} rows, {missing} without a value"]
    if "requests" in report:
        parts.append(f"{report['requests']} LLM requests, {report['cache_hits']} cached answers")
        if report.get("cost") is not None:
            parts.append(f"${report['cost']:.4f}")
    return "; ".join(parts)


@click.command()
@_common
@click.option("--model", required=True,
              help="'llm:<litellm model>', a classifier folder (lt.train_clf_model), or an encoder for zero-shot.")
@click.option("--labels", default=None,
              help="Labels: comma-separated names, or a JSON object {name: description}.")
@click.option("--instruction", default=None, help="What to decide, for the LLM (e.g. 'cuisine of the restaurant').")
def classify(infile: str, out: str, force: bool, on: str, output_column: str | None, api_base: str | None,
             rows_per_request: int | None, concurrency: int | None, max_cost: float | None, max_calls: int | None,
             dry_run: bool, no_progress: bool, no_cache: bool, model: str, labels: str | None,
             instruction: str | None) -> None:
    """Write IN with one label per row (column clf_preds_<on>) to --out."""
    from ltengine.rows_api import classify_rows

    parsed: Any = None
    if labels:
        text = labels.strip()
        try:
            parsed = json.loads(text) if text.startswith("{") else split_columns(text)
        except ValueError as exc:
            raise click.BadParameter(f"not a JSON object: {exc}", param_hint="--labels") from None
    columns = split_columns(on)
    result = _run(infile, out, force, lambda df: classify_rows(
        df, on=columns, model=model, labels=parsed, instruction=instruction, output_column=output_column,
        llm_options=_llm_options(api_base, rows_per_request, concurrency), max_cost=max_cost, max_calls=max_calls,
        dry_run=dry_run, progress_bar=False if no_progress else None, cache=not no_cache))
    column = output_column or f"clf_preds_{'-'.join(columns or [])}"
    click.echo(f"{_summary(result, column, 'classify_rows')}; wrote {out}", err=True)


@click.command()
@_common
@click.option("--model", required=True, help="'llm:<litellm model>' (any litellm model; local servers via --api-base).")
@click.option("--instruction", required=True, help="What to do with each row, e.g. 'Fix spelling mistakes'.")
def transform(infile: str, out: str, force: bool, on: str, output_column: str | None, api_base: str | None,
              rows_per_request: int | None, concurrency: int | None, max_cost: float | None, max_calls: int | None,
              dry_run: bool, no_progress: bool, no_cache: bool, model: str, instruction: str) -> None:
    """Write IN with one rewritten value per row (column transformed_<on>) to --out."""
    from ltengine.rows_api import transform_rows

    columns = split_columns(on)
    result = _run(infile, out, force, lambda df: transform_rows(
        df, on=columns, model=model, instruction=instruction, output_column=output_column,
        llm_options=_llm_options(api_base, rows_per_request, concurrency), max_cost=max_cost, max_calls=max_calls,
        dry_run=dry_run, progress_bar=False if no_progress else None, cache=not no_cache))
    column = output_column or f"transformed_{'-'.join(columns or [])}"
    click.echo(f"{_summary(result, column, 'transform_rows')}; wrote {out}", err=True)


def add_commands(cli_group: click.Group) -> None:
    """Add ``classify`` and ``transform`` to ``cli_group``."""
    cli_group.add_command(classify)
    cli_group.add_command(transform)

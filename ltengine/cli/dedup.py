"""``ltengine dedup`` and ``ltengine cluster``: deduplicate or cluster the rows of one file.

Wire them into a click group with :func:`add_commands` (``ltengine.cli`` does it for ``ltengine``).
"""

from __future__ import annotations

from typing import Any

import click

from ltengine.cli.params import ThresholdType
from ltengine.config import split_columns

METHOD_CHOICE = click.Choice(["connected", "average", "hdbscan"])


def _common(func: Any) -> Any:
    options = [
        click.argument("infile", metavar="IN", type=click.Path(dir_okay=False)),
        click.option("--on", required=True, help="Column(s) compared (comma-separated)."),
        click.option("--threshold", type=ThresholdType(), default="auto", show_default=True,
                     help="'auto': rows are duplicates when their match_probability (fitted on this table, "
                          "no labels) is at least 0.5; or a cosine similarity."),
        click.option("--method", type=METHOD_CHOICE, default="connected", show_default=True,
                     help="connected components, average linkage, or HDBSCAN on the kNN graph."),
        click.option("--k", type=click.IntRange(min=1), default=10, show_default=True,
                     help="Neighbours retrieved per row (at least 1)."),
        click.option("--block-on", help="Only compare rows with equal values in these column(s)."),
        click.option("--model", default=None, help="'fast' (default, offline), 'accurate', a model id or path."),
        click.option("--rerank", multiple=True, help="Reranker judging the edges, e.g. 'cross-encoder:<folder>'."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False), help="LinkConfig TOML file."),
        click.option("--no-progress", is_flag=True, help="Hide progress bars."),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the embedding/LLM cache."),
        click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
                     help="Output .csv/.tsv/.parquet/.jsonl file (written atomically; never IN unless --force)."),
        click.option("--force", is_flag=True, help="Allow --out to be IN (replaces it)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _options(on: str, threshold: float | str, method: str, k: int, block_on: str | None, model: str | None,
             rerank: tuple[str, ...], config_path: str | None, no_progress: bool, no_cache: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"on": split_columns(on), "threshold": threshold, "method": method, "k": k,
                               "block_on": split_columns(block_on), "model": model, "config": config_path}
    if rerank:
        options["rerank"] = tuple(rerank)
    if no_progress:
        options["progress"] = False
    if no_cache:
        options["cache"] = False
    return {key: value for key, value in options.items() if value is not None}


def _run(infile: str, out: str, force: bool, work: Any) -> Any:
    from ltengine.cli.io import read_table, write_table
    from ltengine.cli.output import prepare_output
    from ltengine.errors import LTEngineError

    try:
        prepare_output(out, [infile], force=force)  # fail before any work, not after
        df = read_table(infile)
        result = work(df)
        write_table(result, out)
    except LTEngineError as exc:
        raise click.ClickException(str(exc)) from None
    return df, result


@click.command()
@_common
@click.option("--keep", type=click.Choice(["first", "longest"]), default="first", show_default=True,
              help="Which row of each cluster to keep.")
def dedup(infile: str, out: str, force: bool, keep: str, **kwargs: Any) -> None:
    """Write one row per cluster of near-duplicate rows of IN to --out."""
    from ltengine.dedup import dedup_rows

    df, result = _run(infile, out, force, lambda df: dedup_rows(df, keep=keep, **_options(**kwargs)))
    click.echo(f"kept {len(result)} of {len(df)} rows; wrote {out}", err=True)


@click.command()
@_common
def cluster(infile: str, out: str, force: bool, **kwargs: Any) -> None:
    """Write IN with a 'cluster' column (near duplicates share an id) to --out."""
    from ltengine.dedup import cluster_rows

    df, result = _run(infile, out, force, lambda df: cluster_rows(df, **_options(**kwargs)))
    report = result.attrs.get("ltengine", {}).get("report", {})
    click.echo(
        f"{report.get('clusters', 0)} clusters ({report.get('singletons', 0)} singletons) in {len(df)} rows; "
        f"wrote {out}",
        err=True,
    )


def add_commands(cli_group: click.Group) -> None:
    """Add ``dedup`` and ``cluster`` to ``cli_group``."""
    cli_group.add_command(dedup)
    cli_group.add_command(cluster)

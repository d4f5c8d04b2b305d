"""The ``ltengine`` command line.  Plugins add commands through the ``register_commands`` hook."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ltengine._version import __version__
from ltengine.cli.params import ThresholdType
from ltengine.config import split_columns


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ltengine")
def cli() -> None:
    """ltengine: link tables whose keys don't match, with transformer models."""


@cli.command()
@click.argument("left", type=click.Path(dir_okay=False))
@click.argument("right", type=click.Path())
@click.option("--on", help="Column(s) to link on, present in both files (comma-separated).")
@click.option("--left-on", help="Left column(s) (comma-separated).")
@click.option("--right-on", help="Right column(s) (comma-separated).")
@click.option("--k", type=click.IntRange(min=1), default=None,
              help="Candidates per left row, at least 1 (default 1; with --knn: rows per left row, default 5).")
@click.option("--threshold", type=ThresholdType(), default=None,
              help="Minimum score for a match (cosine; in hybrid mode the fused score, 0..1), or 'auto': "
                   "match_probability >= 0.5.")
@click.option("--block-on", help="Only compare rows with equal values in these column(s).")
@click.option("--model", default=None, help="'fast' (default, offline), 'accurate', a model id or path.")
@click.option("--mode", type=click.Choice(["auto", "hybrid", "semantic", "lexical"]), default=None,
              help="Candidates from the encoder (semantic), character n-grams (lexical), or both fused (hybrid); "
                   "auto (default) = both, fused by a model fitted on the run's own candidates (with under 50 left "
                   "rows: hybrid when the two sides use different scripts, else semantic).")
@click.option("--fuser", default=None, help="Hybrid mode: how scores are fused, 'weighted' (default) or 'rrf'.")
@click.option("--one-to-one", is_flag=True, default=None, help="Use each right row at most once.")
@click.option("--keep-unmatched", is_flag=True, default=None, help="Keep left rows without a match.")
@click.option("--knn", is_flag=True, help="Output the k nearest right rows per left row, with rank.")
@click.option("--rerank", multiple=True, help="Reranker, repeatable, applied in order: 'cross-encoder:<model id or folder>' or 'llm:<litellm model>'.")
@click.option("--rerank-task", default=None, help="What a match means, for the LLM judge (e.g. 'firms; same legal entity').")
@click.option("--max-cost", type=float, default=None, help="Stop LLM judging at this many dollars (unjudged pairs: judge_error='budget').")
@click.option("--max-calls", type=int, default=None, help="Stop LLM judging after this many requests.")
@click.option("--dry-run", is_flag=True, help="Estimate LLM requests, tokens and dollars without calling the LLM.")
@click.option("--api-base", default=None, help="OpenAI-compatible server URL for the LLM judge (local models).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="LinkConfig TOML file.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the embedding/LLM cache.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output .csv/.tsv/.parquet/.jsonl file (written atomically; never an input unless --force).")
@click.option("--force", is_flag=True, help="Allow --out to be one of the input files (replaces it).")
def link(
    left: str, right: str, on: str | None, left_on: str | None, right_on: str | None, k: int | None,
    threshold: float | None, block_on: str | None, model: str | None, mode: str | None, fuser: str | None,
    one_to_one: bool | None,
    keep_unmatched: bool | None, knn: bool, rerank: tuple[str, ...], rerank_task: str | None,
    max_cost: float | None, max_calls: int | None, dry_run: bool, api_base: str | None, config_path: str | None,
    no_progress: bool, no_cache: bool, out: str, force: bool,
) -> None:
    """Link LEFT to RIGHT (CSV, TSV, Parquet or JSONL, or an index saved by `ltengine index`) and write the
    merged table to --out."""
    from ltengine import api
    from ltengine.cli.io import read_table, write_report, write_table
    from ltengine.cli.output import prepare_output
    from ltengine.errors import LTEngineError

    try:
        prepare_output(out, [left, right], force=force)  # fail before any work, not after
        from ltengine.cli.index import is_index, link_saved

        left_df, right_df = read_table(left), None if is_index(right) else read_table(right)
        options: dict[str, Any] = dict(
            on=split_columns(on), left_on=split_columns(left_on), right_on=split_columns(right_on), model=model,
            threshold=threshold, block_on=split_columns(block_on), keep_unmatched=keep_unmatched,
            config=config_path, mode=mode, fuser=fuser,
        )
        if no_progress:
            options["progress"] = False
        if no_cache:
            options["cache"] = False
        from ltengine.cli.rerank_options import cli_options

        options.update(cli_options(rerank, task=rerank_task, max_cost=max_cost, max_calls=max_calls,
                                   dry_run=dry_run, api_base=api_base))
        options = {key: value for key, value in options.items() if value is not None}
        if knn and one_to_one:
            raise click.UsageError("--one-to-one does not combine with --knn")
        if right_df is None:
            result = link_saved(left_df, right, options, k=k, knn=knn, one_to_one=one_to_one)
        elif knn:
            result = api.merge_knn(left_df, right_df, k=k, **options)  # options not given (None) take --config's
        else:
            result = api.merge(left_df, right_df, k=k, one_to_one=one_to_one, **options)
        write_table(result, out)
        report = result.attrs.get("ltengine", {}).get("report", {})
        write_report(report, out)  # beside the output: `ltengine explain` reads the calibration from it
    except LTEngineError as exc:
        raise _fail(exc) from None
    click.echo(
        f"linked {report.get('matched_left_rows', 0)} of {report.get('left_rows', len(left_df))} left rows; "
        f"wrote {len(result)} rows to {out}",
        err=True,
    )
    from ltengine.cli.rerank_options import summary

    text = summary(report)
    if text:
        click.echo(text, err=True)


@cli.command()
def plugins() -> None:
    """List plugins, their versions, hooks and components as JSON; broken plugins with their error."""
    from ltengine.plugins import get_host

    click.echo(json.dumps(get_host().describe(), indent=2, ensure_ascii=False, default=str))


from ltengine.cli.dedup import add_commands as _add_dedup_commands  # noqa: E402  (dedup, cluster)

_add_dedup_commands(cli)
from ltengine.cli.explain import explain as _explain
from ltengine.cli.index import add_commands as _add_index_commands  # noqa: E402  (index)

_add_index_commands(cli)

cli.add_command(_explain)
from ltengine.cli.train import train as _train  # noqa: E402

cli.add_command(_train)
from ltengine.cli.label import label as _label  # noqa: E402  (label)

cli.add_command(_label)
from ltengine.cli.rows import add_commands as _add_rows_commands  # noqa: E402  (classify, transform)

_add_rows_commands(cli)
from ltengine.cli.train_reranker import add_commands as _add_reranker_commands  # noqa: E402  (train-reranker)

_add_reranker_commands(cli)


def _add_plugin_commands(group: click.Group) -> None:
    from ltengine.plugins import get_host

    get_host().add_commands(group)  # a plugin whose hook raises is skipped with a warning


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    _add_plugin_commands(cli)
    return cli.main(args=argv, prog_name="ltengine")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

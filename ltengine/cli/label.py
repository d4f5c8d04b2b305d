"""``ltengine label``: active labelling in the terminal (or by the LLM judge), saved after every answer."""

from __future__ import annotations

import click

from ltengine.config import split_columns


@click.command()
@click.argument("left", type=click.Path(dir_okay=False, exists=True))
@click.argument("right", type=click.Path(dir_okay=False, exists=True))
@click.option("--on", help="Column(s) to link on, present in both files (comma-separated).")
@click.option("--left-on", help="Left column(s) (comma-separated).")
@click.option("--right-on", help="Right column(s) (comma-separated).")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="Labels file (.csv or .parquet), written after every answer; an existing one is resumed.")
@click.option("--n", "n", type=click.IntRange(min=1), default=50, show_default=True, help="Answers to collect.")
@click.option("--labeler", default="console", show_default=True,
              help="'console' (you answer y / n / u(nsure) / b(ack, undo) / q(uit)) or 'llm:<litellm model>'.")
@click.option("--k", type=click.IntRange(min=1), default=5, show_default=True, help="Candidates per left row.")
@click.option("--model", default=None, help="'fast' (default, offline), 'accurate', a model id or path.")
@click.option("--mode", type=click.Choice(["auto", "hybrid", "semantic", "lexical"]), default="hybrid",
              show_default=True, help="How candidates are found and scored.")
@click.option("--block-on", help="Only compare rows with equal values in these column(s).")
@click.option("--rerank-task", default=None, help="What a match means, for the LLM labeler.")
@click.option("--api-base", default=None, help="OpenAI-compatible server URL for the LLM labeler.")
@click.option("--max-cost", type=float, default=None, help="LLM labeler: stop at this many dollars.")
@click.option("--max-calls", type=int, default=None, help="LLM labeler: stop after this many requests.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the pair selection.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def label(left: str, right: str, on: str | None, left_on: str | None, right_on: str | None, out: str, n: int,
          labeler: str, k: int, model: str | None, mode: str, block_on: str | None, rerank_task: str | None,
          api_base: str | None, max_cost: float | None, max_calls: int | None, seed: int, no_progress: bool) -> None:
    """Label the candidate pairs of LEFT and RIGHT that teach the most (the least certain, spread over
    the data); the answers go to --out, ready for train_model / train_adapter / fit_fusion."""
    from ltengine.cli.io import read_table
    from ltengine.errors import LTEngineError
    from ltengine.learn.labelling import label_pairs

    options = {key: value for key, value in (("task", rerank_task), ("api_base", api_base), ("max_cost", max_cost),
                                             ("max_calls", max_calls)) if value is not None}
    extra = {"model": model} if model else {}
    if block_on:
        extra["block_on"] = split_columns(block_on)
    try:
        labelled = label_pairs(
            read_table(left), read_table(right), on=split_columns(on) if on else None,
            left_on=split_columns(left_on) if left_on else None, right_on=split_columns(right_on) if right_on else None,
            n=n, labeler=labeler, save=out, k=k, mode=mode, seed=seed, labeler_options=options or None,
            progress=False if no_progress else None, **extra,
        )
    except LTEngineError as exc:
        raise click.ClickException(str(exc)) from None
    counts = labelled.attrs["ltengine"]["labels"]
    click.echo(f"{counts['yes']} yes, {counts['no']} no, {counts['unsure']} unsure; saved to {out}", err=True)

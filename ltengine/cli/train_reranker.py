"""``ltengine train-reranker`` and ``ltengine distil-judge``: train a cross-encoder from labelled
candidates, or from an LLM judge's verdicts (see :func:`ltengine.train_reranker`, :func:`ltengine.distil_judge`)."""

from __future__ import annotations

import json

import click

from ltengine.config import split_columns


@click.command("train-reranker")
@click.argument("labelled", type=click.Path(dir_okay=False))
@click.option("--left-on", required=True, help="Left record column(s) of LABELLED, e.g. name_x (comma-separated).")
@click.option("--right-on", required=True, help="Right record column(s) of LABELLED, e.g. name_y (comma-separated).")
@click.option("--label", default="label", show_default=True, help="The 0/1 label column.")
@click.option("--base-model", default="accurate", show_default=True,
              help="'accurate' (multilingual-e5-small, offline), 'all-MiniLM-L6-v2' (offline), a folder or Hub id.")
@click.option("--out", "-o", "output_dir", required=True, type=click.Path(file_okay=False),
              help="Model folder to create (new or empty; an existing model needs --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace the model already in --out.")
@click.option("--negatives-per-left", type=click.IntRange(min=0), default=4, show_default=True,
              help="Hard negatives kept per left record (best-scored first).")
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--max-length", type=click.IntRange(min=8), default=128, show_default=True, help="Tokens per pair.")
@click.option("--max-minutes", type=click.FloatRange(min=0), default=12.0, show_default=True,
              help="Stop training after this long (the best weights so far are kept).")
@click.option("--calibration", type=click.Choice(["auto", "platt", "isotonic"]), default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def train_reranker(labelled: str, left_on: str, right_on: str, label: str, base_model: str, output_dir: str,
                   overwrite: bool, negatives_per_left: int, epochs: int, batch_size: int, max_length: int,
                   max_minutes: float, calibration: str, seed: int, no_progress: bool) -> None:
    """Train a cross-encoder reranker on LABELLED (a merge_knn output with a 0/1 label column; CSV,
    TSV, Excel or Parquet) and print its folder; use it with --rerank cross-encoder:FOLDER."""
    from ltengine.errors import LTEngineError
    from ltengine.learn.folders import read_training_info
    from ltengine.learn.reranker import train_reranker as train

    try:
        path = train(labelled, split_columns(left_on), split_columns(right_on), label, base_model=base_model,
                     output_dir=output_dir, overwrite=overwrite, negatives_per_left=negatives_per_left,
                     epochs=epochs, batch_size=batch_size, max_length=max_length, max_minutes=max_minutes,
                     calibration=calibration, seed=seed, progress=False if no_progress else None)
    except LTEngineError as exc:
        raise click.ClickException(str(exc)) from None
    info = read_training_info(path)
    summary = {key: info.get(key) for key in ("training_pairs", "validation_pairs", "validation_top1_before",
                                              "validation_top1_after", "calibration", "calibration_ece",
                                              "stopped_by", "training_seconds")}
    click.echo(json.dumps(summary), err=True)
    click.echo(path)


def add_commands(group: click.Group) -> None:
    """Register the training commands on the CLI group."""
    group.add_command(train_reranker)

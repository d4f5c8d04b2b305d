"""``ltengine train``: fine-tune an encoder on labelled pairs (:func:`ltengine.train_model`)."""

from __future__ import annotations

import click

from ltengine.config import split_columns


@click.command()
@click.argument("pairs", type=click.Path(dir_okay=False))
@click.option("--left-on", help="Left text column(s) of the pairs file (comma-separated).")
@click.option("--right-on", help="Right text column(s) (comma-separated).")
@click.option("--on", help="Text column(s) of a clustered file (with --cluster), or of both sides.")
@click.option("--label", help="Column of 1 (same entity) / 0 (different): 0-rows are used as hard negatives.")
@click.option("--cluster", help="Cluster id column: every two rows of a cluster are a positive pair.")
@click.option("--base", "base_model", default="accurate", show_default=True,
              help="Model to fine-tune: 'accurate' (multilingual-e5-small, offline), a sentence-transformers folder or id.")
@click.option("--out", "-o", "output_dir", required=True, type=click.Path(file_okay=False),
              help="Folder the trained model is written to (new, empty, or a model with --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace the model already in --out.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Passes over the pairs (default: automatic).")
@click.option("--batch-size", type=click.IntRange(min=2), default=None, help="Pairs per step (default 32).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=None, help="Default 3e-5.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop training after this long.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def train(pairs: str, left_on: str | None, right_on: str | None, on: str | None, label: str | None, cluster: str | None,
          base_model: str, output_dir: str, overwrite: bool, epochs: int | None, batch_size: int | None,
          learning_rate: float | None, max_minutes: float | None, seed: int, no_progress: bool) -> None:
    """Fine-tune an encoder on PAIRS (CSV, TSV, Excel or Parquet) and save it to --out; then link
    with `ltengine link ... --model <out>`."""
    from ltengine.errors import LTEngineError
    from ltengine.learn.train_model import train_model

    try:
        path = train_model(
            pairs, left_on=split_columns(left_on), right_on=split_columns(right_on), on=split_columns(on),
            label=label, cluster=cluster, base_model=base_model, output_dir=output_dir, overwrite=overwrite,
            epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, max_minutes=max_minutes, seed=seed,
            progress=False if no_progress else None,
        )
    except LTEngineError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"trained model written to {path}", err=True)
    click.echo(path)

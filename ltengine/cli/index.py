"""``ltengine index``: fit a right table once and save it (``registry.lti``); ``ltengine link LEFT registry.lti``
links to a saved index (:func:`link_saved`) without encoding the right table again.

Wire the command into a click group with :func:`add_commands` (``ltengine.cli`` does it for ``ltengine``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ltengine.config import split_columns

#: Merge arguments that are fixed by the saved index (checked against it, never changed).
_INDEX_ARGUMENTS = ("right_on", "model", "block_on", "mode")


def is_index(path: str | Path) -> bool:
    """Whether ``path`` is a saved index (a folder with a manifest), not a table file."""
    from ltengine.engine.persist import is_saved_index

    return Path(path).is_dir() and is_saved_index(path)


def link_saved(left: Any, path: str | Path, options: dict[str, Any], *, k: int | None, knn: bool,
               one_to_one: bool | None) -> Any:
    """Link the frame ``left`` to the index saved at ``path`` with the ``ltengine link`` options
    (``on`` names the left columns; the right ones, the model, blocking and mode come from the index)."""
    from ltengine.config import LinkConfig
    from ltengine.engine.linker import Linker
    from ltengine.errors import LinkInputError

    options = dict(options)
    config_path = options.pop("config", None)
    overrides: dict[str, Any] = {}
    if config_path:  # the fields the file sets (those that differ from the defaults)
        default = LinkConfig().to_dict()
        overrides = {key: value for key, value in LinkConfig.from_path(config_path).to_dict().items()
                     if value != default[key]}
    on, left_on, right_on = (options.pop(key, None) for key in ("on", "left_on", "right_on"))
    if on and (left_on or right_on):
        raise LinkInputError("pass either --on or --left-on/--right-on, not both")
    sides = {"left_on": on or left_on, "right_on": on or right_on}
    if sides["left_on"]:
        overrides["left_on"] = sides["left_on"]
    overrides.update({key: value for key, value in options.items() if value is not None})
    if k is not None:
        overrides["k"] = k
    elif knn:
        overrides["k"] = 5
    if one_to_one is not None:
        overrides["one_to_one"] = one_to_one
    linker = Linker.load(path, **_checked(path, overrides, sides.get("right_on")))
    out = linker.merge(left, mode="knn" if knn else "best")
    if knn and linker.config.k == 1:
        out = out.drop(columns="rank")
    return out


def _checked(path: str | Path, overrides: dict[str, Any], right_on: Any) -> dict[str, Any]:
    """``overrides`` without index arguments equal to the saved ones (a different one stays: ConfigError)."""
    from ltengine.engine.persist import read_manifest, saved_config

    saved = saved_config(read_manifest(path, verify=False), {})
    if right_on:
        overrides["right_on"] = right_on
    return {key: value for key, value in overrides.items()
            if not (key in _INDEX_ARGUMENTS or key in ("config",)) or _differs(saved, key, value)}


def _differs(saved: Any, key: str, value: Any) -> bool:
    from ltengine.config import LinkConfig

    return LinkConfig(**{key: value}).to_dict()[key] != saved.to_dict()[key]


@click.command("index")
@click.argument("right", type=click.Path(dir_okay=False))
@click.option("--on", required=True, help="Column(s) the left tables will be linked on (comma-separated).")
@click.option("--left-on", help="Left tables' column(s), if named differently from --on (comma-separated).")
@click.option("--block-on", help="Only compare rows with equal values in these column(s).")
@click.option("--model", default=None, help="'fast' (default, offline), 'accurate', a model id or path.")
@click.option("--mode", type=click.Choice(["auto", "hybrid", "semantic", "lexical"]), default=None,
              help="Which indexes to build: semantic (vectors), lexical (character n-grams) or both (hybrid, auto).")
@click.option("--index", "index_type", type=click.Choice(["auto", "flat", "hnsw", "ivf"]), default=None,
              help="FAISS index: exact (flat), HNSW or IVF; auto (default): flat up to 100k rows.")
@click.option("--add", "add", is_flag=True, help="Add RIGHT's rows to the index at --out instead of building a new one.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="LinkConfig TOML file.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the embedding cache.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Index folder to write (e.g. registry.lti; built beside it, then renamed into place).")
def index(right: str, on: str, left_on: str | None, block_on: str | None, model: str | None, mode: str | None,
          index_type: str | None, add: bool, config_path: str | None, no_progress: bool, no_cache: bool,
          out: str) -> None:
    """Encode and index RIGHT (CSV, TSV, Parquet or JSONL) once and save it to --out, for `ltengine link LEFT OUT`."""
    from ltengine.cli.io import read_table
    from ltengine.config import LinkConfig
    from ltengine.engine.linker import Linker
    from ltengine.errors import LTEngineError

    try:
        df = read_table(right)
        if add:
            if not is_index(out):
                raise click.UsageError(f"--add needs an existing index at --out; {out} is none")
            linker = Linker.load(out, **({"progress": False} if no_progress else {}))
            linker.add(df)
        else:
            arguments: dict[str, Any] = {"right_on": split_columns(on), "left_on": split_columns(left_on or on),
                                         "block_on": split_columns(block_on), "model": model, "mode": mode}
            if index_type:
                arguments["retriever_options"] = {"index": index_type}
            if no_progress:
                arguments["progress"] = False
            if no_cache:
                arguments["cache"] = False
            linker = Linker(LinkConfig.resolve(config_path, **arguments)).fit(df)
        linker.save(out)
    except LTEngineError as exc:
        raise click.ClickException(str(exc)) from None
    report = linker.context.report
    kinds = f" ({report['index']})" if report.get("index") else ""
    click.echo(f"{'added' if add else 'indexed'} {len(df)} rows{kinds}; {report.get('right_rows', len(df))} in the index; "
               f"wrote {out}", err=True)


def add_commands(cli_group: click.Group) -> None:
    """Add ``index`` to ``cli_group``."""
    cli_group.add_command(index)

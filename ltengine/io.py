"""Reading and writing tables for the CLI (CSV, TSV, Parquet, JSON lines), with clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import FileFormatError

READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}


def output_format(path: str | Path) -> str:
    """The format ``write_table`` will use for ``path`` (raises FileFormatError for unknown types)."""
    return _format(Path(path))


def _format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        suffixes = suffixes[:-1]
    fmt = READERS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise FileFormatError(
            f"{str(path)!r}: unknown file type {path.suffix or '(none)'}; use .csv, .tsv, .parquet or .jsonl"
        )
    return fmt


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table; every failure becomes a FileFormatError naming the file."""
    path = Path(path)
    fmt = _format(path)
    if not path.exists():
        raise FileFormatError(f"{str(path)!r} does not exist")
    try:
        if fmt == "csv":
            return pd.read_csv(path)
        if fmt == "tsv":
            return pd.read_csv(path, sep="\t")
        if fmt == "jsonl":
            return pd.read_json(path, lines=True)
        return pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError, ImportError, pd.errors.ParserError) as exc:
        raise FileFormatError(f"cannot read {str(path)!r} as {fmt}: {type(exc).__name__}: {exc}") from None


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table by extension; failures become FileFormatError."""
    path = Path(path)
    fmt = _format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            df.to_csv(path, index=False)
        elif fmt == "tsv":
            df.to_csv(path, sep="\t", index=False)
        elif fmt == "jsonl":
            df.to_json(path, orient="records", lines=True, force_ascii=False)
        else:
            df.to_parquet(path, index=False)
    except (ValueError, OSError, ImportError) as exc:
        raise FileFormatError(f"cannot write {str(path)!r}: {type(exc).__name__}: {exc}") from None

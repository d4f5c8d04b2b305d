"""Reading and writing tables for the CLI (CSV, TSV, Parquet, JSON lines), with clear errors.

Values come back as they were written: CSV/TSV cells are read as text (``007`` stays ``007``,
``NA``/``Null`` stay text, only empty cells are missing), JSON lines keep their JSON types.
Outputs are written atomically: to a temporary file in the same folder, then renamed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import FileFormatError

READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}
#: Text read options: every cell a string, no NA guessing; only an empty cell is missing.
TEXT_OPTIONS = {"dtype": str, "keep_default_na": False, "na_values": [""]}


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


def _read_jsonl(path: Path) -> pd.DataFrame:
    """JSON lines with their JSON types: strings stay strings, ints with nulls stay ints (``Int64``)."""
    df = pd.read_json(path, lines=True, dtype=False, convert_dates=False, keep_default_dates=False,
                      precise_float=True, dtype_backend="numpy_nullable")
    for column, dtype in df.dtypes.items():
        values = df[column]
        if isinstance(dtype, pd.StringDtype):
            df[column] = values.astype(object).where(values.notna(), np.nan)
        elif isinstance(dtype, pd.Float64Dtype):
            df[column] = values.astype("float64")
        elif isinstance(dtype, (pd.Int64Dtype, pd.BooleanDtype)) and not values.isna().any():
            df[column] = values.astype(dtype.numpy_dtype)
    return df


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table; every failure becomes a FileFormatError naming the file.

    CSV/TSV cells are text exactly as written (empty cells missing); JSON lines keep JSON types.
    """
    path = Path(path)
    fmt = _format(path)
    if not path.exists():
        raise FileFormatError(f"{str(path)!r} does not exist")
    if path.is_dir():
        raise FileFormatError(f"{str(path)!r} is a folder; give a .csv, .tsv, .parquet or .jsonl file")
    try:
        if fmt == "csv":
            return pd.read_csv(path, **TEXT_OPTIONS)  # type: ignore[arg-type]
        if fmt == "tsv":
            return pd.read_csv(path, sep="\t", **TEXT_OPTIONS)  # type: ignore[arg-type]
        if fmt == "jsonl":
            return _read_jsonl(path)
        return pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError, ImportError, pd.errors.ParserError) as exc:
        raise FileFormatError(f"cannot read {str(path)!r} as {fmt}: {type(exc).__name__}: {exc}") from None


def _write(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "tsv":
        df.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        df.to_parquet(path, index=False)


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table by extension, atomically (temporary file + rename); failures become FileFormatError.

    On failure no partial file is left and an existing ``path`` is untouched.  A symlink at ``path``
    is written through (its target is replaced); an existing file keeps its permissions.
    """
    fmt = _format(Path(path))
    _write_atomically(path, lambda temp: _write(df, temp, fmt))


def report_path(table: str | Path) -> Path:
    """Where the run report of an output table goes: ``<table>.report.json`` (e.g. ``linked.csv.report.json``)."""
    path = Path(table)
    return path.with_name(path.name + ".report.json")


def write_report(report: Mapping[str, Any], table: str | Path) -> Path:
    """Write a run report (``out.attrs["ltengine"]["report"]``) as JSON beside ``table``, atomically.

    It carries what ``ltengine explain`` needs (the calibration of ``match_probability``)."""
    path = report_path(table)
    text = json.dumps(report, indent=1, default=str, ensure_ascii=False)
    _write_atomically(path, lambda temp: temp.write_text(text, encoding="utf-8"))
    return path


def _write_atomically(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(temp)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    target = Path(os.path.realpath(path))
    temp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # ends with the real name, so compression is inferred from the same suffixes
        temp = target.parent / f".ltengine-{secrets.token_hex(6)}-{target.name}"
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # umask applies, like open()
        if target.is_file():
            shutil.copymode(target, temp)
        write(temp)
        os.replace(temp, target)
        temp = None
    except (ValueError, TypeError, NotImplementedError, OSError, ImportError) as exc:  # pyarrow: Type/NotImplemented
        raise FileFormatError(f"cannot write {str(path)!r}: {type(exc).__name__}: {exc}") from None
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)

"""Checks on the CLI's ``--out`` made before any work: known format, not an input, writable.

Reading inputs, linking and paid LLM calls only start once the output is known to be writable,
and an ``--out`` that names an input file (also via ``./``, symlinks or hard links) is refused
unless ``--force`` is given, so the command cannot destroy its own input.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from ltengine.cli.io import output_format
from ltengine.errors import FileFormatError


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name the same file (same inode when both exist, else same real path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _nearest_existing(path: Path) -> Path:
    for folder in (path, *path.parents):
        if folder.exists():
            return folder
    return Path(path.anchor or ".")


def check_writable(out: str | Path) -> None:
    """Raise FileFormatError unless ``out`` can be written (folder creatable and writable, file writable)."""
    path = Path(os.path.realpath(out))
    if path.is_dir():
        example = str(Path(out) / "out.csv")
        raise FileFormatError(f"--out {str(out)!r} is a folder; give a file name such as {example!r}")
    if path.exists() and not os.access(path, os.W_OK):
        raise FileFormatError(
            f"--out {str(out)!r} exists and is not writable; choose another file or change its permissions"
        )
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise FileFormatError(f"cannot write --out {str(out)!r}: {str(folder)!r} is a file, not a folder")
    probe = folder / f".ltengine-probe-{secrets.token_hex(6)}"
    try:  # os.access is not enough: read-only mounts, ACLs, root
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as exc:
        raise FileFormatError(
            f"cannot write --out {str(out)!r}: folder {str(folder)!r} is not writable ({exc.strerror or exc}); "
            "choose another output folder"
        ) from None


def prepare_output(out: str | Path, inputs: Iterable[str | Path | None], force: bool = False) -> None:
    """Check ``out`` before any work: known format, not one of ``inputs`` (unless ``force``), writable."""
    output_format(out)
    if not force:
        for given in inputs:
            if given is not None and os.path.exists(given) and same_file(out, given):
                raise FileFormatError(
                    f"--out {str(out)!r} is the input file {str(given)!r}; writing it would replace your data. "
                    "Choose another --out, or pass --force to overwrite the input."
                )
    check_writable(out)

"""Atomic builds of model folders, safe across threads, processes and crashes.

:func:`ensure_built` builds a folder in a temporary sibling and renames it into place, with a marker
file (listing every file and its size) written last, under a file lock: a killed build never leaves
a half-built model (its leftovers are swept by the next build), and a folder that fails
validation (partial, corrupted, outdated) is rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ltengine_plugins._file_lock import build_lock

from .sources import BUILD_VERSION

#: Written last into every built folder; lists the files and their sizes.
MARKER = "ltengine-build.json"

#: Number of model folders built by this process (lets tests check that the disk cache is reused).
build_count = 0


def _folder_valid(folder: Path) -> bool:
    """True if ``folder`` holds a complete build: marker present, every listed file the right size."""
    try:
        info = json.loads((folder / MARKER).read_text("utf-8"))
        if info.get("build_version") != BUILD_VERSION:
            return False
        for rel, size in info["files"].items():
            if (folder / rel).stat().st_size != size:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _write_marker(folder: Path, extra: dict[str, Any]) -> None:
    files = {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }
    info = {"build_version": BUILD_VERSION, "files": files, **extra}
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(info, indent=1, ensure_ascii=False), "utf-8")
    os.replace(tmp, folder / MARKER)


def _sweep_leftovers(folder: Path) -> None:
    """Remove temporary/trash folders of earlier builds of ``folder`` that were killed (call under its lock)."""
    suffix = "-" + "[0-9a-f]" * 8  # exactly the uuid part: never another folder's leftovers
    for pattern in (f".tmp-{folder.name}{suffix}", f".trash-{folder.name}{suffix}"):
        for stale in folder.parent.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    """Flush every file (and folder entry) of a finished build to disk before it is renamed into
    place, so that even a power cut cannot leave a folder whose marker lists unwritten data."""
    for path in sorted(folder.rglob("*"), reverse=True) + [folder]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # pragma: no cover - e.g. folders cannot be opened on Windows
            continue
        try:
            os.fsync(fd)
        except OSError:  # pragma: no cover - file systems without fsync on folders
            pass
        finally:
            os.close(fd)


_thread_lock = threading.RLock()  # one build at a time per process (the file lock covers other processes)


def ensure_built(folder: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """Return ``folder``, building it first with ``build(tmp_dir)`` unless a valid build is there.

    ``build`` writes into an empty temporary sibling folder and returns facts for the marker; the
    folder is then renamed into place.  An invalid (partial, corrupted, outdated) folder is removed.
    """
    global build_count
    if _folder_valid(folder):
        return folder
    with _thread_lock, build_lock(folder.parent, folder.name):
        if _folder_valid(folder):  # another process/thread finished it meanwhile
            return folder
        _sweep_leftovers(folder)
        tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir(parents=True)
            extra = build(tmp)
            _write_marker(tmp, extra)
            _fsync_tree(tmp)
            if folder.exists() or folder.is_symlink():
                trash = folder.parent / f".trash-{folder.name}-{uuid.uuid4().hex[:8]}"
                os.replace(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, folder)
            build_count += 1
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return folder

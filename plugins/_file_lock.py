"""A cross-process lock for one-off model builds (the e5 cache, ONNX exports) in a shared models folder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def build_lock(parent: Path, name: str) -> Iterator[None]:
    """Serialise builds of ``name`` in ``parent`` across processes (POSIX ``flock`` on ``parent/.name.lock``;
    no-op elsewhere, where the build's rename into place still keeps it atomic)."""
    parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(parent / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

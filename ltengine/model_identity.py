"""What a model *is*, for cache keys: a local folder by its content, a Hub model by its revision.

A path string is not an identity: ``./mymodel`` means another model in another folder, and a
model retrained into the same folder keeps its path.  :func:`folder_fingerprint` hashes every file
under the folder recursively (relative names, sizes and bytes); each file's digest is memoised by
(path, size, mtime_ns), so a second call costs one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

#: (real path, size, mtime_ns) -> sha256 of the file's bytes.
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()
_CHUNK = 1 << 20


def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    key = (path, size, mtime_ns)
    with _LOCK:
        cached = _FILE_DIGESTS.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            h.update(block)
    digest = h.hexdigest()
    with _LOCK:
        _FILE_DIGESTS[key] = digest
    return digest


def folder_fingerprint(folder: str | os.PathLike[str]) -> str:
    """A sha256 over every file under ``folder`` (recursively, following links): names relative to
    the folder, sizes and contents.  Unreadable files count by name and the error, not silently."""
    root = Path(folder).resolve()
    h = hashlib.sha256(b"ltengine-folder-v1\x00")
    seen: set[str] = set()
    entries: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link cycle
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in filenames:
            entries.append((Path(dirpath, name).relative_to(root).as_posix(), os.path.join(dirpath, name)))
    for rel, full in sorted(entries):
        try:
            st = os.stat(full)
            part = f"{st.st_size}:{_file_digest(os.path.realpath(full), st.st_size, st.st_mtime_ns)}"
        except OSError as exc:
            part = f"unreadable:{type(exc).__name__}"
        h.update(f"{rel}\x00{part}\x00".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def hub_revision(model_id: str, revision: str | None = None) -> str | None:
    """The commit of ``model_id`` in the local Hugging Face cache (no network), or None if unknown."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        path = try_to_load_from_cache(model_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - an invalid id or revision: unknown
        return None
    if not isinstance(path, str):
        return None
    parts = Path(path).parts
    return parts[-2] if len(parts) >= 2 and parts[-3:-2] == ("snapshots",) else None


def model_key(model: str | None, *, source: str | None = None, revision: str | None = None) -> str:
    """Cache identity of ``model``: ``dir:<content hash>`` for an existing folder; with
    ``source="hub"`` (a Hugging Face id, as resolved by the caller) the id plus the commit the local
    Hugging Face cache holds, or ``revision`` (asked for explicitly); else ``model`` unchanged.
    """
    if not model:
        return str(model)
    if source != "hub":
        path = Path(model).expanduser()
        if path.is_dir():
            return f"dir:{folder_fingerprint(path)}"
    if source == "hub":
        commit = hub_revision(model, revision)
        if commit or revision:
            return f"{model}@{commit or revision}"
    return model

"""The default cache: one diskcache folder per namespace under ``cache_dir`` (SQLite + files;
safe across processes; every ``set`` is committed, so a crash keeps what was stored).

Nothing read from disk is unpickled: values are stored as tagged bytes (arrays via ``np.save``,
the rest as JSON; see :mod:`ltengine_plugins._safe_disk`).  A damaged cache never stops a run:
an unreadable entry is a miss (one :class:`~ltengine.errors.CacheWarning` per folder), a corrupt
database is moved aside and rebuilt, and a folder that cannot be created or written turns the
cache off with a warning.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from ltengine.cache import NullCache, default_cache_dir
from ltengine.errors import CacheWarning
from ltengine.hookspecs import hookimpl

#: Size limit per namespace before least-recently-stored entries are evicted.
SIZE_LIMIT = 8 * 2**30

_OPEN: dict[str, Any] = {}


def _is_corrupt_db(exc: BaseException) -> bool:
    """A damaged database file (not locking, permissions or I/O, which are OperationalErrors)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


class DiskCacheStore:
    """A :class:`ltengine.cache.Cache` backed by ``diskcache.Cache`` with a pickle-free disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._cache: Any = None
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._identity: tuple[int, int] | None = None
        try:
            self._cache = self._open()
        except Exception as exc:  # noqa: BLE001 - classified below
            if _is_corrupt_db(exc):
                self._rebuild(exc)
            else:
                self._disable(exc)

    # -- opening and recovery ------------------------------------------------------------------
    def _open(self) -> Any:
        import diskcache

        from ._safe_disk import SafeDisk

        cache = diskcache.Cache(
            str(self.directory), size_limit=SIZE_LIMIT, eviction_policy="least-recently-stored", disk=SafeDisk
        )
        cache.get("\x00ltengine-probe")  # a damaged database fails here, not in the middle of a run
        self._identity = _file_identity(self.directory / "cache.db")
        return cache

    def is_current(self) -> bool:
        """False once the folder's database was deleted or replaced since it was opened (the user
        removed the cache folder): the store must be opened again, not go on writing to a deleted file."""
        return self._cache is None or _file_identity(self.directory / "cache.db") == self._identity

    def _warn(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(message, CacheWarning, stacklevel=4)

    def _disable(self, exc: BaseException) -> None:
        self._close_quietly()
        self._cache = None
        self._warn(
            "off",
            f"cache off for {str(self.directory)!r}: cannot use it ({type(exc).__name__}: {exc}). The run goes on "
            "without caching; make the folder writable, set cache_dir / $LTENGINE_HOME to a writable folder, "
            "or pass cache=False (CLI: --no-cache) to silence this.",
        )

    def _rebuild(self, exc: BaseException) -> None:
        """Move the damaged folder aside (timestamp suffix) and start an empty cache there."""
        with self._lock:
            self._close_quietly()
            self._cache = None
            aside = self.directory.with_name(f"{self.directory.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            try:
                if aside.exists():
                    aside = aside.with_name(f"{aside.name}-{os.getpid()}-{time.monotonic_ns()}")
                shutil.move(str(self.directory), str(aside))
                self._cache = self._open()
            except Exception as again:  # noqa: BLE001
                self._disable(again)
                return
            self._warn(
                "rebuilt",
                f"the cache database in {str(self.directory)!r} was corrupt ({type(exc).__name__}: {exc}); moved it "
                f"aside to {str(aside)!r} and started an empty cache (delete the old folder when you like).",
            )

    def _close_quietly(self) -> None:
        if self._cache is not None:
            try:
                self._cache.close()
            except Exception:  # noqa: BLE001 - closing a broken cache must not fail the run
                pass

    def _failed(self, exc: BaseException, action: str) -> None:
        if _is_corrupt_db(exc):
            self._rebuild(exc)
        elif isinstance(exc, (OSError, sqlite3.OperationalError)) and action == "write":
            self._disable(exc)
        else:  # a lock timeout or a transient read error: this entry is a miss
            self._warn(
                "io", f"cannot {action} the cache in {str(self.directory)!r} ({type(exc).__name__}: {exc}); "
                "recomputing instead."
            )

    # -- the Cache protocol ---------------------------------------------------------------------
    def get(self, key: str) -> Any | None:
        from ._safe_disk import CorruptEntry, decode_value

        cache = self._cache
        if cache is None:
            return None
        try:
            data = cache.get(key)
            return None if data is None else decode_value(data)
        except CorruptEntry:
            self._warn(
                "entry",
                f"unreadable entries in the cache {str(self.directory)!r} (damaged, from an older ltengine, or "
                "not written by ltengine); they are treated as misses and recomputed.",
            )
            return None
        except Exception as exc:  # noqa: BLE001 - sqlite3 / OSError / diskcache.Timeout
            self._failed(exc, "read")
            return None

    def set(self, key: str, value: Any) -> None:
        from ._safe_disk import encode_value

        data = encode_value(value)
        cache = self._cache
        if cache is None:
            return
        try:
            cache.set(key, data)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc, "write")
            if self._cache is not None and self._cache is not cache:  # rebuilt: store it in the new cache
                try:
                    self._cache.set(key, data)
                except Exception as again:  # noqa: BLE001
                    self._disable(again)

    def __len__(self) -> int:
        return 0 if self._cache is None else len(self._cache)

    def close(self) -> None:
        self._close_quietly()


@hookimpl(trylast=True)
def make_cache(namespace: str, config: Any) -> Any:
    if not getattr(config, "cache", True):
        return NullCache()
    root = Path(config.cache_dir) if getattr(config, "cache_dir", None) else default_cache_dir()
    directory = (root / namespace).expanduser().resolve()
    store = _OPEN.get(str(directory))
    if store is not None and not store.is_current():
        store.close()
        store = None
    if store is None:
        store = _OPEN[str(directory)] = DiskCacheStore(directory)
    return store


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino

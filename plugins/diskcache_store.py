"""The default cache: one diskcache folder per namespace under ``cache_dir`` (SQLite + files;
safe across processes; every ``set`` is committed, so a crash keeps what was stored)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ltengine.cache import NullCache, default_cache_dir
from ltengine.hookspecs import hookimpl

#: Size limit per namespace before least-recently-stored entries are evicted.
SIZE_LIMIT = 8 * 2**30

_OPEN: dict[str, Any] = {}


class DiskCacheStore:
    """A :class:`ltengine.cache.Cache` backed by ``diskcache.Cache``."""

    def __init__(self, directory: Path) -> None:
        import diskcache

        self.directory = directory
        self._cache = diskcache.Cache(str(directory), size_limit=SIZE_LIMIT, eviction_policy="least-recently-stored")

    def get(self, key: str) -> Any | None:
        return self._cache.get(key)

    def set(self, key: str, value: Any) -> None:
        self._cache.set(key, value)

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()


@hookimpl(trylast=True)
def make_cache(namespace: str, config: Any) -> Any:
    if not getattr(config, "cache", True):
        return NullCache()
    root = Path(config.cache_dir) if getattr(config, "cache_dir", None) else default_cache_dir()
    directory = (root / namespace).expanduser().resolve()
    store = _OPEN.get(str(directory))
    if store is None:
        store = _OPEN[str(directory)] = DiskCacheStore(directory)
    return store

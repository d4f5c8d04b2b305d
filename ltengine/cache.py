"""Cache protocol, content-hash keys, and the default cache location."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Cache(Protocol):
    """What ``make_cache`` returns: a persistent key -> value store."""

    def get(self, key: str) -> Any | None:
        """The stored value, or None."""

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (durably: a crash after ``set`` keeps it)."""


class NullCache:
    """A cache that stores nothing (``LinkConfig(cache=False)``)."""

    def get(self, key: str) -> None:
        return None

    def set(self, key: str, value: Any) -> None:
        return None


def content_key(*parts: str | bytes | Iterable[str]) -> str:
    """A sha256 hex key over ``parts``; iterables of strings are hashed element by element."""
    h = hashlib.sha256()
    for part in parts:
        items = [part] if isinstance(part, (str, bytes)) else part
        for item in items:
            data = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        h.update(b"\x00|")
    return h.hexdigest()


def ltengine_home() -> Path:
    """``$LTENGINE_HOME`` or the platform's user cache folder for ltengine."""
    env = os.environ.get("LTENGINE_HOME")
    if env:
        return Path(env)
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("ltengine"))
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "ltengine"


def default_cache_dir() -> Path:
    return ltengine_home() / "cache"

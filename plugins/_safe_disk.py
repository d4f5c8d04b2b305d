"""Pickle-free serialisation for the disk cache.

Values are stored as bytes with a 4-byte tag: ``LTA1`` + ``np.save`` bytes for arrays (read back
with ``allow_pickle=False``), ``LTJ1`` + UTF-8 JSON for everything else (LLM verdicts: dicts,
strings, numbers).  :class:`SafeDisk` is the ``diskcache.Disk`` the store opens: it never pickles
a value or key, and refuses to unpickle one (a planted ``MODE_PICKLE`` row or ``.val`` file is
reported as :class:`CorruptEntry`, which the store treats as a miss).
"""

from __future__ import annotations

import io
import json
from typing import Any

import diskcache
import numpy as np
from diskcache.core import MODE_PICKLE

ARRAY_TAG = b"LTA1"
JSON_TAG = b"LTJ1"


class CorruptEntry(Exception):
    """A cache entry that cannot be read safely (unknown format, truncated, or a pickle)."""


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"the cache stores JSON values only; cannot store {type(obj).__name__}")


def encode_value(value: Any) -> bytes:
    """Bytes for ``value``: a numeric numpy array, or anything JSON can hold."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("the cache does not store object arrays")
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return ARRAY_TAG + buffer.getvalue()
    return JSON_TAG + json.dumps(value, default=_json_default, ensure_ascii=False).encode("utf-8")


def decode_value(data: Any) -> Any:
    """The value :func:`encode_value` stored; :class:`CorruptEntry` for anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CorruptEntry(f"unexpected stored type {type(data).__name__}")
    data = bytes(data)
    tag, body = data[:4], data[4:]
    try:
        if tag == ARRAY_TAG:
            array = np.load(io.BytesIO(body), allow_pickle=False)
            if not isinstance(array, np.ndarray):
                raise CorruptEntry("not an array")
            return array if array.flags.writeable else array.copy()
        if tag == JSON_TAG:
            return json.loads(body.decode("utf-8"))
    except CorruptEntry:
        raise
    except Exception as exc:  # truncated or garbled bytes: numpy/json/unicode errors
        raise CorruptEntry(f"{type(exc).__name__}: {exc}") from exc
    raise CorruptEntry("unknown format")


class SafeDisk(diskcache.Disk):
    """A ``diskcache.Disk`` that neither writes nor reads pickles."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) not in (str, bytes, int, float):
            raise TypeError(f"cache keys must be str/bytes/int/float, not {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise CorruptEntry("pickled key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> tuple:
        if not read and type(value) not in (bytes, str, int, float):
            raise TypeError(f"SafeDisk refuses to pickle a {type(value).__name__}; serialise it to bytes first")
        return super().store(value, read, key)

    def _write(self, full_path: str, iterator: Any, mode: str, encoding: str | None = None) -> int | None:
        """diskcache hands a large value over as ``io.BytesIO`` and writes it line by line: float32 vectors
        hold a newline byte every ~256 bytes, so a 9 MiB batch of vectors took ~36,000 ``write`` calls.
        One write of the whole value: 5.8x faster (``python -m evals.cache_write``)."""
        if isinstance(iterator, io.BytesIO):
            iterator = iter((iterator.getvalue(),))
        return super()._write(full_path, iterator, mode, encoding)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE:
            raise CorruptEntry("a pickled value (refused: reading it could run code)")
        return super().fetch(mode, filename, value, read)

"""A process-wide store of loaded models, so repeated merges don't reload weights.

Plugins load every heavy object (a sentence-transformers model, an ONNX session, a C engine)
through :func:`shared_model` under a key that names what was loaded, so that one store bounds
the memory of all of them and :func:`clear_models` frees it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

#: Loaded models kept in memory (least recently used evicted first).
MAX_MODELS = 4

_models: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()
#: One lock per key being loaded: two threads asking for the same model load it once.
_loading: dict[Hashable, threading.Lock] = {}


def shared_model(key: Hashable, load: Callable[[], Any]) -> Any:
    """Return the model cached under ``key``, loading it with ``load()`` the first time.

    Concurrent callers with the same key wait for one load; an exception from ``load`` is
    raised to the caller and nothing is stored.
    """
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        key_lock = _loading.setdefault(key, threading.Lock())
    with key_lock:
        with _lock:
            if key in _models:  # loaded by another thread while this one waited
                _models.move_to_end(key)
                return _models[key]
        try:
            model = load()
        except BaseException:
            with _lock:
                _loading.pop(key, None)
            raise
        with _lock:
            _models[key] = model
            _loading.pop(key, None)
            while len(_models) > MAX_MODELS:
                _models.popitem(last=False)
    return model


def clear_models(match: Callable[[Hashable], bool] | None = None) -> None:
    """Forget every loaded model, or those whose key satisfies ``match`` (frees memory)."""
    with _lock:
        if match is None:
            _models.clear()
            return
        for key in [k for k in _models if match(k)]:
            del _models[key]


def allowed_threads() -> int:
    """Threads a model in this process may use: ``OMP_NUM_THREADS`` when it is set to a positive number (the
    common convention, and what Ray sets in a worker to its CPUs: two encoding actors on two cores then run two
    threads, not four), else the cores of this process's CPU affinity (all of them outside containers)."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)

"""A process-wide store of loaded models, so repeated merges don't reload weights."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

#: Loaded models kept in memory (least recently used evicted first).
MAX_MODELS = 4

_models: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()


def shared_model(key: Hashable, load: Callable[[], Any]) -> Any:
    """Return the model cached under ``key``, loading it with ``load()`` the first time."""
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    model = load()
    with _lock:
        _models[key] = model
        while len(_models) > MAX_MODELS:
            _models.popitem(last=False)
    return model


def clear_models() -> None:
    """Forget every loaded model (frees memory)."""
    with _lock:
        _models.clear()

"""Checks for numeric arguments: any real integer / real number type (Python, NumPy, ...), never bool.

``k=np.int64(2)`` and ``threshold=np.float32(0.5)`` are as good as ``2`` and ``0.5``; values are
returned as plain ``int`` / ``float`` so that reports, TOML and JSON see ordinary numbers.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def is_integer(value: Any) -> bool:
    """True for ``int``, ``np.int64`` and every other :class:`numbers.Integral` except bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """True for ``float``, ``np.float32``, integers and every other :class:`numbers.Real` except bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def as_positive_int(value: Any, name: str, what: str, error: type[Exception]) -> int:
    """``value`` as a plain int >= 1, else ``error`` naming ``name`` (``what`` says what it counts)."""
    if not is_integer(value) or int(value) < 1:
        raise error(f"{name} must be a positive integer ({what}); got {value!r}")
    return int(value)


def as_real(value: Any, name: str, expected: str, error: type[Exception]) -> float:
    """``value`` as a plain, non-NaN float, else ``error`` naming ``name`` and what is ``expected``."""
    if not is_real(value) or math.isnan(float(value)):
        raise error(f"{name} must be {expected}; got {value!r}")
    return float(value)

"""Built-in blockers: ``exact`` (normalised key on one or more columns) and ``none``."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import pandas as pd

from ltengine.components import Blocker
from ltengine.hookspecs import hookimpl


def _number_key(value: Any) -> Any:
    """Numbers compare by value across dtypes: integral floats become ints (75001.0 -> 75001, the
    int a NaN-upcast column held), other values are kept; bools are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    f = float(value)
    return int(f) if math.isfinite(f) and f.is_integer() else f


def _numbers(values: pd.Series) -> pd.Series:
    """Missing values as None, numbers normalised (:func:`_number_key`)."""
    keys = [None if missing else _number_key(v) for v, missing in zip(values.astype(object), values.isna())]
    return pd.Series(keys, index=values.index, dtype=object)


def _normalise(values: pd.Series) -> pd.Series:
    keys = [None if v is None else " ".join(str(v).casefold().split()) or None for v in _numbers(values)]
    return pd.Series(keys, index=values.index, dtype=object)


class ExactBlocker(Blocker):
    """Rows share a block when all blocking columns are equal after casefolding and whitespace
    normalisation.  A row with any blocking value missing is in no block (never matched)."""

    name = "exact"

    @property
    def key_description(self) -> str:
        """How keys were normalised before comparing (shown in the run report as ``block_keys``)."""
        text = "compared as text, casefolded, whitespace collapsed" if self.options.normalize else "compared as is"
        return f"numbers by value (integral floats as integers: 75001.0 -> 75001); {text}"

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: Casefold and collapse whitespace before comparing keys.
        normalize: bool = True

    def keys(self, records: pd.DataFrame) -> pd.Series:
        cols = [records[c] for c in records.columns]
        parts = [_normalise(c) if self.options.normalize else _numbers(c) for c in cols]
        if len(parts) == 1:
            return parts[0]
        frame = pd.concat(parts, axis=1)
        missing = frame.isna().any(axis=1)
        joined = frame.astype(str).agg("\x1f".join, axis=1)
        return joined.where(~missing, None)


class NoBlocker(Blocker):
    """Every row in one block: compare everything with everything."""

    name = "none"

    def keys(self, records: pd.DataFrame) -> pd.Series:
        return pd.Series("", index=records.index, dtype=object)


@hookimpl
def register_blockers(register):
    register(ExactBlocker)
    register(NoBlocker)

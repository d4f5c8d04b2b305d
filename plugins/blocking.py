"""Built-in blockers: ``exact`` (normalised key on one or more columns) and ``none``."""

from __future__ import annotations

import dataclasses

import pandas as pd

from ltengine.components import Blocker
from ltengine.hookspecs import hookimpl


def _normalise(values: pd.Series) -> pd.Series:
    text = values.astype(object).where(values.notna(), None)
    text = text.map(lambda v: None if v is None else " ".join(str(v).casefold().split()) or None)
    return text


class ExactBlocker(Blocker):
    """Rows share a block when all blocking columns are equal after casefolding and whitespace
    normalisation.  A row with any blocking value missing is in no block (never matched)."""

    name = "exact"

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: Casefold and collapse whitespace before comparing keys.
        normalize: bool = True

    def keys(self, records: pd.DataFrame) -> pd.Series:
        cols = [records[c] for c in records.columns]
        parts = [_normalise(c) if self.options.normalize else c.astype(object).where(c.notna(), None) for c in cols]
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

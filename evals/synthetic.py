"""Deterministic name-like strings for speed benchmarks (no accuracy claims are made on them)."""

from __future__ import annotations

import numpy as np

SYLLABLES = ("ka", "to", "mi", "ra", "sen", "bo", "lu", "gar", "tex", "vin", "dor", "ele", "qua", "zen", "pha",
             "nor", "ber", "lin", "sto", "mar", "cor", "tri", "val", "hel", "ost")
SUFFIXES = ("Ltd", "GmbH", "Inc.", "S.A.", "AG", "Corp", "Holdings", "Group", "", "", "")


def name_like_strings(n: int, seed: int = 0) -> list[str]:
    """``n`` firm-like names such as 'Karami Senbo Holdings' (duplicates are possible but rare)."""
    rng = np.random.default_rng(seed)
    syl = np.array(SYLLABLES)
    out = []
    for _ in range(n):
        words = [("".join(rng.choice(syl, size=rng.integers(2, 4)))).capitalize() for _ in range(rng.integers(1, 4))]
        suffix = SUFFIXES[rng.integers(len(SUFFIXES))]
        out.append(" ".join(words + ([suffix] if suffix else [])))
    return out

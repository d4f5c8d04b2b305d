"""Field-by-field similarity of multi-column records: each linked column compared on its own.

The lexical retriever compares whole records (the linked columns' values joined), where a long value
outweighs the short ones: a title of twenty words decides more than the venue and the year together, and a
paper's journal and conference versions differ only there.  :func:`field_similarity` gives every column
one equal say, as Fellegi-Sunter comparison vectors do: per pair, the mean over the columns filled on both
sides of the character 2-4-gram cosine of the two folded values.  Nothing is fitted (hashed n-grams, no
corpus statistics), so a pair's value never depends on the other rows of its call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ltengine.lexical.names import raw_key

#: Pairs whose n-gram rows are multiplied at once (bounded memory).
PAIR_CHUNK = 65_536
#: Hashed n-gram dimensions (collisions are rare among one column's n-grams).
N_FEATURES = 1 << 20


def field_similarity(left: Sequence[np.ndarray], right: Sequence[np.ndarray]) -> np.ndarray:
    """Per pair, the mean over columns filled on both sides of the char 2-4-gram cosine of the two values.

    ``left`` and ``right``: per column, the pairs' values (``""`` = missing), in the same column order.
    NaN where no column is filled on both sides of a pair (no evidence)."""
    if len(left) != len(right):
        raise ValueError(f"field_similarity needs as many left as right columns: {len(left)} vs {len(right)}")
    n = len(left[0]) if len(left) else 0
    total, count = np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.int64)
    for values_l, values_r in zip(left, right):
        values_l, values_r = np.asarray(values_l, dtype=object), np.asarray(values_r, dtype=object)
        both = np.flatnonzero((values_l != "") & (values_r != ""))
        if len(both):
            total[both] += _cosines(values_l[both], values_r[both])
            count[both] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def _cosines(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Char 2-4-gram cosine (within words) of each pair ``(left[i], right[i])``; each distinct value read once."""
    from sklearn.feature_extraction.text import HashingVectorizer

    codes, distinct = pd.factorize(np.concatenate([left, right]))
    vectorizer = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=N_FEATURES, lowercase=False,
                                   alternate_sign=False, norm="l2", dtype=np.float32)
    grams = vectorizer.transform([raw_key(str(v)) for v in distinct]).tocsr()
    a, b = codes[: len(left)], codes[len(left) :]
    out = np.empty(len(left), dtype=np.float64)
    for lo in range(0, len(left), PAIR_CHUNK):
        part = slice(lo, lo + PAIR_CHUNK)
        out[part] = np.asarray(grams[a[part]].multiply(grams[b[part]]).sum(axis=1)).ravel()
    return np.clip(out, 0.0, 1.0)

"""String similarities of candidate pairs' lexical keys (romanised names), for the hybrid fusers.

The character n-gram cosine (``score_lexical``) sees which n-grams two names share, not their order
or how transliteration bends them.  These measures (rapidfuzz, computed pairwise in C on all cores) add that:

- ``string_jaro_winkler``: Jaro-Winkler similarity (agreement of the characters, weighted to the start);
- ``string_indel``: 1 - normalised insert/delete distance (longest common subsequence);
- ``string_token_sort``: the same on the words sorted (word order does not matter);
- ``string_skeleton``: ``string_indel`` on the consonant skeletons (vowels, h, w, y and spaces
  removed): abjads (Hebrew, Arabic) write few vowels and transliterations vary them most;
- ``string_first_letter``: 1 when the two keys start with the same letter.

All are in [0, 1].  Measured on cross-script names (``evals/fusion_defaults.py``), fusing them with
the two scores lifts hybrid top-1 most where romanisation is loosest (Hebrew, Arabic, Thai).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

STRING_FEATURES = ("string_jaro_winkler", "string_indel", "string_token_sort", "string_skeleton",
                   "string_first_letter")
_NOT_SKELETON = re.compile(r"[aeiouyhw\s]+")


def skeleton(key: str) -> str:
    """The consonant skeleton of a lexical key: ``"jerusalem"`` -> ``"jrslm"``."""
    return _NOT_SKELETON.sub("", key)


def string_features(left_keys: Sequence[str], right_keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The :data:`STRING_FEATURES` of each pair ``(left_keys[i], right_keys[i])`` (float32 arrays)."""
    from rapidfuzz import fuzz
    from rapidfuzz.distance import Indel, JaroWinkler
    from rapidfuzz.process import cpdist

    n = len(left_keys)
    if n != len(right_keys):
        raise ValueError(f"string_features needs as many left keys as right keys: {n} vs {len(right_keys)}")
    if not n:
        return {name: np.zeros(0, dtype=np.float32) for name in STRING_FEATURES}
    # each distinct key is read once (pairs repeat their left and right keys many times)
    codes, distinct = pd.factorize(np.concatenate([np.asarray(left_keys, dtype=object),
                                                   np.asarray(right_keys, dtype=object)]))
    keys = np.asarray([str(k) for k in distinct], dtype=object)
    skeletons = np.asarray([skeleton(k) for k in keys], dtype=object)
    first_codes, _ = pd.factorize(pd.Series([k[:1] for k in keys], dtype=object))
    left, right = codes[:n], codes[n:]

    def pairwise(scorer, values=keys, scale=1.0):
        found = cpdist(values[left], values[right], scorer=scorer, dtype=np.float32, workers=-1)
        return (found / np.float32(scale)).astype(np.float32)

    first = ((first_codes[left] == first_codes[right]) & (keys[left] != "")).astype(np.float32)
    return {
        "string_jaro_winkler": pairwise(JaroWinkler.normalized_similarity),
        "string_indel": pairwise(Indel.normalized_similarity),
        "string_token_sort": pairwise(fuzz.token_sort_ratio, scale=100.0),
        "string_skeleton": pairwise(Indel.normalized_similarity, skeletons),
        "string_first_letter": first,
    }

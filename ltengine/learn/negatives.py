"""Hard negatives mined with the engine itself: the retriever's near misses.

For every left text of a training frame (:mod:`ltengine.learn.data`), the right texts that the
current model ranks highest but that are *not* known positives (not a right text of the same
entity) are the negatives it most needs to learn from.  They are found with
:func:`ltengine.merge_knn` over the distinct right texts, so mining uses the same encoder, cache
and retriever as linking.  Pairs labelled 0 by the user are hard negatives too, and come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def known_positives(frame: pd.DataFrame) -> dict[str, set[str]]:
    """left text -> the right texts it must never be given as a negative: those of its entity."""
    positives = frame[frame["label"] == 1]
    by_entity = positives.groupby("entity")["right_text"].agg(set).to_dict()
    by_entity_left = positives.groupby("entity")["left_text"].agg(set).to_dict()
    out: dict[str, set[str]] = {}
    for entity, rights in by_entity.items():
        texts = rights | by_entity_left[entity]  # a left text of the entity may also sit on the right side
        for left in by_entity_left[entity]:
            out.setdefault(left, set()).update(texts)
    return out


def mine_hard_negatives(
    frame: pd.DataFrame,
    *,
    model: str | None,
    per_left: int = 1,
    depth: int = 10,
    corpus: list[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, list[str]]:
    """left text -> up to ``per_left`` hard negatives (right texts), best first.

    User-labelled negatives (``label == 0``) come first; the rest are the ``depth`` nearest right
    texts under ``model`` (any ``model=`` that :func:`ltengine.merge` accepts, in semantic mode)
    minus the known positives (:func:`known_positives`).  ``corpus`` adds right texts to search
    (default: the frame's distinct right texts); ``options`` go to :func:`ltengine.merge_knn`
    (``encoder_options``, ``progress``, ``cache`` ...).
    """
    from ltengine.api import merge_knn

    positives = known_positives(frame)
    negatives: dict[str, list[str]] = {}
    for left, right in frame.loc[frame["label"] == 0, ["left_text", "right_text"]].itertuples(index=False):
        if right not in positives.get(left, ()):
            negatives.setdefault(left, [])
            if right not in negatives[left]:
                negatives[left].append(right)
    rights = list(dict.fromkeys([*frame["right_text"].tolist(), *(corpus or [])]))
    lefts = [t for t in dict.fromkeys(frame.loc[frame["label"] == 1, "left_text"].tolist())
             if len(negatives.get(t, ())) < per_left]
    if len(rights) < 2 or not lefts:
        return negatives
    k = min(len(rights), depth)
    found = merge_knn(pd.DataFrame({"text": lefts}), pd.DataFrame({"text": rights}), on="text", model=model, k=k,
                      mode="semantic", **dict(options or {}))
    found = found.sort_values(["text_x", "rank"], kind="stable") if "text_x" in found else found
    left_col, right_col = ("text_x", "text_y") if "text_x" in found else ("text", "text")
    for left, right in zip(found[left_col].to_numpy(dtype=object), found[right_col].to_numpy(dtype=object)):
        if not isinstance(right, str) or right in positives.get(left, ()):
            continue
        chosen = negatives.setdefault(left, [])
        if len(chosen) < per_left and right not in chosen:
            chosen.append(right)
    return negatives


def random_negatives(frame: pd.DataFrame, lefts: list[str], seed: int = 0) -> dict[str, str]:
    """left text -> a random right text of another entity (for left texts with no mined negative)."""
    positives = known_positives(frame)
    rights = np.array(list(dict.fromkeys(frame["right_text"].tolist())), dtype=object)
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    if len(rights) < 2:
        return out
    for left in lefts:
        for _ in range(8):
            candidate = str(rights[rng.integers(len(rights))])
            if candidate not in positives.get(left, ()):
                out[left] = candidate
                break
    return out

"""The fitted right side and the block-wise search of its retrievers.

:class:`FittedRight` holds what :meth:`ltengine.engine.linker.Linker.fit` built (texts, block keys,
semantic and lexical retrievers per block); :func:`matched_groups` pairs the left rows with the right
blocks and :func:`search_blocks` searches each block's retriever in chunks of left rows.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import LinkWarning
from ltengine.progress import progress_bar
from ltengine.retrieval import empty_candidates
from ltengine.run import RunContext

#: Left rows searched per retriever call in an unblocked link (unit of progress).
SEARCH_CHUNK = 8192


@dataclasses.dataclass
class FittedRight:
    """The right table as fitted: texts, block keys and the retrievers of each block."""

    frame: pd.DataFrame
    texts: np.ndarray
    blocks: dict[Any, Any]  # block key (None when unblocked) -> semantic retriever
    block_sizes: dict[Any, int]
    lexical_texts: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, dtype=object))
    keys: np.ndarray | None = None
    ids: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0, dtype=np.int64))
    #: True when the right side was encoded (any mode but lexical): hybrid is possible
    semantic: bool = False
    #: right row position -> row of ``vectors`` (-1: empty text); vectors kept for hybrid scoring
    #: only when a block's retriever cannot score given pairs itself (``score_pairs``)
    vector_rows: np.ndarray | None = None
    vectors: np.ndarray | None = None
    profile: dict[str, float] = dataclasses.field(default_factory=dict)
    lexical: dict[Any, Any] = dataclasses.field(default_factory=dict)  # block key -> lexical retriever


def groups(keys: np.ndarray | None, ids: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    """Split the positions ``ids`` by block key (one group keyed None when unblocked; NA keys dropped)."""
    if keys is None:
        return [(None, np.arange(len(ids)))] if len(ids) else []
    sub = pd.Series(keys[ids])
    valid = sub.notna().to_numpy()
    grouped = pd.Series(np.arange(len(ids)))[valid].groupby(sub[valid].to_numpy(), sort=True)
    return [(key, idx.to_numpy()) for key, idx in grouped]


def matched_groups(right: FittedRight, keys: np.ndarray | None, ids: np.ndarray, ctx: RunContext,
                   block_on: tuple[str, ...]) -> list[tuple[Any, np.ndarray]]:
    """Left blocks (key, positions into ids) that exist on the right; report and warn about the others."""
    found, left_only_rows, left_only_blocks = [], 0, 0
    for key, positions in groups(keys, ids):
        if key in right.block_sizes:
            found.append((key, positions))
        else:
            left_only_rows += len(positions)
            left_only_blocks += 1
    if keys is not None:
        seen = {key for key, _ in found}
        right_only = [key for key in right.block_sizes if key not in seen]
        ctx.report.update(
            left_rows_in_blocks_missing_on_right=left_only_rows,
            blocks_only_on_left=left_only_blocks,
            blocks_only_on_right=len(right_only),
            right_rows_in_blocks_missing_on_left=int(sum(right.block_sizes[b] for b in right_only)),
        )
        if left_only_rows:
            warnings.warn(
                f"{left_only_rows} left rows in {left_only_blocks} blocks (block_on="
                f"{', '.join(block_on)}) have no right rows in the same block and get no candidates",
                LinkWarning,
                stacklevel=4,
            )
    return found


def search_blocks(right: FittedRight, retrievers: dict[Any, Any], block_groups: list[tuple[Any, np.ndarray]],
                  ids: np.ndarray, payload: Any, k: int, threshold: float | None, desc: str, ctx: RunContext,
                  progress: bool) -> pd.DataFrame:
    """Search each block's retriever with ``payload(chunk)`` (vectors or texts) in chunks of left rows."""
    found: list[pd.DataFrame] = []
    with progress_bar(sum(len(p) for _, p in block_groups), desc, progress) as bar:
        for key, positions in block_groups:
            retriever = retrievers[key]
            k_eff = min(k, right.block_sizes[key])
            for start in range(0, len(positions), SEARCH_CHUNK):
                chunk = positions[start : start + SEARCH_CHUNK]
                found.append(
                    ctx.run("search", retriever, vectors=payload(chunk), ids=ids[chunk], k=k_eff, threshold=threshold)
                )
                bar.update(len(chunk))
    return pd.concat(found, ignore_index=True) if found else empty_candidates()


def drop_self_pairs(pairs: pd.DataFrame, offset: int) -> pd.DataFrame:
    """``pairs`` of a self-link without each left row's own right row (``id_r == id_l + offset``), ranks renumbered."""
    own = pairs["id_r"].to_numpy() == pairs["id_l"].to_numpy() + offset
    if not own.any():
        return pairs
    pairs = pairs[~own].reset_index(drop=True)
    if "rank" in pairs.columns and len(pairs):
        pairs["rank"] = pairs.groupby("id_l", sort=False)["rank"].rank(method="first").to_numpy(dtype=np.int64)
    return pairs

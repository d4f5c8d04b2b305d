"""Growing and shrinking a fitted right side: ``Linker.add`` and ``Linker.remove``.

``add`` encodes only the new rows and hands them to each block's retrievers (``Retriever.add``: FAISS
inserts them, the exact retriever appends them, the lexical retriever extends its vocabulary and
refits its IDF from the document frequencies it holds); a block key seen for the first time gets new
retrievers.  New rows take the positions after the existing ones, so ``fit(a).add(b)`` holds the same
rows at the same positions as ``fit(pd.concat([a, b]))``.

``remove`` takes index labels of the right table and drops those rows from every retriever; the rows stay
in the table (unreachable, so positions stay stable) until the next ``fit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from ltengine.config import LinkConfig
from ltengine.engine.blocks import FittedRight, groups
from ltengine.engine.encoding import encode_texts
from ltengine.engine.text import lexical_texts, serialize
from ltengine.errors import ComponentError, LinkInputError
from ltengine.lexical.scripts import script_profile
from ltengine.run import RunContext


def _updatable(retrievers: Iterable[Any]) -> None:
    for retriever in retrievers:
        if not retriever.can_update:
            raise ComponentError(f"retriever {retriever.name!r} cannot add or remove rows of a built index "
                                 "(it implements no add/remove): fit the Linker again instead")


def add_rows(right: FittedRight, new: pd.DataFrame, keys: np.ndarray | None, config: LinkConfig,
             context: RunContext, encoder: Callable[[], Any]) -> FittedRight:
    """``right`` with the checked rows ``new`` (block keys ``keys``) appended and indexed; returns it."""
    if (keys is None) != (right.keys is None):
        raise LinkInputError("the rows added must be blocked like the fitted ones")
    if not new.columns.equals(right.frame.columns):
        raise LinkInputError(f"the rows added must have the fitted right table's columns {list(right.frame.columns)}; "
                             f"got {list(new.columns)}")
    _updatable([*right.blocks.values(), *right.lexical.values()])
    texts = serialize(new, config.right_on, "right", keep_symbols=config.keep_symbol_records).to_numpy(dtype=object)
    new_lexical = lexical_texts(new, config.right_on, "right", texts, config.keep_symbol_records)
    offset = len(right.frame)
    local = np.flatnonzero(texts != "")  # positions within ``new``
    new_ids = offset + local
    block_groups = groups(keys, local)
    vectors = encode_texts(encoder(), texts[local], "document", context) if right.semantic and len(local) else None
    for key, positions in block_groups:
        if right.semantic:
            assert vectors is not None
            _grow(right.blocks, key, vectors[positions], new_ids[positions], context, config.retriever,
                  config.retriever_options)
        if right.lexical:
            _grow(right.lexical, key, list(new_lexical[local[positions]]), new_ids[positions], context,
                  config.lexical_retriever, config.lexical_options)
        right.block_sizes[key] = right.block_sizes.get(key, 0) + len(positions)
    if right.vectors is not None and right.vector_rows is not None and vectors is not None:
        right.vector_rows = np.concatenate([right.vector_rows, np.full(len(new), -1, dtype=np.int64)])
        right.vector_rows[new_ids] = len(right.vectors) + np.arange(len(new_ids))
        right.vectors = np.vstack([right.vectors, vectors])
    elif right.vector_rows is not None:
        right.vector_rows = np.concatenate([right.vector_rows, np.full(len(new), -1, dtype=np.int64)])
    right.frame = pd.concat([right.frame, new])
    right.texts = np.concatenate([right.texts, texts])
    right.lexical_texts = np.concatenate([right.lexical_texts, new_lexical])
    if keys is not None and right.keys is not None:
        right.keys = np.concatenate([right.keys, keys])
    right.ids = np.concatenate([right.ids, new_ids])
    right.profile = script_profile(right.lexical_texts[right.ids])
    context.report.update(right_rows=len(right.frame), rows_added=len(new))
    return right


def _grow(retrievers: dict[Any, Any], key: Any, payload: Any, ids: np.ndarray, context: RunContext, name: str,
          options: Any) -> None:
    """Add rows to the retriever of block ``key``, or build one for a new block."""
    if key in retrievers:
        _timed(context, "add", retrievers[key].add, payload, ids)
        return
    retriever = context.create("retriever", name, options=options)
    context.run("build", retriever, vectors=payload, ids=ids)
    retrievers[key] = retriever


def _timed(context: RunContext, stage: str, method: Callable[..., Any], *args: Any) -> None:
    start = time.perf_counter()
    method(*args)
    context.timings[stage] = context.timings.get(stage, 0.0) + time.perf_counter() - start


def remove_rows(right: FittedRight, labels: Any, context: RunContext) -> FittedRight:
    """``right`` without the rows whose index labels are in ``labels``; returns it."""
    wanted = pd.Index(np.atleast_1d(np.asarray(labels, dtype=object)) if not isinstance(labels, pd.Index) else labels)
    live = np.zeros(len(right.frame), dtype=bool)
    live[right.ids] = True
    found = right.frame.index.isin(wanted) & live
    missing = wanted[~wanted.isin(right.frame.index[live])]
    if len(missing):
        shown = ", ".join(map(repr, list(missing[:5])))
        raise LinkInputError(f"cannot remove {len(missing)} label(s) not among the indexed right rows: {shown} "
                             "(labels are the right table's index; set it with df.set_index('id') before fit)")
    drop = np.flatnonzero(found)
    _updatable([*right.blocks.values(), *right.lexical.values()])
    keys = right.keys
    for retrievers in (right.blocks, right.lexical):
        for key, retriever in list(retrievers.items()):
            mine = drop if keys is None else drop[pd.Series(keys[drop]).eq(key).to_numpy()]
            if len(mine):
                _timed(context, "remove", retriever.remove, mine)
    for key, positions in groups(keys, np.intersect1d(right.ids, drop)):
        right.block_sizes[key] -= len(positions)
    for key in [key for key, size in right.block_sizes.items() if size <= 0]:
        del right.block_sizes[key]
        right.blocks.pop(key, None)
        right.lexical.pop(key, None)
    right.ids = np.setdiff1d(right.ids, drop)
    if right.vector_rows is not None:
        right.vector_rows = right.vector_rows.copy()
        right.vector_rows[drop] = -1
    right.profile = script_profile(right.lexical_texts[right.ids])
    context.report.update(rows_removed=len(drop))
    return right


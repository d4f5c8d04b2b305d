"""Saving, loading and updating a built ``char-ngram`` index (private helper of :mod:`lexical_retriever`).

The index is, per analyzer part, a scikit-learn ``TfidfVectorizer`` (vocabulary and IDF) and an
L2-normalised TF-IDF block of the index matrix.  Nothing is pickled: vocabularies are JSON, the IDF
and ids are ``.npy``, the matrix a scipy ``.npz`` (numeric arrays only).

Updates never re-analyse the rows already indexed.  A row of a block is ``tf * idf`` scaled to unit
length, so with a new IDF it becomes ``row * idf_new / idf_old``, scaled to unit length again (its
length cancels out).  The document frequencies are the columns' non-zero counts (a term occurs in a
row exactly when its TF-IDF weight there is positive), so the IDF is refitted as scikit-learn fits it
(``smooth_idf``: ``ln((1 + n) / (1 + df)) + 1``).  New terms join the end of a part's vocabulary
(column order does not change any score); terms no row holds any more leave it, as a fit over the
remaining rows would not know them.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np

STATE_FILE = "lexical.json"
MATRIX_FILE = "matrix.npz"
#: Rows of a part copied at once by :func:`stack_parts`.
STACK_ROWS = 1 << 16


def save_state(index: Any, folder: Any) -> None:
    """Write a built char-ngram retriever ``index`` into ``folder``."""
    import scipy.sparse as sp

    state = {
        "parts": list(index.parts), "auto": bool(index.auto), "right_groups": sorted(index.right_groups),
        "analysis": index.analysis, "index_type": index.index_type,
        "vocabularies": [{term: int(col) for term, col in v.vocabulary_.items()} for v in index.vectorizers],
        "right_keys": [str(key) for key in index.right_keys],
    }
    (folder / STATE_FILE).write_text(json.dumps(state, ensure_ascii=False, default=str), encoding="utf-8")
    for number, vectorizer in enumerate(index.vectorizers):
        np.save(folder / f"idf{number}.npy", np.asarray(vectorizer.idf_), allow_pickle=False)
    np.save(folder / "ids.npy", index.ids, allow_pickle=False)
    sp.save_npz(folder / MATRIX_FILE, index.matrix.tocsr(), compressed=False)


def load_state(index: Any, folder: Any, make_vectorizer: Any) -> None:
    """Read what :func:`save_state` wrote into ``index``; ``make_vectorizer(part)`` builds an unfitted vectorizer."""
    import scipy.sparse as sp

    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    index.parts, index.auto = tuple(state["parts"]), bool(state["auto"])
    index.right_groups, index.analysis = frozenset(state["right_groups"]), state["analysis"]
    index.index_type = state["index_type"]
    index.vectorizers = []
    for number, (part, vocabulary) in enumerate(zip(index.parts, state["vocabularies"])):
        vectorizer = make_vectorizer(part)
        vectorizer.vocabulary_ = vocabulary
        vectorizer.idf_ = np.load(folder / f"idf{number}.npy", allow_pickle=False)
        index.vectorizers.append(vectorizer)
    index.right_keys = np.asarray(state["right_keys"], dtype=object)
    index.ids = np.load(folder / "ids.npy", allow_pickle=False)
    index.matrix = sp.load_npz(folder / MATRIX_FILE).tocsr()
    if index.matrix.shape != (len(index.ids), sum(len(v.vocabulary_) for v in index.vectorizers)):
        raise ValueError(f"{folder}: the lexical matrix's shape {index.matrix.shape} does not match its ids and vocabularies")


def _blocks(index: Any) -> list[Any]:
    """The index matrix split into one column block per part."""
    bounds = np.cumsum([0] + [len(v.vocabulary_) for v in index.vectorizers])
    return [index.matrix[:, lo:hi].tocsr() for lo, hi in itertools.pairwise(bounds)]


def _idf(block: Any, n_rows: int) -> np.ndarray:
    """The IDF scikit-learn would fit on ``block``'s rows (a term's document frequency: its column's non-zeros)."""
    df = np.diff(block.tocsc().indptr).astype(np.float64)
    return (np.log((1.0 + n_rows) / (1.0 + df)) + 1.0).astype(np.float32)


def _weighted(block: Any, factor: np.ndarray) -> Any:
    """``block`` with each column multiplied by ``factor``, rows scaled to unit length."""
    from sklearn.preprocessing import normalize

    block = block.tocsr().astype(np.float32, copy=True)
    block.data = (block.data * factor[block.indices]).astype(np.float32)
    return normalize(block, norm="l2", copy=False)


def add_rows(index: Any, inputs: list[list[str]], ids: np.ndarray, keys: list[str]) -> None:
    """Add rows to ``index``: ``inputs[i]`` are the new rows' analyzer inputs for part ``i``, ``keys`` their
    lexical keys (for the pairs' string similarities)."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer

    n_rows = len(index.ids) + len(ids)
    blocks, vectorizers = [], []
    for vectorizer, block, texts in zip(index.vectorizers, _blocks(index), inputs):
        vocabulary = dict(vectorizer.vocabulary_)
        counter = CountVectorizer(analyzer=vectorizer.build_analyzer(), dtype=np.float32)
        try:
            counts = counter.fit_transform(texts).tocoo()
            terms = counter.get_feature_names_out()
        except ValueError:  # no term in any new text
            counts, terms = sp.coo_matrix((len(texts), 0), dtype=np.float32), np.zeros(0, dtype=object)
        for term in terms:
            vocabulary.setdefault(term, len(vocabulary))
        columns = np.asarray([vocabulary[t] for t in terms], dtype=np.int64)
        tf = counts.data.astype(np.float32)
        if vectorizer.sublinear_tf:
            tf = np.log(tf) + 1.0
        new = sp.csr_matrix((tf, (counts.row, columns[counts.col])), shape=(len(texts), len(vocabulary)))
        old = sp.csr_matrix((block.data, block.indices, block.indptr), shape=(block.shape[0], len(vocabulary)))
        idf = _idf(sp.vstack([old, new], format="csr"), n_rows)
        change = np.ones(len(vocabulary), dtype=np.float64)
        change[: len(vectorizer.idf_)] = idf[: len(vectorizer.idf_)] / np.asarray(vectorizer.idf_, dtype=np.float64)
        blocks.append(sp.vstack([_weighted(old, change), _weighted(new, idf.astype(np.float64))], format="csr"))
        vectorizers.append(_fitted(vectorizer, vocabulary, idf))
    index.vectorizers = vectorizers
    _set_matrix(index, blocks)
    index.ids = np.concatenate([index.ids, np.asarray(ids, dtype=np.int64)])
    index.right_keys = np.concatenate([index.right_keys, np.asarray(keys, dtype=object)])


def remove_rows(index: Any, ids: np.ndarray) -> None:
    """Drop the rows ``ids`` from ``index`` (ids not held are ignored)."""
    keep = ~np.isin(index.ids, np.asarray(ids, dtype=np.int64))
    if keep.all():
        return
    n_rows, blocks, vectorizers = int(keep.sum()), [], []
    for vectorizer, block in zip(index.vectorizers, _blocks(index)):
        block = block[keep]
        held = np.diff(block.tocsc().indptr) > 0  # terms some remaining row holds
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        idf = _idf(block, n_rows)
        block = _weighted(block, idf.astype(np.float64) / np.asarray(vectorizer.idf_, dtype=np.float64))
        if not held.any():  # nothing left: keep one (unused) term so the vectorizer stays usable
            held[:1] = True
        vocabulary = {term: col for col, term in enumerate(t for t, h in zip(terms, held) if h)}
        vectorizers.append(_fitted(vectorizer, vocabulary, idf[held]))
        blocks.append(block[:, np.flatnonzero(held)])
    index.vectorizers = vectorizers
    _set_matrix(index, blocks)
    index.ids, index.right_keys = index.ids[keep], index.right_keys[keep]


def _set_matrix(index: Any, blocks: list[Any]) -> None:
    index.matrix = stack_parts(blocks)
    index.vectorizer = index.vectorizers[0]


def stack_parts(blocks: list[Any]) -> Any:
    """The parts' CSR blocks side by side (``scipy.sparse.hstack``'s matrix, float32), emptying ``blocks``: each
    part is copied a slice of rows at a time and freed once copied, so the index's entries are held at most
    about 1.5 times over, where ``hstack`` holds them three times (the parts, its concatenations, the result)."""
    import scipy.sparse as sp

    if len(blocks) == 1:
        return blocks.pop().tocsr()
    n_rows = blocks[0].shape[0]
    lengths = [np.diff(b.indptr).astype(np.int64) for b in blocks]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.sum(lengths, axis=0), out=indptr[1:])
    n_columns = sum(b.shape[1] for b in blocks)
    index_dtype = np.int32 if max(indptr[-1], n_columns) <= np.iinfo(np.int32).max else np.int64
    indices, data = np.empty(indptr[-1], dtype=index_dtype), np.empty(indptr[-1], dtype=np.float32)
    before, first_column = np.zeros(n_rows, dtype=np.int64), 0  # each row's entries of the earlier parts
    for length in lengths:
        block = blocks.pop(0)
        starts = block.indptr.astype(np.int64)
        for lo in range(0, n_rows, STACK_ROWS):
            hi = min(lo + STACK_ROWS, n_rows)
            source = slice(starts[lo], starts[hi])
            shift = indptr[lo:hi] + before[lo:hi] - starts[lo:hi]  # where a row's entries go, less where they are
            target = np.repeat(shift, length[lo:hi]) + np.arange(starts[lo], starts[hi])
            indices[target] = block.indices[source] + first_column
            data[target] = block.data[source]
        before += length
        first_column += block.shape[1]
        del block
    return sp.csr_matrix((data, indices, indptr.astype(index_dtype)), shape=(n_rows, n_columns))


def _fitted(vectorizer: Any, vocabulary: dict[str, int], idf: np.ndarray) -> Any:
    """A copy of ``vectorizer`` (same parameters) fitted with ``vocabulary`` and ``idf``."""
    from sklearn.base import clone

    fitted = clone(vectorizer)
    fitted.vocabulary_, fitted.idf_ = vocabulary, idf
    return fitted

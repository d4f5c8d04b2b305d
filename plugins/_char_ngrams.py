"""Character n-gram TF-IDF computed with NumPy (private helper of :mod:`lexical_retriever`).

scikit-learn's ``TfidfVectorizer`` cuts every text into n-grams in Python, one string and one dict
lookup per n-gram (~2 s a part for the 100,000 GeoNames names of ``evals.scale``, 1-3-grams, on the lexical
stage's critical path), and importing it costs ~1 s in a fresh process.  :class:`NgramTfidfVectorizer`
computes the same thing on arrays, without importing scikit-learn: each n-gram of up to three characters
is one int64 (its code points + 1, 21 bits each, left-aligned, so integer order is the strings' order),
numbered by a hash table (pandas) in the order scikit-learn first meets them, and counted with one sort.
The count matrix is built exactly as scikit-learn builds it (the same vocabulary dict, entries in the same
order within rows, int32 indices), and weighted with scikit-learn's operations in its order (float32
``log``, ``+ 1``, IDF; each row's squared entries summed in float64 in storage order, then divided by the
square root), so vocabulary, IDF and rows are bit for bit scikit-learn's (``tests/test_char_ngrams.py``
compares them).  Texts NumPy cannot read (lone surrogates) go to scikit-learn itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

#: Longest n-gram one int64 code holds (21 bits a character).
MAX_N = 3
_BITS = 21
#: Characters cut at once (bounds the work arrays: ~0.8 million n-grams, ~40 MiB of int64 arrays).
CHUNK_CHARS = 250_000
#: Entries scaled at once by :func:`unit_rows`.
UNIT_ROWS_BLOCK = 1 << 20
#: What scikit-learn's char analyzers collapse to one space before cutting.
_WHITE_SPACES = re.compile(r"\s\s+")
ANALYZERS = ("char", "char_wb")


class NgramTfidfVectorizer:
    """scikit-learn's ``TfidfVectorizer(analyzer=..., ngram_range=..., sublinear_tf=..., dtype=...,
    lowercase=False)`` for ``char``/``char_wb`` n-grams of 1 to 3 characters (smooth IDF, L2 rows)."""

    def __init__(self, analyzer: str = "char_wb", ngram_range: tuple[int, int] = (1, 3), sublinear_tf: bool = True,
                 dtype: Any = np.float32) -> None:
        low, high = ngram_range
        if analyzer not in ANALYZERS or not 1 <= low <= high <= MAX_N:
            raise ValueError(f"NgramTfidfVectorizer cuts {ANALYZERS} n-grams of 1 to {MAX_N} characters; "
                             f"got {analyzer!r}, {ngram_range}")
        self.analyzer, self.ngram_range, self.sublinear_tf, self.dtype = analyzer, ngram_range, sublinear_tf, dtype

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments (what ``sklearn.base.clone`` copies)."""
        return {"analyzer": self.analyzer, "ngram_range": self.ngram_range, "sublinear_tf": self.sublinear_tf,
                "dtype": self.dtype}

    def fit_transform(self, raw_documents: Iterable[str], y: Any = None) -> Any:
        """Learn the vocabulary and IDF; return the TF-IDF rows (CSR)."""
        documents = [str(d) for d in raw_documents]
        counted = self._fit_counts(documents)
        if counted is None:  # lone surrogates or nothing to count: scikit-learn's result, or its error
            reference = self._reference()
            rows = reference.fit_transform(documents)
            self.vocabulary_, self.idf_ = reference.vocabulary_, reference.idf_
            return rows
        counts, self.vocabulary_ = counted
        # scikit-learn's smooth IDF, in the counts' dtype: ln((1 + n) / (1 + df)) + 1
        document_frequency = np.bincount(counts.indices, minlength=counts.shape[1]).astype(counts.dtype) + 1.0
        idf = np.full_like(document_frequency, fill_value=counts.shape[0] + 1, dtype=counts.dtype)
        idf /= document_frequency
        np.log(idf, out=idf)
        idf += 1.0
        self.idf_ = idf
        return self._weighted(counts)

    def fit(self, raw_documents: Iterable[str], y: Any = None) -> NgramTfidfVectorizer:
        """Learn the vocabulary and IDF."""
        self.fit_transform(raw_documents)
        return self

    def transform(self, raw_documents: Iterable[str]) -> Any:
        """The TF-IDF rows (CSR) of ``raw_documents`` in the fitted vocabulary (unknown n-grams ignored)."""
        documents = [str(d) for d in raw_documents]
        if not hasattr(self, "vocabulary_"):
            raise ValueError("NgramTfidfVectorizer.transform needs fit (or vocabulary_ and idf_) first")
        counts = self._fixed_counts(documents)
        if counts is None:
            reference = self._reference()
            reference.vocabulary_, reference.idf_ = self.vocabulary_, self.idf_
            return reference.transform(documents)
        return self._weighted(counts)

    def build_analyzer(self) -> Any:
        """scikit-learn's analyzer for these options (text -> list of n-grams)."""
        return self._reference().build_analyzer()

    def _reference(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range, sublinear_tf=self.sublinear_tf,
                               dtype=self.dtype, lowercase=False)

    def _weighted(self, counts: Any) -> Any:
        """``TfidfTransformer.transform``: sublinear TF, times IDF, rows scaled to unit length."""
        data = counts.data
        if self.sublinear_tf:
            np.log(data, out=data)
            data += 1.0
        data *= self.idf_[counts.indices]
        return unit_rows(counts)

    # -- counting ------------------------------------------------------------------------------------
    def _fit_counts(self, documents: list[str]) -> tuple[Any, dict[str, int]] | None:
        """The count matrix and vocabulary scikit-learn's ``fit_transform`` builds: terms numbered in the order
        they were first cut (its dict), each row's entries in that order (its ``sort_indices`` before
        ``_sort_features``: the order that decides the float sums of the rows' lengths), then columns renumbered
        in the terms' sorted order.  Chunks of documents are cut twice (the vocabulary, then the counts) unless
        one chunk holds them all."""
        import pandas as pd

        bounds = _chunk_bounds(documents)
        seen, kept, cut_sizes = [], None, []
        for lo, hi in bounds:
            cut = self._cut(documents[lo:hi])
            if cut is None:
                return None
            seen.append(pd.unique(cut[0]))  # a hash table: distinct codes in the order first cut
            cut_sizes.append(len(cut[0]))
            kept = cut if len(bounds) == 1 else None
        first_cut = pd.unique(np.concatenate(seen)) if len(seen) > 1 else seen[0]
        n_terms = len(first_cut)
        if n_terms == 0:
            return None
        column = np.empty(n_terms, dtype=np.int64)
        column[np.argsort(first_cut, kind="stable")] = np.arange(n_terms)  # a term's place in sorted order
        lookup = pd.Index(first_cut)
        entries = _Entries(len(documents), sum(cut_sizes), self.dtype)  # at most one entry per n-gram cut
        for lo, hi in bounds:
            codes, rows = kept if kept is not None else self._cut(documents[lo:hi])  # type: ignore[misc]
            keys, counts = _row_counts(rows * n_terms + lookup.get_indexer(codes))
            entries.add(lo, hi, keys // n_terms, column[keys % n_terms], counts)
        terms = _terms(first_cut)  # in the order of scikit-learn's dict
        return entries.csr(n_terms), dict(zip(terms, column.tolist()))

    def _fixed_counts(self, documents: list[str]) -> Any:
        """Counts of the n-grams in the fitted vocabulary (unknown ones dropped), each row's entries by
        column, as scikit-learn's ``transform`` leaves them; None where scikit-learn must cut."""
        lookup, columns = self._lookup()
        n_columns = len(self.vocabulary_)
        entries = _Entries(len(documents), 0, self.dtype)  # grown as chunks are added
        for lo, hi in _chunk_bounds(documents):
            cut = self._cut(documents[lo:hi])
            if cut is None:
                return None
            codes, rows = cut
            at = lookup.get_indexer(codes)
            found = at >= 0
            keys, counts = _row_counts(rows[found] * n_columns + columns[at[found]])
            entries.add(lo, hi, keys // n_columns, keys % n_columns, counts)
        return entries.csr(n_columns)

    def _cut(self, documents: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """Every n-gram's code and document row, in the order scikit-learn cuts them (unit by unit, each unit's
        1-grams, then 2-grams, ...); None for texts NumPy cannot read (lone surrogates)."""
        try:
            if self.analyzer == "char_wb":  # each word, padded with a space on both sides
                points, lengths, row_of_unit = padded_words(documents)
            else:
                units = [_WHITE_SPACES.sub(" ", d) for d in documents]
                points = _code_points("".join(units))
                lengths = np.fromiter(map(len, units), dtype=np.int64, count=len(units))
                row_of_unit = np.arange(len(documents))
        except UnicodeEncodeError:
            return None
        points = points + 1
        low, high = self.ngram_range
        per_length = [np.maximum(lengths - n + 1, 0) for n in range(low, high + 1)]  # n-grams per unit and length
        total = np.sum(per_length, axis=0)
        placed = np.cumsum(total) - total  # where each unit's n-grams begin in the output
        unit_of_char = np.repeat(np.arange(len(lengths)), lengths)
        char_start = np.cumsum(lengths) - lengths
        position, unit_end = np.arange(len(points)), np.repeat(char_start + lengths, lengths)
        padded = np.concatenate([points, np.zeros(MAX_N, dtype=np.int64)])
        codes = np.empty(int(total.sum()), dtype=np.int64)
        for n, count in zip(range(low, high + 1), per_length):
            starts = np.flatnonzero(position + n <= unit_end)
            unit = unit_of_char[starts]
            code = np.zeros(len(starts), dtype=np.int64)
            for i in range(n):
                code |= padded[starts + i] << (_BITS * (MAX_N - 1 - i))
            codes[placed[unit] + (starts - char_start[unit])] = code
            placed += count
        return codes, np.repeat(row_of_unit, total)

    # -- helpers -------------------------------------------------------------------------------------
    def _lookup(self) -> tuple[Any, np.ndarray]:
        """The fitted vocabulary as (an index of its codes, their columns), remembered for this vocabulary."""
        import pandas as pd

        vocabulary = self.vocabulary_
        cached = self.__dict__.get("_gram_lookup")
        if cached is not None and cached[0] is vocabulary:
            return cached[1]
        terms = list(vocabulary)
        codes = np.fromiter((_code(t) for t in terms), dtype=np.int64, count=len(terms))
        columns = np.fromiter((vocabulary[t] for t in terms), dtype=np.int64, count=len(terms))
        short = codes >= 0  # longer terms (another analyzer's) are never cut here
        lookup = (pd.Index(codes[short]), columns[short])
        self.__dict__["_gram_lookup"] = (vocabulary, lookup)
        return lookup


def padded_words(documents: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``char_wb``'s units: every word (a run of non-whitespace, as ``str.split`` finds them) with a space
    before and after; their code points one after the other, their lengths and their documents' rows."""
    points = _code_points("\n".join(documents))
    document_lengths = np.fromiter(map(len, documents), dtype=np.int64, count=len(documents))
    row_of_char = np.repeat(np.arange(len(documents)), document_lengths + 1)[: len(points)]
    in_word = ~np.isin(points, _whitespace())
    edges = np.diff(np.concatenate([[0], in_word.astype(np.int8), [0]]))
    word_start, word_end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = word_end - word_start + 2
    unit_start = np.cumsum(lengths) - lengths
    padded = np.full(int(lengths.sum()), ord(" "), dtype=np.int64)
    chars = np.flatnonzero(in_word)
    word = np.repeat(np.arange(len(word_start)), word_end - word_start)
    padded[unit_start[word] + 1 + chars - word_start[word]] = points[chars]
    return padded, lengths, row_of_char[word_start]


@functools.cache
def _whitespace() -> np.ndarray:
    """The code points ``str.isspace`` (so ``str.split``) treats as whitespace (all below U+3001)."""
    return np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.int64)


def _code_points(text: str) -> np.ndarray:
    """``text``'s code points (int64); UnicodeEncodeError for lone surrogates."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


def unit_rows(matrix: Any) -> Any:
    """Scale a CSR matrix's rows to unit L2 length in place, as scikit-learn's ``normalize`` does: each row's
    float32 squares summed in float64 in storage order (not NumPy's pairwise sums), divided in float64.
    No temporary as long as the matrix's entries (a million-row index stays within its memory)."""
    data = matrix.data
    lengths = np.diff(matrix.indptr)
    longest_first = np.argsort(-lengths, kind="stable")
    starts, descending = matrix.indptr[longest_first], -lengths[longest_first]
    sums = np.zeros(len(lengths), dtype=np.float64)
    for place in range(int(lengths.max(initial=0))):  # every row's entry at this place, in storage order
        have = int(np.searchsorted(descending, -place, side="left"))  # the rows longer than `place`
        entries = data[starts[:have] + place]
        sums[longest_first[:have]] += (entries * entries).astype(np.float64)
    norms = np.sqrt(sums)
    for lo in range(0, len(data), UNIT_ROWS_BLOCK):  # entries a block at a time
        block = slice(lo, lo + UNIT_ROWS_BLOCK)
        rows = np.searchsorted(matrix.indptr, np.arange(lo, min(lo + UNIT_ROWS_BLOCK, len(data))), side="right") - 1
        scale = norms[rows]
        nonzero = scale != 0.0
        values = data[block]
        values[nonzero] = (values[nonzero] / scale[nonzero]).astype(data.dtype)
    return matrix


def _chunk_bounds(documents: list[str]) -> list[tuple[int, int]]:
    """(start, stop) of runs of documents holding about :data:`CHUNK_CHARS` characters (at least one document)."""
    ends = np.cumsum(np.fromiter(map(len, documents), dtype=np.int64, count=len(documents)) + 2)
    bounds, lo = [], 0
    while lo < len(documents):
        base = ends[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, base + CHUNK_CHARS, side="right")))
        bounds.append((lo, hi))
        lo = hi
    return bounds or [(0, 0)]


def _row_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``row * width + column`` keys, ascending, and how often each occurs."""
    keys = np.sort(keys)
    distinct = np.ones(len(keys), dtype=bool)
    distinct[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(distinct)
    return keys[starts], np.diff(np.append(starts, len(keys)))


def _code(term: str) -> int:
    """The int64 code of an n-gram of up to three characters (-1 for longer ones: never matched)."""
    if len(term) > MAX_N:
        return -1
    return sum((ord(c) + 1) << (_BITS * (MAX_N - 1 - i)) for i, c in enumerate(term))


def _terms(codes: np.ndarray) -> list[str]:
    """The n-grams of ``codes`` (a fixed-width array, then the few holding a NUL character one by one)."""
    mask = (1 << _BITS) - 1
    slots = np.stack([(codes >> (_BITS * (MAX_N - 1 - i))) & mask for i in range(MAX_N)], axis=1)
    terms = np.maximum(slots - 1, 0).astype("<u4").view(f"<U{MAX_N}").ravel().tolist()  # absent slots: trailing NULs
    for at in np.flatnonzero((slots == 1).any(axis=1)):  # a real NUL character would be dropped with them
        terms[at] = "".join(chr(int(s) - 1) for s in slots[at] if s)
    return terms


class _Entries:
    """A count matrix's entries, written chunk after chunk into arrays allocated once (grown and trimmed in
    place) rather than kept per chunk and concatenated: long-lived chunk-sized arrays between the chunks'
    temporaries fragmented glibc's heap (~120 MiB more at the peak of a 1M-row index build)."""

    def __init__(self, n_rows: int, capacity: int, dtype: Any) -> None:
        self.per_row = np.zeros(n_rows, dtype=np.int64)
        self.columns = np.empty(max(capacity, 1), dtype=np.int32)
        self.counts = np.empty(max(capacity, 1), dtype=dtype)
        self.size = 0

    def add(self, lo: int, hi: int, rows: np.ndarray, columns: np.ndarray, counts: np.ndarray) -> None:
        """Append the entries of documents ``lo:hi`` (``rows`` counted from ``lo``, ascending)."""
        end = self.size + len(columns)
        if end > len(self.columns):
            self._resize(max(end, 2 * len(self.columns)))
        self.columns[self.size : end] = columns
        self.counts[self.size : end] = counts
        self.per_row[lo:hi] = np.bincount(rows, minlength=hi - lo)
        self.size = end

    def csr(self, n_columns: int) -> Any:
        """The CSR count matrix, rows in order (int32 indices, as scikit-learn's)."""
        import scipy.sparse as sp

        self._resize(self.size)
        indptr = np.zeros(len(self.per_row) + 1, dtype=np.int64)
        np.cumsum(self.per_row, out=indptr[1:])
        index_dtype = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
        return sp.csr_matrix((self.counts, self.columns.astype(index_dtype, copy=False), indptr.astype(index_dtype)),
                             shape=(len(self.per_row), n_columns))

    def _resize(self, size: int) -> None:
        self.columns.resize(size, refcheck=False)  # realloc: large blocks move with mremap, not copied
        self.counts.resize(size, refcheck=False)

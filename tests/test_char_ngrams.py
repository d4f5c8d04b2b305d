"""The char-ngram retriever's NumPy n-gram counting gives scikit-learn's TF-IDF rows bit for bit."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ltengine_plugins import _char_ngrams
from ltengine_plugins._char_ngrams import NgramTfidfVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer

# spaces of several kinds, NUL, Latin with accents, Cyrillic, CJK, kana, an astral-plane character
ALPHABET = st.sampled_from(list(" \t\n\u3000\u00a0ab\x00éñДжд東京とうカ𝔘-."))
TEXTS = st.lists(st.text(ALPHABET, max_size=14), min_size=1, max_size=25)
SETTINGS = [("char_wb", (1, 3)), ("char_wb", (2, 3)), ("char_wb", (1, 1)), ("char", (1, 3)), ("char", (2, 2)),
            ("char", (3, 3))]


def pair(analyzer: str, ngram_range: tuple[int, int], sublinear_tf: bool = True
         ) -> tuple[TfidfVectorizer, NgramTfidfVectorizer]:
    options = {"analyzer": analyzer, "ngram_range": ngram_range, "sublinear_tf": sublinear_tf, "dtype": np.float32}
    return TfidfVectorizer(**options, lowercase=False), NgramTfidfVectorizer(**options)


def assert_same_rows(expected, got) -> None:
    assert type(got) is type(expected)
    assert got.shape == expected.shape
    for field in ("indptr", "indices", "data"):
        assert getattr(got, field).dtype == getattr(expected, field).dtype, field
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field), err_msg=field)


def assert_same(reference: TfidfVectorizer, fast: NgramTfidfVectorizer, fit_texts: list[str],
                query_texts: list[str]) -> None:
    try:
        expected = reference.fit_transform(fit_texts)
    except ValueError as error:  # an empty vocabulary: the same error
        with pytest.raises(ValueError, match=re.escape(str(error))):
            fast.fit_transform(fit_texts)
        return
    assert_same_rows(expected, fast.fit_transform(fit_texts))
    assert list(fast.vocabulary_.items()) == list(reference.vocabulary_.items())  # same dict, same order
    np.testing.assert_array_equal(fast.idf_, reference.idf_)
    assert_same_rows(reference.transform(query_texts), fast.transform(query_texts))


@settings(max_examples=60, deadline=None)
@given(fit_texts=TEXTS, query_texts=TEXTS, setting=st.sampled_from(SETTINGS), chunk=st.sampled_from([3, 40, 10**6]),
       sublinear_tf=st.booleans())
def test_same_tfidf_rows_as_scikit_learn(fit_texts, query_texts, setting, chunk, sublinear_tf) -> None:
    """Any texts, both analyzers, several n-gram ranges, one chunk or many: the same rows, vocabulary and IDF."""
    original = _char_ngrams.CHUNK_CHARS
    _char_ngrams.CHUNK_CHARS = chunk  # small chunks: the vocabulary gathered over chunks, counted in a second pass
    try:
        assert_same(*pair(*setting, sublinear_tf=sublinear_tf), fit_texts, query_texts)
    finally:
        _char_ngrams.CHUNK_CHARS = original


def test_names_in_many_scripts() -> None:
    names = ["Gazprom", "Газпром", "ガスプロム", "东京 电力", "Société Générale", "  spaced   out  ", "a", "", "x\x00y",
             "Ünïcödé GmbH & Co. KG", "𝔘𝔫𝔦", "Tokyo Electric Power Company Holdings, Inc."] * 7
    for setting in SETTINGS:
        assert_same(*pair(*setting), names, ["Gazprom PJSC", "газ", "東京", "zzz", ""])


def test_long_rows_and_scikit_learns_own_path() -> None:
    """Rows of thousands of n-grams (long descriptions); lone surrogates, which NumPy cannot read, go to
    scikit-learn itself; the index's updates clone it and use scikit-learn's analyzer."""
    from sklearn.base import clone

    rng = np.random.default_rng(0)
    long_texts = ["".join(rng.choice(list("abcdefgh ijklmnop"), size=3000)) for _ in range(5)] + ["x"]
    assert_same(*pair("char", (1, 3)), long_texts, long_texts[:2])
    texts = ["alpha beta", "beta gamma", "gamma\ud800delta"]
    assert_same(*pair("char_wb", (1, 3)), texts, ["alpha", "delta\ud800"])
    reference, fast = pair("char_wb", (2, 3))
    assert fast.build_analyzer()("ab cd") == reference.build_analyzer()("ab cd")
    copy = clone(fast)
    assert type(copy) is NgramTfidfVectorizer and copy.get_params() == fast.get_params()
    with pytest.raises(ValueError, match="1 to 3 characters"):
        NgramTfidfVectorizer(analyzer="word")
    with pytest.raises(ValueError, match="needs fit"):
        NgramTfidfVectorizer().transform(["x"])


def test_a_vocabulary_set_from_outside_is_used() -> None:
    """The retriever's saved indexes set ``vocabulary_`` and ``idf_`` (in any column order) and transform with them."""
    reference, fast = pair("char_wb", (1, 3))
    reference.fit(["kyoto", "osaka", "kobe"])
    shuffled = dict(reversed(list(reference.vocabulary_.items())))
    fast.vocabulary_, fast.idf_ = shuffled, reference.idf_
    assert_same_rows(reference.transform(["kyoto station", "nara"]), fast.transform(["kyoto station", "nara"]))


def test_rows_scaled_as_scikit_learn_scales_them() -> None:
    """Long rows of widely spread float32 values, summed in float64 as scikit-learn sums them (float32 sums
    would round differently)."""
    import scipy.sparse as sp
    from ltengine_plugins._char_ngrams import unit_rows
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(0)
    matrix = sp.random(3000, 400, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    matrix.data = rng.lognormal(0, 3, size=len(matrix.data)).astype(np.float32)
    matrix.data[matrix.indptr[5] : matrix.indptr[6]] = 0
    matrix.eliminate_zeros()  # an empty row stays empty
    assert_same_rows(normalize(matrix, copy=True), unit_rows(matrix.copy()))


def test_words_split_as_python_splits_them() -> None:
    """``char_wb`` finds words where ``str.split`` does: every code point ``str.isspace`` calls whitespace."""
    from ltengine_plugins._char_ngrams import _whitespace, padded_words

    assert set(_whitespace().tolist()) == {c for c in range(0x110000) if chr(c).isspace()}
    documents = ["  Tokyo\u3000to\tkyo\n", "", "a\u2028b\x1cc", "\u00a0"]
    points, lengths, rows = padded_words(documents)
    units = [f" {word} " for document in documents for word in document.split()]
    assert "".join(map(chr, points)) == "".join(units)
    assert lengths.tolist() == [len(u) for u in units]
    assert rows.tolist() == [row for row, document in enumerate(documents) for _ in document.split()]


def test_query_chunks_longer_than_the_first_grow_the_entries(monkeypatch) -> None:
    """transform's entries grow in place as chunks are added, later ones much longer than the first."""
    monkeypatch.setattr(_char_ngrams, "CHUNK_CHARS", 4)
    fit_texts = ["ab", "abc abd", "Дж дд 東京"]
    query_texts = ["a", "ab"] + ["abc abd abcd " * 20, "Дж дд 東京 " * 30]
    for setting in SETTINGS:
        assert_same(*pair(*setting), fit_texts, query_texts)


@pytest.mark.parametrize("shapes", [[(7, 5), (7, 3)], [(300, 40), (300, 9), (300, 1)], [(0, 4), (0, 2)],
                                    [(50, 6), (50, 0)]])
def test_parts_stacked_as_scipy_stacks_them(monkeypatch, shapes) -> None:
    import scipy.sparse as sp
    from ltengine_plugins import _lexical_state

    monkeypatch.setattr(_lexical_state, "STACK_ROWS", 16)  # many slices of rows
    rng = np.random.default_rng(len(shapes))
    blocks = [sp.random(rows, columns, density=0.3, format="csr", dtype=np.float32, random_state=rng)
              for rows, columns in shapes]
    for block in blocks:
        block.indices = block.indices.astype(np.int32)
        block.indptr = block.indptr.astype(np.int32)
    expected = sp.hstack(blocks, format="csr", dtype=np.float32)
    got = _lexical_state.stack_parts(list(blocks))
    assert_same_rows(expected, got)

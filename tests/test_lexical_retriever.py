"""The ``char-ngram`` lexical retriever: its contract against a brute-force reference, chunking, pair scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ltengine_plugins._sparse_topk import product_top_k

from ltengine import get_host
from ltengine.errors import ConfigError

RIGHT = ["Athens", "Thessaloniki", "Patras", "Heraklion", "Larissa", "Kolkata", "Chennai", "Hyderabad", "Moscow",
         "Saint Petersburg", "Novosibirsk", "Tokyo", "Osaka", "Kyoto", "Seoul", "Busan", "Stockholm", "Oslo",
         "Helsinki", "Copenhagen", "Reykjavik", "Lisbon", "Madrid", "Barcelona", "Valencia", "Seville", "Bilbao"]
LEFT = ["Αθήνα", "Θεσσαλονίκη", "Πάτρα", "कोलकाता", "हैदराबाद", "Москва", "Санкт-Петербург", "東京", "大阪",
        "서울", "부산", "ストックホルム", "Lisboa", "Sevilla", "!!!"]


def _retriever(**options):
    retriever = get_host().registry.get("retriever", "char-ngram").create(options=options)
    retriever.build(RIGHT, np.arange(100, 100 + len(RIGHT)))
    return retriever


def _reference(retriever) -> np.ndarray:
    """Brute-force cosines of every (left, right) pair in the retriever's own vector space."""
    return (retriever.transform(LEFT) @ retriever.matrix.T).toarray()


@pytest.mark.parametrize("max_cells", [2**25, 30, 1])
def test_top_k_and_range_match_brute_force(max_cells: int) -> None:
    retriever = _retriever(max_cells=max_cells)  # 30 cells: one query row per chunk; 1: the floor of one row
    scores = _reference(retriever)
    ids = np.arange(len(LEFT))
    hits = retriever.search(LEFT, ids, 5)
    assert list(hits.columns[:4]) == ["id_l", "id_r", "retrieval_score", "rank"]
    for i in ids:
        row = hits[hits.id_l == i]
        positive = np.flatnonzero(scores[i] > 0)
        expected = sorted(positive, key=lambda j: (-scores[i, j], j))[:5]
        assert list(row.id_r - 100) == expected, LEFT[i]
        np.testing.assert_allclose(row.retrieval_score, scores[i, expected], atol=1e-5)
        assert list(row["rank"]) == list(range(1, len(expected) + 1))
    in_range = retriever.search_range(LEFT, ids, 0.3)
    expected_pairs = {(int(i), int(j) + 100) for i, j in zip(*np.nonzero(scores >= 0.3))}
    assert set(zip(in_range.id_l, in_range.id_r)) == expected_pairs
    assert (in_range.retrieval_score >= 0.3).all()


@pytest.mark.parametrize(("k", "max_cells"), [(1, 2**24), (5, 2**24), (40, 2**24), (5, 100)])
def test_ties_past_the_kept_rows_go_to_the_lowest_positions(k: int, max_cells: int) -> None:
    # 60 copies of a name among 3,000 rows: every copy ties at the k-th score (k = 1, 5: past the 2k + 1 rows the
    # first product keeps; k = 40: the old search kept k + 1 = 41 of them); max_cells = 100 also splits the re-searches
    rng = np.random.default_rng(0)
    right = [f"Other{i} Town" for i in range(3000)]
    copies = np.sort(rng.choice(3000, 60, replace=False))
    for position in copies:
        right[position] = "Springfield"
    retriever = get_host().registry.get("retriever", "char-ngram").create(options={"max_cells": max_cells})
    retriever.build(right, np.arange(1000, 4000))
    queries = ["Springfield", "Other7 Town", "springfield!", "Springfeld", "Springfield"]
    hits = retriever.search(queries, np.arange(len(queries)), k)
    scores = (retriever.transform(queries) @ retriever.matrix.T).toarray()
    for i, query in enumerate(queries):
        expected = sorted(np.flatnonzero(scores[i] > 0), key=lambda j: (-np.float32(scores[i, j]), j))[:k]
        row = hits[hits.id_l == i]
        assert list(row.id_r - 1000) == expected, query
    assert list(hits[hits.id_l == 0].id_r - 1000) == list(copies[:k]) == list(hits[hits.id_l == 4].id_r - 1000)


def test_a_tie_among_more_rows_than_tie_rows_keeps_its_scores(monkeypatch) -> None:
    import ltengine_plugins._sparse_topk as sparse_topk

    products = []
    monkeypatch.setattr(sparse_topk, "product_top_k", lambda *a: products.append(a[3]) or product_top_k(*a))
    retriever = get_host().registry.get("retriever", "char-ngram").create()
    monkeypatch.setattr(type(retriever), "TIE_ROWS", 8)  # the 20 copies below tie past it: positions are not asked
    retriever.build(["Springfield"] * 20 + [f"Other{i} Town" for i in range(200)], np.arange(220))
    hits = retriever.search(["Springfield", "Other3 Town"], np.arange(2), 5)
    assert products == [11]  # not searched again: 20 identical copies reach TIE_ROWS
    first = hits[hits.id_l == 0]
    assert list(first["rank"]) == [1, 2, 3, 4, 5] and first.id_r.is_unique and (first.id_r < 20).all()
    np.testing.assert_allclose(first.retrieval_score, 1.0, atol=1e-6)
    assert hits[hits.id_l == 1].id_r.iloc[0] == 23
    monkeypatch.setattr(type(retriever), "TIE_ROWS", 64)  # now the tie fits: searched again, lowest positions
    assert list(retriever.search(["Springfield"], np.arange(1), 5).id_r) == [0, 1, 2, 3, 4]
    assert products == [11, 11, 64]


def test_cross_script_names_find_their_english_names() -> None:
    hits = _retriever().search(LEFT, np.arange(len(LEFT)), 1)
    best = dict(zip(hits.id_l, (RIGHT[j - 100] for j in hits.id_r)))
    assert best[0] == "Athens" and best[1] == "Thessaloniki" and best[3] == "Kolkata" and best[5] == "Moscow"
    assert best[6] == "Saint Petersburg" and best[9] == "Seoul" and best[12] == "Lisbon"
    top3 = _retriever().search(LEFT[11:12], np.array([0]), 3)
    assert "Stockholm" in [RIGHT[j - 100] for j in top3.id_r]
    assert 14 not in best  # "!!!" shares no n-gram with anything: no candidate rather than a random one
    assert hits.retrieval_score.between(0, 1.0001).all()


def test_k_is_clipped_and_empty_inputs() -> None:
    retriever = _retriever()
    assert len(retriever.search(["Oslo"], np.array([0]), 1000)) <= len(RIGHT)
    assert retriever.search([], np.array([], dtype=np.int64), 3).empty
    empty = get_host().registry.get("retriever", "char-ngram").create()
    empty.build(["", "..."], np.array([0, 1]))
    assert empty.search(["Oslo"], np.array([0]), 2).empty


def test_memory_bound_sets_rows_per_chunk() -> None:
    retriever = _retriever(max_cells=100)
    chunks = list(retriever._chunks(retriever.transform(LEFT)))
    assert all(block.shape[0] * block.shape[1] <= 100 for _, block in chunks)
    assert sum(block.shape[0] for _, block in chunks) == len(LEFT)


def test_score_pairs_are_the_cosines_of_given_pairs() -> None:
    retriever = _retriever()
    scores = _reference(retriever)
    left = [LEFT[0], LEFT[0], LEFT[5], LEFT[14]]
    right_ids = np.array([100, 101, 108, 100])
    expected = [scores[0, 0], scores[0, 1], scores[5, 8], 0.0]
    np.testing.assert_allclose(retriever.score_pairs(left, right_ids), expected, atol=1e-6)
    with pytest.raises(KeyError, match="not in this index"):
        retriever.score_pairs(["x"], np.array([5]))


def test_legal_form_option() -> None:
    plain, stripped = _retriever(), _retriever(legal_forms=True)
    for retriever in (plain, stripped):
        retriever.build(["Gazprom", "Gazprombank", "Rosneft"], np.arange(3))
    hit = stripped.search(["ООО Газпром"], np.array([0]), 1)
    assert hit.id_r[0] == 0 and hit.retrieval_score[0] == pytest.approx(1.0, abs=1e-5)
    assert plain.search(["ООО Газпром"], np.array([0]), 1).retrieval_score[0] < 0.99


def test_registered_as_a_text_retriever_with_checked_options() -> None:
    spec = get_host().registry.get("retriever", "lexical")
    assert spec.name == "char-ngram" and spec.cls.inputs == "texts"
    assert get_host().registry.get("retriever", "faiss").cls.inputs == "vectors"
    with pytest.raises(ConfigError, match="ngram_min <= ngram_max"):
        spec.create(options={"ngram_min": 4, "ngram_max": 2})
    with pytest.raises(ConfigError, match="han must be one of"):
        spec.create(options={"han": "korean"})
    with pytest.raises(ConfigError, match="no option 'ngrams'"):
        spec.create(options={"ngrams": 3})


def test_search_frame_types() -> None:
    hits = _retriever().search(LEFT[:3], np.array([7, 8, 9]), 2)
    assert isinstance(hits, pd.DataFrame) and hits.id_l.dtype == np.int64 and hits.id_r.dtype == np.int64
    assert set(hits.id_l) == {7, 8, 9}


def test_query_keys_are_remembered_and_bounded(monkeypatch) -> None:
    """A hybrid link romanises a left text once: the search and the pair features share its key."""
    from ltengine_plugins.lexical_retriever import CharNgramRetriever

    retriever = CharNgramRetriever()
    calls: list[list[str]] = []
    real = CharNgramRetriever.keys
    monkeypatch.setattr(CharNgramRetriever, "keys", lambda self, texts: calls.append(list(texts)) or real(self, texts))
    retriever.build(["Moscow", "Athens"], np.arange(2))
    calls.clear()
    assert retriever.query_keys(["Москва", "Афины", "Москва"]) == ["moskva", "afiny", "moskva"]
    assert retriever.pair_features(["Москва"], np.array([0]))["score_lexical"][0] > 0
    assert calls == [["Москва", "Афины"]]  # the pair features looked the key up
    monkeypatch.setattr(CharNgramRetriever, "KEY_CACHE_SIZE", 2)
    assert retriever.query_keys(["Париж"]) == ["parizh"] and len(retriever._query_keys) == 1  # full: cleared


@pytest.mark.parametrize("analyzer", ["auto", "romanised", "raw+words", "romanised+raw"])
def test_query_rows_hold_their_ngrams_in_column_order(analyzer: str) -> None:
    """The top-k product walks the index's rows in a query row's order: in column order it reads them in memory
    order (evals/results/lexical_search_100000.json).  Rows remembered from an earlier call keep that order."""
    retriever = _retriever(analyzer=analyzer)
    first = retriever.transform(LEFT[:8])
    mixed = retriever.transform([*LEFT[4:], "Athina"])  # remembered rows and new ones, from two blocks
    for rows in (first, mixed):
        assert rows.has_sorted_indices
        assert all((np.diff(rows.indices[a:b]) > 0).all() for a, b in zip(rows.indptr[:-1], rows.indptr[1:]))
    np.testing.assert_array_equal(mixed[:4].toarray(), first[4:].toarray())

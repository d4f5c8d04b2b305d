"""Property-based checks (hypothesis): arbitrary frames thrown at the pandas API keep the invariants.

For ``merge``, ``merge_knn``, ``cluster_rows`` and ``dedup_rows``, on frames with mixed dtypes, odd unicode
(invisible characters, lone surrogates, emoji), missing values, duplicates and empty tables:

- left row count and order are kept (``merge(keep_unmatched=True)`` and ``cluster_rows``: every row once,
  in order; ``merge_knn``/``dedup_rows``: a subsequence of the input rows, in order);
- the inputs are never mutated;
- no user column is overwritten: every input column comes back with the input's values;
- only ``ltengine`` errors escape.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ltengine as lt
from ltengine.errors import LTEngineError

ODD_TEXTS = ["\u200b", "\ufeff", "\u200e", "\x00", "🙂", "Acme\ud800", "", "   ", "NA", "null", "None",
             "Acme Inc", "ACME inc.", "Globex GmbH", "Глобекс", "株式会社グローブ", "007", "1e3"]

texts = st.one_of(
    st.sampled_from(ODD_TEXTS),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.none(),
    st.just(np.nan),
)
numbers = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=False, width=32), st.none())
keys = st.one_of(st.sampled_from([1, 2, "1", "2", 1.0, 2.0]), st.none(), st.just(np.nan))


@st.composite
def frames(draw: st.DrawFn, row_id: str, max_rows: int = 6) -> pd.DataFrame:
    """A frame with a text column ``name``, a mixed ``key`` column, a numeric ``value`` and a row id."""
    n = draw(st.integers(0, max_rows))
    names = draw(st.lists(texts, min_size=n, max_size=n))
    if n and draw(st.booleans()):  # exact duplicates
        names[-1] = names[0]
    frame = pd.DataFrame({
        "name": pd.Series(names, dtype=object),
        "key": pd.Series(draw(st.lists(keys, min_size=n, max_size=n)), dtype=object),
        "value": pd.Series(draw(st.lists(numbers, min_size=n, max_size=n)), dtype=object),
        row_id: np.arange(n, dtype=np.int64),
    })
    if draw(st.booleans()):  # numeric dtype instead of object
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


PROFILE = settings(max_examples=25, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _call(func, *args, **kwargs):
    """Run ``func``; an ltengine error is an allowed outcome (returns None), anything else fails."""
    try:
        return func(*args, **kwargs)
    except LTEngineError:
        return None


def _same_values(out: pd.Series, original: pd.Series) -> None:
    """Same values in the same order (missing values compare equal whatever their null: None, NaN)."""
    def plain(series: pd.Series) -> pd.Series:
        series = series.reset_index(drop=True).astype(object)
        return series.where(series.notna(), None)

    pd.testing.assert_series_equal(plain(out), plain(original), check_names=False)


@PROFILE
@given(left=frames("left_row"), right=frames("right_row"), block=st.booleans(), mode=st.sampled_from(["auto", "lexical"]))
def test_merge_keeps_rows_order_inputs_and_columns(left: pd.DataFrame, right: pd.DataFrame, block: bool, mode: str) -> None:
    before_left, before_right = left.copy(deep=True), right.copy(deep=True)
    options = dict(on="name", block_on="key" if block else None, mode=mode, progress=False)
    out = _call(lt.merge, left, right, keep_unmatched=True, **options)
    knn = _call(lt.merge_knn, left, right, k=2, **options)
    pd.testing.assert_frame_equal(left, before_left)
    pd.testing.assert_frame_equal(right, before_right)
    if out is not None:
        assert len(out) == len(left)
        assert out["left_row"].tolist() == left["left_row"].tolist()
        for col, side in (("name", "_x"), ("key", "_x"), ("value", "_x")):
            _same_values(out[col + side], left[col])
        matched = out["right_row"].notna().to_numpy()
        right_rows = out.loc[matched, "right_row"].astype(np.int64).to_numpy()
        for col in ("name", "key", "value"):
            _same_values(out.loc[matched, col + "_y"], right[col].iloc[right_rows])
    if knn is not None:
        rows = knn["left_row"].to_numpy()
        assert (np.diff(rows) >= 0).all() and set(rows) <= set(left["left_row"])
        for col in ("name", "key", "value"):
            _same_values(knn[col + "_x"], left[col].iloc[rows])


@PROFILE
@given(df=frames("row", max_rows=8), threshold=st.sampled_from([0.5, 0.8, 0.99]))
def test_cluster_and_dedup_keep_rows_order_inputs_and_columns(df: pd.DataFrame, threshold: float) -> None:
    before = df.copy(deep=True)
    clusters = _call(lt.cluster_rows, df, on="name", threshold=threshold, progress=False)
    deduped = _call(lt.dedup_rows, df, on="name", threshold=threshold, progress=False)
    pd.testing.assert_frame_equal(df, before)
    if clusters is not None:
        assert len(clusters) == len(df)
        for col in df.columns:
            _same_values(clusters[col], df[col])
        assert clusters["cluster"].notna().all()
    if deduped is not None:
        rows = deduped["row"].to_numpy()
        assert (np.diff(rows) > 0).all() and set(rows) <= set(df["row"])
        for col in df.columns:
            _same_values(deduped[col], df[col].iloc[rows])
        if clusters is not None:  # one row kept per cluster
            assert len(deduped) == clusters["cluster"].nunique()


@pytest.mark.parametrize("func", [lt.merge, lt.merge_knn])
def test_an_empty_right_table_is_not_an_error(func) -> None:
    left = pd.DataFrame({"name": ["Acme"], "left_row": [0]})
    out = func(left, left.iloc[:0].rename(columns={"left_row": "right_row"}), on="name", progress=False)
    assert list(out.columns)[:2] == ["name_x", "left_row"]

"""Bad input reaches the user as a clear error naming what is wrong, or as a sensible result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.errors import ColumnError, ConfigError, LinkInputError, UnknownComponentError


def test_misspelled_column_suggests_closest(firms) -> None:
    left, right = firms
    with pytest.raises(ColumnError, match=r"column 'nmae' \(linked column\) is not in the left table\. Did you mean 'name'\?"):
        lt.merge(left, right, left_on="nmae", right_on="name")
    with pytest.raises(ColumnError, match="not in the right table.*Its columns are: name, country, reg_id"):
        lt.merge(left, right, left_on="name", right_on="firm")
    with pytest.raises(ColumnError, match=r"'contry' \(blocking column\).*Did you mean 'country'"):
        lt.merge(left, right, on="name", block_on="contry")


def test_missing_on_and_conflicting_on() -> None:
    df = pd.DataFrame({"name": ["a"]})
    with pytest.raises(LinkInputError, match="no columns to link on"):
        lt.merge(df, df)
    with pytest.raises(LinkInputError, match="either on=... or left_on"):
        lt.merge(df, df, on="name", left_on="name", right_on="name")
    with pytest.raises(LinkInputError, match="right_on is missing"):
        lt.merge(df, df, left_on="name")
    with pytest.raises(LinkInputError, match="left_on has 2 columns but right_on has 1"):
        lt.merge(df, df, left_on=["name", "name"], right_on="name")


def test_empty_frames_give_empty_results_with_columns(firms) -> None:
    left, right = firms
    out = lt.merge(left.iloc[:0], right, on="name", progress=False)
    assert out.empty and list(out.columns) == ["name_x", "country_x", "name_y", "country_y", "reg_id", "score",
                                                "match_probability"]
    out = lt.merge(left, right.iloc[:0], on="name", progress=False)
    assert out.empty and "reg_id" in out.columns
    kept = lt.merge(left, right.iloc[:0], on="name", keep_unmatched=True, progress=False)
    assert list(kept["name_x"]) == list(left["name"]) and kept["reg_id"].isna().all()


def test_missing_and_blank_values_never_match() -> None:
    left = pd.DataFrame({"name": [None, np.nan, "", "   ", "Toyota"]})
    right = pd.DataFrame({"name": ["", None, "Toyota Motor Corporation"]})
    out = lt.merge(left, right, on="name", keep_unmatched=True, progress=False)
    assert len(out) == 5
    assert out["name_y"].iloc[:4].isna().all()
    assert out["name_y"].iloc[4] == "Toyota Motor Corporation"
    assert out.attrs["ltengine"]["report"]["left_empty_text"] == 4
    knn = lt.merge_knn(left, right, on="name", k=3, progress=False)
    assert set(knn["name_y"]) == {"Toyota Motor Corporation"}  # the blank right rows are never candidates


def test_numbers_are_linked_as_text_and_objects_are_rejected() -> None:
    left = pd.DataFrame({"code": [12345, 67890]})
    right = pd.DataFrame({"code": [67890.0, 12345.0, np.nan]})
    out = lt.merge(left, right, on="code", progress=False)
    assert list(out["code_y"]) == [12345.0, 67890.0]
    bad = pd.DataFrame({"name": ["Acme", {"x": 1}]})
    with pytest.raises(LinkInputError, match="column 'name' of the left table holds a dict value at row 1"):
        lt.merge(bad, right.astype(str), left_on="name", right_on="code")


def test_duplicate_column_names() -> None:
    df = pd.DataFrame([["a", "b"]], columns=["name", "name"])
    with pytest.raises(ColumnError, match=r"left table has duplicate column names \['name'\]"):
        lt.merge(df, pd.DataFrame({"name": ["a"]}), on="name")


@pytest.mark.parametrize("column", ["score", "rank"])
def test_columns_that_clash_with_output(column: str) -> None:
    df = pd.DataFrame({"name": ["a"], column: [1]})
    with pytest.raises(ColumnError, match=f"already has a column '{column}'.*rename"):
        lt.merge(df, pd.DataFrame({"name": ["a"]}), on="name")


def test_suffixes_that_would_collide() -> None:
    left = pd.DataFrame({"name": ["a"], "name_x": ["b"]})
    with pytest.raises(ColumnError, match="would appear twice"):
        lt.merge(left, pd.DataFrame({"name": ["a"]}), on="name", progress=False)


def test_k_larger_than_right_table_is_clipped(firms) -> None:
    left, right = firms
    out = lt.merge_knn(left, right.iloc[:3], on="name", k=50, progress=False)
    assert len(out) == 3 * len(left) and out["rank"].max() == 3


@pytest.mark.parametrize("threshold", [1.5, -2, float("nan")])
def test_threshold_out_of_range(firms, threshold) -> None:
    left, right = firms
    with pytest.raises(ConfigError, match="threshold .* out of range"):
        lt.merge(left, right, on="name", threshold=threshold)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k(firms, k) -> None:
    left, right = firms
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        lt.merge(left, right, on="name", k=k)


def test_merge_range_requires_threshold(firms) -> None:
    left, right = firms
    with pytest.raises(LinkInputError, match="merge_range needs a threshold"):
        lt.merge_range(left, right, on="name")


def test_unknown_model_and_components_list_the_available_ones(firms) -> None:
    left, right = firms
    with pytest.raises(UnknownComponentError, match=r"unknown model 'usem4'\. Did you mean 'usem3'\?.*usem3"):
        lt.merge(left, right, on="name", model="usem4")
    with pytest.raises(UnknownComponentError, match=r"unknown retriever 'fais'\. Did you mean 'faiss'\?.*exact"):
        lt.merge(left, right, on="name", retriever="fais")
    with pytest.raises(UnknownComponentError, match="unknown blocker 'fuzzy'.*Available blockers: exact"):
        lt.merge(left, right, on="name", block_on="country", blocker="fuzzy")


def test_unknown_config_key_and_option(firms, tmp_path) -> None:
    left, right = firms
    with pytest.raises(ConfigError, match="unknown config key 'tresh'"):
        lt.merge(left, right, on="name", tresh=0.3)
    with pytest.raises(ConfigError, match="encoder 'usem3' has no option 'batchsize'.*Did you mean 'batch_size'"):
        lt.merge(left, right, on="name", encoder_options={"batchsize": 3}, progress=False)
    bad = tmp_path / "c.toml"
    bad.write_text("k = 3\nthreshhold = 0.4\n")
    with pytest.raises(ConfigError, match=r"c.toml: unknown config key 'threshhold'\. Did you mean 'threshold'"):
        lt.LinkConfig.from_path(bad)
    bad.write_text("k = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        lt.LinkConfig.from_path(bad)


def test_not_a_dataframe(firms) -> None:
    left, right = firms
    with pytest.raises(LinkInputError, match="left table must be a pandas DataFrame; got list"):
        lt.merge([1, 2], right, on="name")
    with pytest.raises(LinkInputError, match="right table must be a pandas DataFrame; got dict"):
        lt.merge(left, {"name": []}, on="name")

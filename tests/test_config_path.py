"""One configuration path (issue 15, item 4): every entry point resolves its arguments with
``LinkConfig.resolve``; an argument the caller passes wins over ``config`` even when it equals the
function's default; validators live in ``ltengine.config``.  And the defects of item 6 in dedup and
evaluation: hybrid mode dropped by dedup, all-empty texts in all_pair_combos_evaluate, ``on=`` checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
import ltengine.api
import ltengine.dedup.cluster
import ltengine.engine.linker
from ltengine.config import LinkConfig, as_config, check_threshold, resolve_on, split_columns
from ltengine.errors import ConfigError, LinkInputError

LEFT = pd.DataFrame({"name": ["Deutsche Bahn AG", "Toyota Motor Corp", "Nestle SA"]})
RIGHT = pd.DataFrame({"name": ["Deutsche Bahn", "Toyota Motor Corporation", "Nestlé S.A.", "Gazprom", "Rosneft"]})


class _Seen(Exception):
    """Raised by the spies below once the resolved configuration is known."""


@pytest.fixture
def spy_linker(monkeypatch):
    """Replace the Linker the API builds: record its config, stop before any work."""
    seen: list[LinkConfig] = []

    class Spy:
        def __init__(self, config: LinkConfig) -> None:
            seen.append(config)
            raise _Seen

    monkeypatch.setattr(ltengine.api, "Linker", Spy)
    return seen


@pytest.fixture
def spy_graph(monkeypatch):
    """Replace dedup's kNN graph builder: record the self-link config it gets."""
    seen: list[LinkConfig] = []

    def spy(df, cfg, **kwargs):
        seen.append(cfg)
        raise _Seen

    monkeypatch.setattr(ltengine.dedup.cluster, "knn_graph", spy)
    return seen


# -- LinkConfig.resolve ---------------------------------------------------------------------------------
def test_resolve_passed_arguments_win_even_when_equal_to_the_default() -> None:
    base = LinkConfig(left_on="a", right_on="a", k=3, suffixes=("_l", "_r"), keep_unmatched=True)
    cfg = LinkConfig.resolve(base, k=1, suffixes=("_x", "_y"), keep_unmatched=False, threshold=None)
    assert (cfg.k, cfg.suffixes, cfg.keep_unmatched) == (1, ("_x", "_y"), False)
    assert cfg.left_on == ("a",) and cfg.threshold is None  # None: not passed, the config's value stays


def test_resolve_defaults_apply_only_without_a_config() -> None:
    assert LinkConfig.resolve(None, defaults={"k": 5}).k == 5
    assert LinkConfig.resolve({"k": 2}, defaults={"k": 5}).k == 2
    assert LinkConfig.resolve({"k": 2}, defaults={"k": 5}, k=7).k == 7


def test_resolve_sides_and_config_forms(tmp_path: Path) -> None:
    assert LinkConfig.resolve(None, on="n").right_on == ("n",)
    assert LinkConfig.resolve(None, left_on=["a", "b"], right_on=["c", "d"]).right_on == ("c", "d")
    with pytest.raises(LinkInputError, match="not both"):
        LinkConfig.resolve(None, on="a", left_on="b", right_on="c")
    with pytest.raises(LinkInputError, match="right_on is missing"):
        resolve_on(None, "a", None)
    path = tmp_path / "c.toml"
    path.write_text('k = 4\nleft_on = ["x"]\nright_on = ["x"]\n', encoding="utf-8")
    assert LinkConfig.resolve(str(path)).k == 4 and as_config(path).k == 4
    with pytest.raises(LinkInputError, match="config must be"):
        as_config(42)
    with pytest.raises(ConfigError, match="unknown config key 'kk'"):
        LinkConfig.resolve(None, kk=1)


def test_validators_live_in_config() -> None:
    assert check_threshold(np.float32(0.5)) == 0.5
    with pytest.raises(ConfigError, match="typical duplicate"):
        check_threshold(2, typical="duplicate thresholds are 0.7-0.95")
    with pytest.raises(ConfigError, match="threshold .* out of range"):
        LinkConfig(threshold=1.5)
    assert split_columns(" a, b ,,c") == ["a", "b", "c"] and split_columns(None) is None


def test_no_private_configuration_helpers_cross_modules() -> None:
    root = Path(lt.__file__).parent
    sources = {p: p.read_text(encoding="utf-8") for p in root.rglob("*.py")}
    aliases = [p.name for p, text in sources.items() if re.search(r"^Columns = ", text, re.MULTILINE)]
    assert aliases == ["config.py"]
    for path, text in sources.items():
        assert not re.search(r"^\s*def (_split|_as_columns|check_threshold)\(", text, re.MULTILINE) or path.name == "config.py", path
        assert not re.search(r"import[^\n]*\b(_as_config|_resolve_on)\b", text), path


# -- the API: a passed argument wins over config -------------------------------------------------------
@pytest.mark.parametrize("call, expected", [
    (lambda: lt.merge(LEFT, RIGHT, on="name", k=1, config={"k": 3}), {"k": 1}),
    (lambda: lt.merge(LEFT, RIGHT, on="name", suffixes=("_x", "_y"), config={"suffixes": ("_l", "_r")}),
     {"suffixes": ("_x", "_y")}),
    (lambda: lt.merge(LEFT, RIGHT, on="name", one_to_one=False, keep_unmatched=False,
                      config={"one_to_one": True, "keep_unmatched": True}),
     {"one_to_one": False, "keep_unmatched": False}),
    (lambda: lt.merge(LEFT, RIGHT, on="name", config={"k": 3}), {"k": 3}),  # not passed: the config's
    (lambda: lt.merge_knn(LEFT, RIGHT, on="name", k=5, config={"k": 2}), {"k": 5}),
    (lambda: lt.merge_knn(LEFT, RIGHT, on="name", config={"k": 2}), {"k": 2}),
    (lambda: lt.merge_knn(LEFT, RIGHT, on="name"), {"k": 5}),  # merge_knn's own default
    (lambda: lt.merge_range(LEFT, RIGHT, on="name", threshold=0.5, keep_unmatched=False,
                            config={"keep_unmatched": True}), {"keep_unmatched": False, "threshold": 0.5}),
    (lambda: lt.merge_blocking(LEFT, RIGHT, on="name", blocking_vars="name", k=1, config={"k": 4}),
     {"k": 1, "block_on": ("name",)}),
    (lambda: lt.aggregate_rows(LEFT, RIGHT, on="name", k=1, config={"k": 4}), {"k": 1, "keep_unmatched": True}),
])
def test_api_arguments_win_over_config(spy_linker, call, expected) -> None:
    with pytest.raises(_Seen):
        call()
    cfg = spy_linker[-1]
    assert {key: getattr(cfg, key) for key in expected} == expected


def test_merge_k_judge_resolves_the_same_way(spy_linker) -> None:
    from ltengine.judge_api import merge_k_judge

    with pytest.raises(_Seen):
        merge_k_judge(LEFT, RIGHT, on="name", judge_llm_model="openai/x", suffixes=("_x", "_y"),
                      config={"suffixes": ("_l", "_r"), "k": 7})
    assert spy_linker[-1].suffixes == ("_x", "_y") and spy_linker[-1].k == 7
    with pytest.raises(_Seen):
        merge_k_judge(LEFT, RIGHT, on="name", judge_llm_model="openai/x")
    assert spy_linker[-1].k == 3  # LinkTransformer's default without a config


def test_merge_knn_end_to_end_passed_k_wins() -> None:
    out = lt.merge_knn(LEFT, RIGHT, on="name", mode="lexical", k=1, config={"k": 3}, progress=False)
    assert "rank" not in out.columns and len(out) <= len(LEFT)  # k=1: merge's frame, one row per left row
    out = lt.merge(LEFT, RIGHT, on="name", mode="lexical", suffixes=("_x", "_y"),
                   config={"suffixes": ("_l", "_r")}, progress=False)
    assert {"name_x", "name_y"} <= set(out.columns)


def test_evaluate_pairs_arguments_win_over_config(monkeypatch) -> None:
    seen: list[LinkConfig] = []

    class Spy:
        def __init__(self, config: LinkConfig) -> None:
            seen.append(config)
            raise _Seen

    monkeypatch.setattr(ltengine.engine.linker, "Linker", Spy)
    with pytest.raises(_Seen):
        lt.evaluate_pairs(pd.DataFrame({"a": ["x"], "b": ["y"]}), left_on="a", right_on="b", model="fast",
                          config={"model": "accurate", "left_on": ["q"], "right_on": ["q"]})
    assert (seen[-1].model, seen[-1].left_on, seen[-1].right_on) == ("fast", ("a",), ("b",))


# -- dedup: the mode given is honoured ------------------------------------------------------------------
@pytest.mark.parametrize("function", [lt.cluster_rows, lt.dedup_rows])
def test_dedup_keeps_a_hybrid_mode_given_through_config(spy_graph, function) -> None:
    df = pd.DataFrame({"name": ["a", "b"]})
    with pytest.raises(_Seen):
        function(df, on="name", config={"mode": "hybrid"})
    assert spy_graph[-1].mode == "hybrid"
    with pytest.raises(_Seen):
        function(df, on="name", config=LinkConfig(mode="lexical"), mode="hybrid")  # the argument wins
    assert spy_graph[-1].mode == "hybrid"
    with pytest.raises(_Seen):
        function(df, on="name")
    assert spy_graph[-1].mode == "auto"  # nothing given: the adaptive chain of merge (threshold="auto")
    with pytest.raises(_Seen):
        function(df, on="name", threshold=0.9)
    assert spy_graph[-1].mode == "semantic"  # a cosine threshold: semantic
    with pytest.raises(_Seen):
        function(df, config={"left_on": ["name"], "mode": "lexical"})
    assert (spy_graph[-1].mode, spy_graph[-1].right_on) == ("lexical", ("name",))


def test_dedup_in_hybrid_mode_runs() -> None:
    df = pd.DataFrame({"name": ["Deutsche Bahn AG", "Deutsche Bahn A.G.", "Gazprom", "Toyota Motor Corp"]})
    out = lt.cluster_rows(df, on="name", threshold=0.6, config={"mode": "hybrid"}, progress=False)
    assert out.attrs["ltengine"]["report"]["linker"].get("mode") == "hybrid"
    assert out["cluster"].iloc[0] == out["cluster"].iloc[1]


@pytest.mark.parametrize("on", [5, [1], ["name", 2.0]])
def test_dedup_rejects_non_column_on_with_a_config_error(on) -> None:
    with pytest.raises(ConfigError, match=r"\bon must"):
        lt.cluster_rows(pd.DataFrame({"name": ["a", "b"]}), on=on)


# -- all_pair_combos_evaluate with no text on one side --------------------------------------------------
@pytest.mark.parametrize("empty_side", ["left", "right"])
def test_all_pair_combos_with_every_text_empty_on_one_side_scores_nan(empty_side) -> None:
    texts = ["Deutsche Bahn", "Toyota"]
    df = pd.DataFrame({"a": ["", None] if empty_side == "left" else texts,
                       "b": texts if empty_side == "left" else ["", None]})
    out = lt.all_pair_combos_evaluate(df, left_on="a", right_on="b", progress=False)
    assert len(out) == 4 and out["score"].isna().all()

"""lt.label_pairs / ltengine label: uncertain and diverse picks, console answers (undo, quit, resume, atomic
saves), a Python function, the LLM judge (real HTTP, cached, budgeted), and a result every learner accepts."""

from __future__ import annotations

import io
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ltengine as lt
from ltengine.errors import ConfigError, FileFormatError

pytest.register_assert_rewrite("llm_fixtures", "openai_server")
from llm_fixtures import GOLD, firms, judge_options, link_kwargs
from openai_server import rule_match

pytest_plugins = ["llm_fixtures"]


def _truth_labeler(pair: pd.Series) -> bool:
    return GOLD.get(int(pair["left_row"])) == int(pair["right_row"])


@pytest.fixture
def tables():
    return firms()


def _kwargs(tmp_path, **extra):
    return {"on": "name", "k": 3, "cache_dir": str(tmp_path / "cache"), "progress": False, **extra}


def test_function_labeler_picks_uncertain_diverse_pairs_and_feeds_every_learner(tables, tmp_path) -> None:
    left, right = tables
    out = lt.label_pairs(left, right, n=8, labeler=_truth_labeler, save=tmp_path / "labels.csv", **_kwargs(tmp_path))
    assert len(out) == 8 and set(out["label"]) <= {0, 1} and out["label"].dtype == np.int64
    assert {"text_l", "text_r", "left_row", "right_row", "answer", "score_semantic", "score_lexical"} <= set(out.columns)
    assert out["left_row"].is_unique  # 8 of the 10 left rows: one pair each
    assert out["label"].tolist() == [int(_truth_labeler(row)) for _, row in out.iterrows()]
    # the picks are less certain than the candidates on average
    every = lt.merge_knn(left, right, mode="hybrid", **_kwargs(tmp_path))
    assert (out["match_probability"] - 0.5).abs().mean() < (every["match_probability"] - 0.5).abs().mean()
    saved = pd.read_csv(tmp_path / "labels.csv")
    assert len(saved) == 8 and list(saved["answer"]) == list(out["answer"])
    # accepted as is by the learners
    weights = lt.fit_fusion(out, out["label"])
    assert {"w_semantic", "w_lexical", "bias"} <= set(weights)
    assert 0 <= lt.suggest_threshold(out, "label").threshold <= 1
    adapter = lt.train_adapter(out, output_dir=tmp_path / "adapter", epochs=2, val_share=0.0,
                               cache_dir=str(tmp_path / "cache"), progress=False)
    assert (tmp_path / "adapter" / "adapter.json").exists() and adapter.endswith("adapter")


def test_console_undo_quit_and_resume(tables, tmp_path, monkeypatch, capsys) -> None:
    left, right = tables
    save = tmp_path / "labels.csv"
    # y, n, undo (the n is taken back and asked again), unsure, then quit
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\nn\nb\nmaybe\nu\nq\n"))
    first = lt.label_pairs(left, right, n=6, labeler="console", save=save, **_kwargs(tmp_path))
    shown = capsys.readouterr().out
    assert "please answer" in shown and "left :" in shown
    saved = pd.read_csv(save)
    assert list(saved["answer"]) == ["y", "unsure"]  # the undone 'n' is gone, nothing after quit
    assert len(first) == 1 and first.attrs["ltengine"]["labels"]["unsure"] == 1
    # resume: the saved answers are kept, only the missing ones are asked
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\nn\ny\nn\n"))
    second = lt.label_pairs(left, right, n=6, labeler="console", save=save, **_kwargs(tmp_path))
    saved = pd.read_csv(save)
    assert len(saved) == 6 and list(saved["answer"][:2]) == ["y", "unsure"]
    assert list(saved["answer"][2:]) == ["n", "n", "y", "n"]
    assert len(second) == 5 and saved[["left_row", "right_row"]].drop_duplicates().shape[0] == 6
    assert not list(tmp_path.glob(".labels.csv*"))  # no temporary files left behind


def test_saved_file_for_other_tables_or_not_labels_is_refused(tables, tmp_path) -> None:
    left, right = tables
    other = tmp_path / "other.csv"
    pd.DataFrame({"left_row": [0], "right_row": [99], "answer": ["y"]}).to_csv(other, index=False)
    with pytest.raises(FileFormatError, match="not among this run's candidates"):
        lt.label_pairs(left, right, n=2, labeler=_truth_labeler, save=other, **_kwargs(tmp_path))
    table = tmp_path / "table.csv"
    left.to_csv(table, index=False)
    with pytest.raises(FileFormatError, match="not a label_pairs file"):
        lt.label_pairs(left, right, n=2, labeler=_truth_labeler, save=table, **_kwargs(tmp_path))
    assert pd.read_csv(table).equals(left)  # untouched
    with pytest.raises(ConfigError, match="unknown labeler"):
        lt.label_pairs(left, right, n=2, labeler="mturk", **_kwargs(tmp_path))
    with pytest.raises(lt.LinkInputError, match="returned"):
        lt.label_pairs(left, right, n=2, labeler=lambda pair: "perhaps", **_kwargs(tmp_path))
    with pytest.raises(lt.ColumnError, match="left_row"):
        lt.label_pairs(left.assign(left_row=1), right, n=2, labeler=_truth_labeler, **_kwargs(tmp_path))


def test_llm_labeler_is_the_cached_budgeted_judge(fake_openai, tmp_path) -> None:
    left, right = firms()
    kwargs = {**link_kwargs(fake_openai, tmp_path / "cache"), "k": 3}
    options = judge_options(fake_openai, batch_size=4)
    out = lt.label_pairs(left, right, n=6, labeler="llm:openai/gpt-4o-mini", labeler_options=options,
                         batch_size=3, **kwargs)
    assert len(out) == 6
    for a, b, label in zip(out["name_x"], out["name_y"], out["label"]):
        assert label == int(rule_match(a, b)), (a, b)
    requests = len(fake_openai.chat_requests())
    assert requests >= 2
    again = lt.label_pairs(left, right, n=6, labeler="llm:openai/gpt-4o-mini", labeler_options=options,
                           batch_size=3, **kwargs)
    assert len(fake_openai.chat_requests()) == requests  # every answer from the cache
    pd.testing.assert_frame_equal(out, again)
    # a budget of one request for the whole session: the rest are 'unsure' (no verdict), never over budget
    budget = lt.label_pairs(left, right, n=6, labeler="llm:openai/gpt-4o-mini", batch_size=3,
                            labeler_options={**options, "max_calls": 1, "task": "firms, new key"}, **kwargs)
    assert len(fake_openai.chat_requests()) == requests + 1
    assert budget.attrs["ltengine"]["labels"]["unsure"] >= 3


def test_cli_label(tables, tmp_path) -> None:
    from ltengine.cli import cli

    left, right = tables
    left.to_csv(tmp_path / "left.csv", index=False)
    right.to_csv(tmp_path / "right.csv", index=False)
    out = tmp_path / "labels.csv"
    args = ["label", str(tmp_path / "left.csv"), str(tmp_path / "right.csv"), "--on", "name", "--out", str(out),
            "--n", "3", "--k", "3", "--no-progress"]
    result = CliRunner().invoke(cli, args, input="y\nn\nn\n", env={"LTENGINE_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(out)["answer"]) == ["y", "n", "n"]
    assert "1 yes, 2 no, 0 unsure" in result.output

"""The LLM judge is one plugin package (client, prompt, batches, session) that declares its capabilities."""

from __future__ import annotations

import importlib
from pathlib import Path

import ltengine_plugins.llm_judge as judge_package
import pytest

from ltengine.components import Reranker


def test_the_judge_declares_its_reranker_capabilities() -> None:
    judge = judge_package.LLMJudge
    assert issubclass(judge, Reranker)
    assert judge.cascade_default is True
    assert judge.calls_llm is True
    assert judge.output_columns == ("judge_confidence", "judge_error")
    assert "attach" in vars(judge)


@pytest.mark.parametrize("name", ["client", "prompt", "batches", "session"])
def test_the_judge_modules_live_in_the_package_and_stay_small(name: str) -> None:
    module = importlib.import_module(f"ltengine_plugins.llm_judge.{name}")
    lines = Path(module.__file__).read_text(encoding="utf-8").count("\n")
    assert lines < 400


@pytest.mark.parametrize("old", ["llm_client", "llm_prompt", "llm_batches"])
def test_the_old_flat_modules_are_gone(old: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"ltengine_plugins.{old}")

"""Crash/resume: a judge run killed mid-way (SIGKILL) keeps every answer it received; the rerun asks
only for the unfinished pairs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.register_assert_rewrite("llm_fixtures", "openai_server")  # before their import: they are pytest plugins
from llm_fixtures import judge_job

pytest_plugins = ["llm_fixtures"]  # fixtures: fake_openai, rerank_plugins, cross_encoder_dir

TESTS = os.path.dirname(os.path.abspath(__file__))


def test_killed_run_resumes_with_only_unfinished_pairs(fake_openai, tmp_path) -> None:
    cache = str(tmp_path / "cache")
    fake_openai.inject_at(4, "hang")  # the 4th request never answers: the process is killed while waiting
    code = (
        f"import sys; sys.path.insert(0, {TESTS!r}); import llm_fixtures; "
        f"llm_fixtures.judge_job({fake_openai.url!r}, {cache!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        arrived = fake_openai.wait_for_chat(4, timeout=90)
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert arrived, err.decode(errors="replace")[-2000:]
    assert proc.returncode != 0  # killed, not finished
    first = fake_openai.chat_requests()
    answered = {(str(a), str(b)) for r in first[:3] for a, b in r.pairs}
    assert len(answered) == 6

    fake_openai.reset()
    out = judge_job(fake_openai.url, cache)
    resumed = {(str(a), str(b)) for r in fake_openai.chat_requests() for a, b in r.pairs}
    assert len(out) == 30 and out["judge_error"].isna().all()
    assert not resumed & answered and len(resumed) == 30 - 6  # only the unfinished pairs
    assert fake_openai.embedding_requests() == []  # the embeddings were cached by the killed run too
    stage = out.attrs["ltengine"]["report"]["rerank"]["stages"][0]
    assert stage["cache_hits"] == 6 and stage["requests"] == 12

    fake_openai.reset()
    again = judge_job(fake_openai.url, cache)
    assert fake_openai.chat_requests() == [] and again.equals(out)  # a third run: 100% cache hits

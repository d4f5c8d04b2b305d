"""The litellm embedding encoder against the fake OpenAI-compatible server (hashed character-n-gram
embeddings on /v1/embeddings): linking, batching, cache, retries, dimensions, errors."""

from __future__ import annotations

import numpy as np
import pytest

import ltengine as lt
from ltengine.config import LinkConfig
from ltengine.engine.encoding import resolve_encoder
from ltengine.errors import ComponentError

pytest.register_assert_rewrite("llm_fixtures", "openai_server")  # before their import: they are pytest plugins
from llm_fixtures import SECRET, firms

pytest_plugins = ["llm_fixtures"]  # fixtures: fake_openai, rerank_plugins, cross_encoder_dir

MODEL = "openai/text-embedding-3-small"


def encoder(server, model: str = MODEL, **options):
    config = LinkConfig(model=model, encoder_options={"api_base": server.url, **options})
    return resolve_encoder(lt.get_host().registry, config)


def test_links_through_the_server_with_batches_and_cache(fake_openai, tmp_path) -> None:
    left, right = firms()
    kwargs = {
        "on": "name",
        "model": MODEL,
        "encoder_options": {"api_base": fake_openai.url, "batch_size": 5},
        "cache_dir": str(tmp_path),
        "progress": False,
    }
    out = lt.merge(left, right, **kwargs)
    assert out["name_y"].tolist()[:4] == ["ACME", "Globex", "Initech LLC", "cafe resume"]
    sizes = [r.inputs for r in fake_openai.embedding_requests()]
    assert sorted(sizes) == [2, 5, 5, 5, 5]  # 12 right texts + 10 left texts, 5 per request
    again = lt.merge(left, right, **kwargs)
    assert len(fake_openai.embedding_requests()) == 5  # all from the cache
    assert again.equals(out)


def test_dimensions_and_unit_vectors(fake_openai) -> None:
    vectors = encoder(fake_openai, dimensions=32).encode(["Acme", "ACME Inc", "Globex"], role="query")
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    assert fake_openai.embedding_requests()[0].body["dimensions"] == 32


def test_transient_errors_are_retried(fake_openai) -> None:
    fake_openai.inject("429", endpoint="embeddings", retry_after=0.05)
    fake_openai.inject("500", endpoint="embeddings")
    vectors = encoder(fake_openai).encode(["Acme", "Globex"], role="document")
    assert vectors.shape == (2, 64)
    assert len(fake_openai.embedding_requests()) == 3


def test_persistent_failure_is_a_clear_error_without_the_key(fake_openai) -> None:
    fake_openai.inject("500", endpoint="embeddings", times=10)
    with pytest.raises(ComponentError, match="failed after 2 attempts") as info:
        encoder(fake_openai, max_attempts=2, api_key_env="LTENGINE_TEST_KEY").encode(["Acme"], role="query")
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("max_attempts", [1, 2, 3])
def test_max_attempts_bounds_the_requests(fake_openai, max_attempts) -> None:
    fake_openai.inject("500", endpoint="embeddings", times=10)
    with pytest.raises(ComponentError, match=f"failed after {max_attempts} attempt"):
        encoder(fake_openai, max_attempts=max_attempts).encode(["Acme"], role="query")
    assert len(fake_openai.embedding_requests()) == max_attempts  # the SDK adds no retries of its own


def test_auth_error_is_not_retried_and_the_echoed_key_is_redacted(fake_openai) -> None:
    fake_openai.inject("401_echo", endpoint="embeddings")
    with pytest.raises(ComponentError, match="failed after 1 attempt:") as info:
        encoder(fake_openai, api_key_env="LTENGINE_TEST_KEY").encode(["Acme"], role="query")
    assert "AuthenticationError" in str(info.value) and "***" in str(info.value)
    assert SECRET not in str(info.value)
    assert len(fake_openai.embedding_requests()) == 1


def test_unset_key_variable_is_named(fake_openai, monkeypatch) -> None:
    monkeypatch.delenv("LTENGINE_UNSET_KEY", raising=False)
    with pytest.raises(ComponentError, match="LTENGINE_UNSET_KEY"):
        encoder(fake_openai, api_key_env="LTENGINE_UNSET_KEY").encode(["Acme"], role="query")
    assert fake_openai.embedding_requests() == []


def test_other_providers_go_through_litellm_with_the_same_bound(fake_openai) -> None:
    # hosted_vllm is served by litellm's own HTTP handler, not the openai SDK
    enc = encoder(fake_openai, model="litellm:hosted_vllm/test-embed", max_attempts=2)
    vectors = enc.encode(["Acme", "Globex"], role="document")
    assert vectors.shape == (2, 64)
    assert fake_openai.embedding_requests()[-1].model == "test-embed"
    fake_openai.inject("500", endpoint="embeddings", times=10)
    with pytest.raises(ComponentError, match="failed after 2 attempts"):
        enc.encode(["Initech"], role="document")
    assert len(fake_openai.embedding_requests()) == 1 + 2

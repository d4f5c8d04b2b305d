"""Fixtures and helpers shared by the rerank / LLM judge / litellm encoder tests.

Import the fixtures into a test module: ``from llm_fixtures import fake_openai, ...``.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from openai_server import FakeOpenAI

#: The key tests put in the environment: it must never show up in caches, logs or errors.
SECRET = "sk-test-ltengine-SECRET-0123456789"

#: Left firms; each has the right row of the same normalised name (if any) plus distractors.
LEFT_NAMES = [
    "Acme Inc",
    "Globex GmbH",
    "Initech",
    "Café Résumé SA",
    "Umbrella Corp",
    "Stark Industries",
    "Wayne Enterprises",
    "Tyrell Corporation",
    "Cyberdyne Systems",
    "Soylent Ltd",
]
RIGHT_NAMES = [
    "ACME",
    "Globex",
    "Initech LLC",
    "cafe resume",
    "Umbrella Pharma",
    "Stark Industries Inc.",
    "Wayne Shipping",
    "Tyrell Corp",
    "Cyberdyne Robotics",
    "Soylent",
    "Hooli",
    "Vandelay Imports",
]
#: Left rows whose name matches a right row under the server's rule (left index -> right index).
GOLD = {0: 0, 1: 1, 2: 2, 3: 3, 5: 5, 7: 7, 9: 9}


def register_rerank_plugins() -> list[str]:
    """Register the built-in rerankers on the process-wide host if DEFAULT_PLUGINS does not yet;
    return the names registered here (for :func:`unregister`)."""
    import ltengine_plugins.cross_encoder_rerank as ce
    import ltengine_plugins.llm_judge as judge

    import ltengine

    host = ltengine.get_host()
    added = []
    for module in (judge, ce):
        if not host.pm.is_registered(module):
            added.append(host.register(module, name=module.__name__))
    return added


def unregister(names: list[str]) -> None:
    import ltengine

    for name in names:
        ltengine.get_host().unregister(name)


@pytest.fixture
def rerank_plugins():
    """The rerankers are registered during the test (and only then, until they are in DEFAULT_PLUGINS)."""
    added = register_rerank_plugins()
    yield
    unregister(added)


def firms() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame({"name": LEFT_NAMES}), pd.DataFrame({"name": RIGHT_NAMES, "rid": range(len(RIGHT_NAMES))})


def judge_options(server: FakeOpenAI, **extra) -> dict:
    """Fast, deterministic judge options against the fake server (tiny backoffs)."""
    return {
        "api_base": server.url,
        "api_key_env": "LTENGINE_TEST_KEY",
        "backoff": 0.01,
        "max_backoff": 0.05,
        "timeout": 5.0,
        **extra,
    }


def link_kwargs(server: FakeOpenAI, cache_dir: str | Path, **extra) -> dict:
    """merge/merge_knn keyword arguments: hashed-ngram embeddings from the fake server, one cache dir."""
    kwargs = {
        "on": "name",
        "model": "openai/text-embedding-3-small",
        "encoder_options": {"api_base": server.url},
        "cache_dir": str(cache_dir),
        "progress": False,
    }
    kwargs.update(extra)
    return kwargs


@pytest.fixture
def _server():
    """A fresh server (new port) per test: a request an earlier test left in flight cannot land in this
    test's record; it meets a closed port instead."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, rerank_plugins: None) -> FakeOpenAI:
    """The running fake OpenAI server, reset for this test; the API key is in the environment."""
    _server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LTENGINE_TEST_KEY", SECRET)
    yield _server
    _server.release()


def judge_job(url: str, cache_dir: str, k: int = 3, concurrency: int = 1, batch_size: int = 2) -> pd.DataFrame:
    """The job the crash/resume test runs in a subprocess (and again in-process)."""
    import ltengine as lt

    added = register_rerank_plugins()
    left, right = firms()

    class _Server:  # link_kwargs / judge_options only need .url
        pass

    server = _Server()
    server.url = url  # type: ignore[attr-defined]
    try:
        return lt.merge_knn(
            left,
            right,
            k=k,
            rerank="llm:openai/gpt-4o-mini",
            rerank_options=judge_options(server, cascade=False, concurrency=concurrency, batch_size=batch_size),
            **link_kwargs(server, cache_dir),  # type: ignore[arg-type]
        )
    finally:
        unregister(added)


# -- a small real cross-encoder -------------------------------------------------------------------
_SYLLABLES = ["ka", "ro", "mi", "ten", "zu", "ba", "lor", "vex", "qui", "dan", "sol", "mar", "pe", "ni", "tor", "gal"]
_KINDS = ["Holdings", "Foods", "Labs", "Systems", "Bank", "Motors", "Energy", "Shipping"]


def synthetic_name(rng: random.Random) -> str:
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
    return f"{word} {rng.choice(_KINDS)}"


def noisy_variant(name: str, rng: random.Random) -> str:
    return name.lower() + rng.choice(["", " inc", " ltd", " co"])


def synthetic_pairs(n: int, seed: int) -> tuple[list[tuple[str, str]], list[float]]:
    """``n`` matching pairs (a name and a variant of it) and ``n`` non-matching ones."""
    rng = random.Random(seed)
    pairs, labels = [], []
    for _ in range(n):
        name = synthetic_name(rng)
        pairs.append((name, noisy_variant(name, rng)))
        labels.append(1.0)
        pairs.append((name, synthetic_name(rng)))
        labels.append(0.0)
    return pairs, labels


def synthetic_tables(seed: int = 7, n: int = 12) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Left names, a right table with variants of 2/3 of them plus other names, and the truth."""
    rng = random.Random(seed)
    names = list(dict.fromkeys(synthetic_name(rng) for _ in range(3 * n)))[: 2 * n]
    left_names, others = names[:n], names[n:]
    truth = {name: noisy_variant(name, rng) for name in left_names[: 2 * n // 3]}
    right_names = list(truth.values()) + others
    rng.shuffle(right_names)
    return pd.DataFrame({"name": left_names}), pd.DataFrame({"name": right_names}), truth


def build_cross_encoder(
    folder: Path,
    pairs: list[tuple[str, str]] | None = None,
    labels: list[float] | None = None,
    *,
    steps: int = 300,
    max_length: int = 32,
    chunk: int = 256,
) -> Path:
    """Train a small real CrossEncoder from the packaged all-MiniLM-L6-v2 weights and save it.

    ``pairs``/``labels`` (1.0 = match) default to 96 + 96 synthetic firm-name pairs.  To stay fast
    on 2 CPU cores the transformer is frozen: the pooled [CLS] features of the pairs are computed
    once and only the classification head is trained (so it is a weak but real cross-encoder).
    """
    import torch
    from ltengine_plugins.st_encoder import packaged_model_path
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    model = CrossEncoder(str(packaged_model_path("all-MiniLM-L6-v2")), num_labels=1, max_length=max_length)
    if pairs is None:
        pairs, labels = synthetic_pairs(96, seed=0)
    hf, tokenizer = model.model, model.tokenizer
    hf.eval()
    base = getattr(hf, hf.base_model_prefix)
    parts = []
    with torch.no_grad():
        for start in range(0, len(pairs), chunk):
            batch = pairs[start : start + chunk]
            features = tokenizer(
                [a for a, _ in batch], [b for _, b in batch], padding=True, truncation=True,
                max_length=max_length, return_tensors="pt",
            )
            parts.append(base(**features).pooler_output)
    pooled = torch.cat(parts)
    head = hf.classifier
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
    target = torch.tensor(labels, dtype=torch.float32)
    positive = float(target.sum())
    weight = torch.tensor((len(target) - positive) / max(positive, 1.0))  # balance rare matches
    for _ in range(steps):
        logits = head(pooled).view(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.save(str(folder))
    return folder


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cross-encoder trained for a few seconds on synthetic firm-name pairs (session-wide)."""
    return build_cross_encoder(tmp_path_factory.mktemp("cross_encoder") / "mini-ce")

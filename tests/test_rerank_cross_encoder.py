"""The cross-encoder reranker with a small real CrossEncoder trained in the session fixture."""

from __future__ import annotations

import time

import numpy as np
import pytest

import ltengine as lt
from ltengine.errors import ConfigError, ModelUnavailableError

pytest.register_assert_rewrite("llm_fixtures", "openai_server")  # before their import: they are pytest plugins
from llm_fixtures import link_kwargs, synthetic_tables

pytest_plugins = ["llm_fixtures"]  # fixtures: fake_openai, rerank_plugins, cross_encoder_dir


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels], scores[~labels]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def test_scores_are_the_models_probabilities_and_rank_matches_first(fake_openai, cross_encoder_dir, tmp_path) -> None:
    from sentence_transformers import CrossEncoder

    left, right, truth = synthetic_tables()
    out = lt.merge_knn(
        left, right, k=4, rerank=f"cross-encoder:{cross_encoder_dir}", **link_kwargs(fake_openai, tmp_path)
    )
    assert out["rerank_score"].between(0, 1).all() and (out["decided_by"] == "cross-encoder").all()
    assert (out["is_match"] == (out["rerank_score"] >= 0.5)).all()
    expected = CrossEncoder(str(cross_encoder_dir)).predict(list(zip(out["name_x"], out["name_y"])))
    np.testing.assert_allclose(out["rerank_score"], expected, atol=1e-5)  # text_l/text_r are the names
    labels = np.array([truth.get(a) == b for a, b in zip(out["name_x"], out["name_y"])])
    assert auc(labels, out["rerank_score"].to_numpy()) > 0.8  # hard candidates: similar names
    assert (out.groupby("name_x")["rank"].apply(lambda r: sorted(r) == list(range(1, len(r) + 1)))).all()
    best = out[out["rank"] == 1]
    hits = sum(truth.get(a) == b for a, b in zip(best["name_x"], best["name_y"]))
    assert hits >= 0.75 * len(truth)
    assert "rerank" in out.attrs["ltengine"]["timings"]


def test_batching_and_chunking_do_not_change_scores(fake_openai, cross_encoder_dir, tmp_path, monkeypatch) -> None:
    import ltengine_plugins.cross_encoder_rerank as ce

    left, right, _ = synthetic_tables(seed=3)
    kwargs = link_kwargs(fake_openai, tmp_path)
    spec = f"cross-encoder:{cross_encoder_dir}"
    big = lt.merge_knn(left, right, k=3, rerank=spec, rerank_options={"batch_size": 64}, **kwargs)
    monkeypatch.setattr(ce, "CHUNK", 5)
    calls = []
    original = ce.CrossEncoderReranker._predict
    monkeypatch.setattr(
        ce.CrossEncoderReranker, "_predict", lambda self, m, b: calls.append(len(b)) or original(self, m, b)
    )
    small = lt.merge_knn(
        left, right, k=3, rerank=spec, rerank_options={"batch_size": 1}, **{**kwargs, "progress": True}
    )
    assert calls and max(calls) == 5 and sum(calls) == len(set(zip(small["name_x"], small["name_y"])))
    np.testing.assert_allclose(small["rerank_score"], big["rerank_score"], atol=1e-5)


def test_offline_hub_id_is_a_clear_error(fake_openai, tmp_path) -> None:
    left, right, _ = synthetic_tables()
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="(?s)Hugging Face Hub .*local cross-encoder folder"):
        lt.merge(
            left, right, k=2, rerank="cross-encoder:nobody/no-such-cross-encoder", **link_kwargs(fake_openai, tmp_path)
        )
    assert time.perf_counter() - start < 30


def test_a_bi_encoder_or_missing_model_is_refused(fake_openai, tmp_path) -> None:
    from ltengine_plugins.st_encoder import packaged_model_path

    left, right, _ = synthetic_tables()
    kwargs = link_kwargs(fake_openai, tmp_path)
    with pytest.raises(ModelUnavailableError, match="not a cross-encoder"):
        lt.merge(left, right, k=2, rerank=f"cross-encoder:{packaged_model_path('all-MiniLM-L6-v2')}", **kwargs)
    with pytest.raises(ConfigError, match="needs a model"):
        lt.merge(left, right, k=2, rerank="cross-encoder", **kwargs)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match="not a sentence-transformers model folder"):
        lt.merge(left, right, k=2, rerank=f"cross-encoder:{tmp_path / 'empty'}", **kwargs)


def test_a_stored_calibration_maps_the_logits(fake_openai, cross_encoder_dir, tmp_path) -> None:
    """A folder with ltengine_calibration.json (as lt.train_reranker writes it): rerank_score is the calibration
    of the raw logit, not its sigmoid; pairs of different lengths keep their own scores (length-sorted batches)."""
    import json
    import shutil

    import torch
    from sentence_transformers import CrossEncoder

    folder = tmp_path / "calibrated"
    shutil.copytree(cross_encoder_dir, folder)
    (folder / "ltengine_calibration.json").write_text(json.dumps({"method": "platt", "a": 2.0, "b": -1.0}))
    left, right, _ = synthetic_tables(seed=4)
    kwargs = link_kwargs(fake_openai, tmp_path)
    out = lt.merge_knn(left, right, k=3, rerank=f"cross-encoder:{folder}", **kwargs)
    raw = CrossEncoder(str(cross_encoder_dir)).predict(
        list(zip(out["name_x"], out["name_y"])), activation_fn=torch.nn.Identity()
    )
    np.testing.assert_allclose(out["rerank_score"], 1 / (1 + np.exp(-(2.0 * raw - 1.0))), atol=1e-5)
    (folder / "ltengine_calibration.json").write_text(json.dumps({"method": "magic"}))
    with pytest.raises(ModelUnavailableError, match="unknown score calibration"):
        lt.merge_knn(left, right, k=3, rerank=f"cross-encoder:{folder}", **kwargs)

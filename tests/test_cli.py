"""The ``ltengine`` command line: link CSV/Parquet files, version, clear errors for bad files."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import FIRMS_GOLD

import ltengine as lt
from ltengine.cli import cli


@pytest.fixture
def files(tmp_path, firms):
    left, right = firms
    left.to_csv(tmp_path / "left.csv", index=False)
    right.to_parquet(tmp_path / "right.parquet", index=False)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_link_csv_and_parquet(files) -> None:
    result = run("link", str(files / "left.csv"), str(files / "right.parquet"), "--on", "name", "--no-progress",
                 "--out", str(files / "out.parquet"))
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(files / "out.parquet")
    assert list(out["reg_id"]) == FIRMS_GOLD
    assert "linked 6 of 6 left rows" in result.output


def test_link_with_options_and_config(files) -> None:
    (files / "cfg.toml").write_text('k = 2\n[retriever_options]\nindex = "flat"\n')
    result = run("link", str(files / "left.csv"), str(files / "right.parquet"), "--left-on", "name",
                 "--right-on", "name", "--block-on", "country", "--knn", "--config", str(files / "cfg.toml"),
                 "--threshold", "0.1", "--no-progress", "--out", str(files / "out.csv"))
    assert result.exit_code == 0, result.output
    out = pd.read_csv(files / "out.csv")
    assert out["rank"].max() == 2 and (out["country_x"] == out["country_y"]).all()


def test_one_to_one_flag(files) -> None:
    result = run("link", str(files / "left.csv"), str(files / "right.parquet"), "--on", "name", "--k", "3",
                 "--one-to-one", "--no-progress", "--out", str(files / "o.csv"))
    assert result.exit_code == 0, result.output
    assert pd.read_csv(files / "o.csv")["reg_id"].is_unique


def test_version() -> None:
    assert run("--version").output.strip() == f"ltengine, version {lt.__version__}"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "does not exist"),
        ("table.xlsx", "x", "unknown file type .xlsx"),
        ("broken.parquet", "not parquet", "cannot read .*broken.parquet' as parquet"),
        ("bad.csv", b"\xff\xfe\x00garbage\x00\n\x00", "cannot read .*bad.csv' as csv"),
    ],
)
def test_unreadable_files(files, name, content, message) -> None:
    path = files / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run("link", str(path), str(files / "right.parquet"), "--on", "name", "--out", str(files / "o.csv"))
    assert result.exit_code == 1
    assert "Error:" in result.output
    import re

    assert re.search(message, result.output), result.output
    assert "Traceback" not in result.output


def test_bad_column_is_a_clean_error(files) -> None:
    result = run("link", str(files / "left.csv"), str(files / "right.parquet"), "--on", "nam",
                 "--out", str(files / "o.csv"))
    assert result.exit_code == 1
    assert "Error: column 'nam' (linked column) is not in the right table. Did you mean 'name'?" in result.output


def test_bad_output_format(files) -> None:
    result = run("link", str(files / "left.csv"), str(files / "right.parquet"), "--on", "name", "--no-progress",
                 "--out", str(files / "o.docx"))
    assert result.exit_code == 1 and "unknown file type .docx" in result.output

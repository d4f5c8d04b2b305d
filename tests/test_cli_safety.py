"""The CLI never destroys or rewrites the user's data (issue #14 items 1, 2, 11 (--no-cache), 16).

- ``--out`` naming an input (any spelling: ``./``, ``..``, symlink, hard link) is refused unless ``--force``;
- ``--out`` is checked writable before inputs are read or any (paid) work starts;
- outputs are written atomically: a failed write leaves the old file and no temporary file;
- CSV/TSV values come out exactly as they went in (``007``, ``NA``, ``Null``, ``1e3``); JSON lines keep types;
- ``--k`` below 1 is a usage error; ``--no-cache`` leaves the cache folder untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from llm_fixtures import LEFT_NAMES, RIGHT_NAMES, _server, fake_openai, rerank_plugins  # noqa: F401  (fixtures)

from ltengine.cli import cli
from ltengine.cli.io import read_table, write_table
from ltengine.errors import FileFormatError

ISSUE_CSV = "name,id,country\nAcme Inc,007,NA\nGlobex GmbH,0123,US\nNull,1e3,US\n"
NAMES_CSV = "name,id\nAcme Inc,1\nAcme Inc.,2\nGlobex GmbH,3\n"


def _without_last_field(text: str, sep: str) -> str:
    """``text`` (a written table) without its last column, which must be the added ``match_probability``."""
    lines = text.splitlines(keepends=True)
    assert lines[0].rstrip("\n").rsplit(sep, 1)[1] == "match_probability"
    return "".join(line.rstrip("\n").rsplit(sep, 1)[0] + "\n" for line in lines)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def command(kind: str, infile: Path, out: str | Path, *extra: str) -> list[str]:
    """A link/dedup/cluster command line reading ``infile`` (link: as left and as right)."""
    inputs = [str(infile), str(infile)] if kind == "link" else [str(infile)]
    return [kind, *inputs, "--on", "name", "--no-progress", "--out", str(out), *extra]


# -- item 1: --out is never an input, unless --force -----------------------------------------------------


def _spelling(tmp_path: Path, how: str) -> str:
    data = tmp_path / "data.csv"
    if how == "same":
        return str(data)
    if how == "dot":
        return "./data.csv"  # relative to the cwd, which the test sets to tmp_path
    if how == "dotdot":
        (tmp_path / "sub").mkdir()
        return str(tmp_path / "sub" / ".." / "data.csv")
    if how == "symlink":
        (tmp_path / "alias.csv").symlink_to(data)
        return str(tmp_path / "alias.csv")
    (tmp_path / "hard.csv").hardlink_to(data)
    return str(tmp_path / "hard.csv")


@pytest.mark.parametrize("kind", ["link", "dedup", "cluster"])
@pytest.mark.parametrize("how", ["same", "dot", "dotdot", "symlink", "hardlink"])
def test_out_that_is_an_input_is_refused(tmp_path, monkeypatch, kind, how) -> None:
    data = tmp_path / "data.csv"
    data.write_text(NAMES_CSV)
    monkeypatch.chdir(tmp_path)
    result = run(*command(kind, data, _spelling(tmp_path, how), "--threshold", "0.5"))
    assert result.exit_code == 1, result.output
    assert "is the input file" in result.output and "--force" in result.output
    assert data.read_text() == NAMES_CSV


def test_out_that_is_the_right_input_is_refused(tmp_path) -> None:
    left, right = tmp_path / "left.csv", tmp_path / "right.csv"
    left.write_text(NAMES_CSV)
    right.write_text("name\nAcme\n")
    result = run("link", str(left), str(right), "--on", "name", "--no-progress",
                 "--out", str(tmp_path / "." / "right.csv"))
    assert result.exit_code == 1 and "is the input file" in result.output
    assert right.read_text() == "name\nAcme\n"


def test_force_overwrites_the_input(tmp_path) -> None:
    data = tmp_path / "data.csv"
    data.write_text(NAMES_CSV)
    result = run("dedup", str(data), "--on", "name", "--threshold", "0.5", "--no-progress",
                 "--out", str(data), "--force")
    assert result.exit_code == 0, result.output
    assert "kept 2 of 3 rows" in result.output
    kept = pd.read_csv(data)
    assert list(kept.columns) == ["name", "id", "match_probability"]
    assert kept[["name", "id"]].values.tolist() == [["Acme Inc", 1], ["Globex GmbH", 3]]


# -- item 1: --out checked before any work -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["link", "dedup", "cluster"])
def test_unwritable_out_fails_before_reading_inputs(tmp_path, kind) -> None:
    blocker = tmp_path / "a-file.txt"
    blocker.write_text("not a folder")
    missing = tmp_path / "missing.csv"  # reading it would fail, so the --out error proves the order
    result = run(*command(kind, missing, blocker / "out.csv"))
    assert result.exit_code == 1
    assert "cannot write --out" in result.output and "is a file, not a folder" in result.output
    assert "Traceback" not in result.output


def test_out_in_a_read_only_folder_is_refused(tmp_path) -> None:
    data = tmp_path / "data.csv"
    data.write_text(NAMES_CSV)
    result = run(*command("dedup", data, "/proc/ltengine-test/out.csv"))  # /proc: not writable, even for root
    assert result.exit_code == 1
    assert "cannot write --out '/proc/ltengine-test/out.csv'" in result.output and "not writable" in result.output


def test_out_that_is_a_folder_is_refused(tmp_path) -> None:
    data = tmp_path / "data.csv"
    data.write_text(NAMES_CSV)
    (tmp_path / "out.csv").mkdir()
    result = run(*command("cluster", data, tmp_path / "out.csv"))
    assert result.exit_code != 0 and "out.csv" in result.output and "Traceback" not in result.output


def test_missing_out_folder_is_created(tmp_path) -> None:
    data = tmp_path / "data.csv"
    data.write_text(NAMES_CSV)
    result = run(*command("cluster", data, tmp_path / "new" / "deeper" / "out.csv"))
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(tmp_path / "new" / "deeper" / "out.csv")["id"]) == [1, 2, 3]


def test_no_llm_call_when_out_is_unwritable(tmp_path, fake_openai) -> None:  # noqa: F811
    left, right = tmp_path / "left.csv", tmp_path / "right.csv"
    pd.DataFrame({"name": LEFT_NAMES}).to_csv(left, index=False)
    pd.DataFrame({"name": RIGHT_NAMES}).to_csv(right, index=False)
    base = ["link", str(left), str(right), "--on", "name", "--k", "3", "--knn", "--rerank", "llm:openai/gpt-4o-mini",
            "--api-base", fake_openai.url, "--no-cache", "--no-progress", "--out"]
    result = run(*base, "/proc/ltengine-test/out.csv")
    assert result.exit_code == 1 and "cannot write --out" in result.output
    assert fake_openai.requests == []
    result = run(*base, str(tmp_path / "out.csv"))  # control: the same command does call the LLM
    assert result.exit_code == 0, result.output
    assert fake_openai.chat_requests()


# -- item 1: atomic writes --------------------------------------------------------------------------------


class _Unprintable:
    def __str__(self) -> str:
        raise ValueError("cannot format this value")


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("previous,output\n1,2\n")
    frame = pd.DataFrame({"a": ["x", "y"], "b": ["ok", _Unprintable()]})
    with pytest.raises(FileFormatError, match="cannot write .*out.csv"):
        write_table(frame, out)
    assert out.read_text() == "previous,output\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_write_through_symlink_keeps_mode_and_link(tmp_path) -> None:
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_table(pd.DataFrame({"a": ["1"]}), link)
    assert link.is_symlink() and target.read_text() == "a\n1\n"
    assert (target.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]


def test_new_file_gets_umask_permissions(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        write_table(pd.DataFrame({"a": ["1"]}), tmp_path / "o.jsonl")
    finally:
        os.umask(old)
    assert ((tmp_path / "o.jsonl").stat().st_mode & 0o777) == 0o644


# -- item 2: values come out as they went in ---------------------------------------------------------------


def test_issue_example_round_trips_exactly(tmp_path) -> None:
    """The issue's example, end to end through ``python -m ltengine``: the output text equals the input."""
    (tmp_path / "d.csv").write_text(ISSUE_CSV)
    proc = subprocess.run(
        [sys.executable, "-m", "ltengine", "dedup", "d.csv", "--on", "name", "--threshold", "0.99", "--no-progress",
         "--out", "out.csv"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "kept 3 of 3 rows" in proc.stderr
    assert _without_last_field((tmp_path / "out.csv").read_text(), ",") == ISSUE_CSV


def test_tsv_keeps_text_and_empty_cells(tmp_path) -> None:
    text = "name\tid\tnote\nAcme Inc\t007\tN/A\nGlobex GmbH\t\tnull\n"
    (tmp_path / "d.tsv").write_text(text)
    df = read_table(tmp_path / "d.tsv")
    assert df["id"].tolist()[0] == "007" and pd.isna(df["id"].tolist()[1])
    assert df["note"].tolist() == ["N/A", "null"]
    result = run("cluster", str(tmp_path / "d.tsv"), "--on", "name", "--threshold", "0.99", "--no-progress",
                 "--out", str(tmp_path / "o.tsv"))
    assert result.exit_code == 0, result.output
    expected = "name\tid\tnote\tcluster\nAcme Inc\t007\tN/A\t0\nGlobex GmbH\t\tnull\t1\n"
    assert _without_last_field((tmp_path / "o.tsv").read_text(), "\t") == expected


def test_link_keeps_csv_values(tmp_path) -> None:
    (tmp_path / "l.csv").write_text("name,zip\nAcme Inc,01234\n")
    (tmp_path / "r.csv").write_text("name,code\nAcme Inc,NA\n")
    result = run("link", str(tmp_path / "l.csv"), str(tmp_path / "r.csv"), "--on", "name", "--no-progress",
                 "--out", str(tmp_path / "o.csv"))
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert lines[0] == "name_x,zip,name_y,code,score,match_probability" and lines[1].startswith("Acme Inc,01234,Acme Inc,NA,")


def test_jsonl_keeps_json_types(tmp_path) -> None:
    text = ('{"name":"Acme Inc","id":"007","n":1,"date":"2020-01-01","x":0.1,"s":"NA"}\n'
            '{"name":"Globex GmbH","id":"0123","n":null,"date":"soon","x":2.5,"s":null}\n')
    (tmp_path / "d.jsonl").write_text(text)
    df = read_table(tmp_path / "d.jsonl")
    assert df["id"].tolist() == ["007", "0123"] and df["date"].tolist() == ["2020-01-01", "soon"]
    assert df["s"].tolist()[0] == "NA" and pd.isna(df["s"].tolist()[1])
    result = run("dedup", str(tmp_path / "d.jsonl"), "--on", "name", "--threshold", "0.99", "--no-progress",
                 "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in row.items() if k != "match_probability"} for row in rows] == [
        json.loads(line) for line in text.splitlines()]
    assert all("match_probability" in row for row in rows)  # the one added column


# -- item 16: --k must be at least 1 -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["link", "dedup", "cluster"])
@pytest.mark.parametrize("k", ["0", "-3"])
def test_k_below_one_is_a_usage_error(tmp_path, kind, k) -> None:
    data = tmp_path / "data.csv"
    data.write_text(NAMES_CSV)
    result = run(*command(kind, data, tmp_path / "out.csv", "--k", k))
    assert result.exit_code == 2
    assert "Invalid value for '--k'" in result.output and f"{k} is not in the range x>=1" in result.output
    assert not (tmp_path / "out.csv").exists()


# -- item 11 (CLI part): --no-cache ------------------------------------------------------------------------


def _cache_files(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()]


@pytest.mark.parametrize("kind", ["link", "dedup", "cluster"])
def test_no_cache_leaves_the_cache_alone(tmp_path, monkeypatch, kind) -> None:
    data = tmp_path / "data.csv"
    data.write_text(NAMES_CSV)
    home = tmp_path / "home"
    monkeypatch.setenv("LTENGINE_HOME", str(home))
    result = run(*command(kind, data, tmp_path / "out.csv", "--no-cache"))
    assert result.exit_code == 0, result.output
    assert not home.exists() or _cache_files(home) == []
    result = run(*command(kind, data, tmp_path / "out2.csv"))  # control: without the flag the cache is filled
    assert result.exit_code == 0, result.output
    assert _cache_files(home)


def test_link_threshold_auto_and_bad_threshold(tmp_path) -> None:
    (tmp_path / "l.csv").write_text("name\nAcme Inc\nZyx Qwv\n")
    (tmp_path / "r.csv").write_text("name\nACME Incorporated\nGlobex GmbH\n")
    args = ["link", str(tmp_path / "l.csv"), str(tmp_path / "r.csv"), "--on", "name", "--no-progress",
            "--keep-unmatched", "--out", str(tmp_path / "o.csv")]
    result = run(*args, "--threshold", "auto")
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "o.csv")
    assert len(out) == 2 and (out["match_probability"].dropna() >= 0.5).all()
    bad = run(*args, "--threshold", "high")
    assert bad.exit_code == 2 and "neither a number nor 'auto'" in bad.output

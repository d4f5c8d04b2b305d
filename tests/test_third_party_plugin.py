"""The example third-party plugin, installed for real, is discovered through its entry point,
listed by ``ltengine plugins`` and used in a merge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(ROOT / "plugins" / "example_third_party")],
        check=True, cwd=build,
    )
    return target


def _run(code: str, site: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ)


def test_discovered_and_listed(plugin_site: Path) -> None:
    result = _run("from ltengine.cli import main; main(['plugins'])", plugin_site)
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert listing["char_ngrams"] == {
        "name": "char_ngrams", "version": "0.1.0", "hooks": ["register_encoders"], "encoders": ["char-ngrams"],
    }


def test_used_in_a_merge(plugin_site: Path) -> None:
    code = (
        "import pandas as pd, ltengine as lt\n"
        "left = pd.DataFrame({'name': ['Acme Corp', 'Globex Inc']})\n"
        "right = pd.DataFrame({'name': ['Globex Incorporated', 'ACME Corporation', 'Initech']})\n"
        "out = lt.merge(left, right, on='name', model='char-ngrams', progress=False, cache=False)\n"
        "print(list(out.name_y)); print(lt.get_host().registry.get('encoder', 'char-ngrams').plugin)\n"
    )
    result = _run(code, plugin_site)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['ACME Corporation', 'Globex Incorporated']", "char_ngrams"]


def test_blocked_by_env(plugin_site: Path) -> None:
    code = "import ltengine as lt; print(lt.get_host().registry.has('encoder', 'char-ngrams'))"
    assert _run(code, plugin_site, LTENGINE_DISABLE_PLUGINS="char_ngrams").stdout.strip() == "False"
    assert _run(code, plugin_site, LTENGINE_LOAD_PLUGINS="").stdout.strip() == "False"
    assert _run(code, plugin_site, LTENGINE_LOAD_PLUGINS="char_ngrams").stdout.strip() == "True"

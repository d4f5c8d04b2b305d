"""Broken plugins are skipped, not fatal (issue 14, items 12 and 13).

Third-party plugins are real modules written to a temporary folder and discovered through
(monkeypatched) ``ltengine`` entry points, as an installed package would be.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import sys
import textwrap
import warnings
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import ltengine as lt
from ltengine import plugins as plugins_module
from ltengine.errors import DuplicateComponentError, PluginError, PluginLoadWarning, PluginSettingWarning
from ltengine.plugins import PluginHost

PLUGIN_SOURCE = '''
import numpy as np
import ltengine as lt


class GoodBlocker(lt.Blocker):
    name = "{prefix}-blocker"

    def keys(self, records):
        return records.iloc[:, 0].astype(str).str[:1]


class FakeEncoder(lt.Encoder):
    name = "{encoder_name}"

    @property
    def dimension(self):
        return 2

    def encode(self, texts, *, role):
        return np.ones((len(texts), 2), dtype=np.float32)


STAGE_CALLS = []


@lt.hookimpl
def register_blockers(register):
    register(GoodBlocker)


@lt.hookimpl
def register_encoders(register):
    {encoders_body}


@lt.hookimpl
def run_stage(stage, component, payload, context):
    STAGE_CALLS.append(stage)
    return None
'''


def _plugin_module(folder: Path, module: str, *, prefix: str, encoder_name: str, encoders_body: str) -> None:
    source = PLUGIN_SOURCE.format(prefix=prefix, encoder_name=encoder_name, encoders_body=encoders_body)
    (folder / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Three 'installed' plugins: one whose register_encoders raises, one whose encoder name clashes with
    the built-in 'fast', and a healthy one."""
    _plugin_module(tmp_path, "ltx_raiser", prefix="raiser", encoder_name="raiser-enc",
                   encoders_body='raise RuntimeError("boom in raiser")')
    _plugin_module(tmp_path, "ltx_clash", prefix="clash", encoder_name="fast", encoders_body="register(FakeEncoder)")
    _plugin_module(tmp_path, "ltx_good", prefix="good", encoder_name="good-enc", encoders_body="register(FakeEncoder)")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [md.EntryPoint(name=n, value=f"ltx_{n}", group="ltengine") for n in ("raiser", "clash", "good")]
    monkeypatch.setattr(md, "entry_points", lambda group=None: eps if group == "ltengine" else [])
    plugins_module.reset_host()
    yield
    plugins_module.reset_host()
    for name in ("ltx_raiser", "ltx_clash", "ltx_good"):
        sys.modules.pop(name, None)


def test_raising_and_clashing_plugins_are_skipped_with_a_warning(installed) -> None:
    host = PluginHost()
    with pytest.warns(PluginLoadWarning) as caught:
        registry = host.registry
    messages = " | ".join(str(w.message) for w in caught)
    assert "plugin 'raiser' is broken and is skipped: register_encoders hook raised RuntimeError: boom in raiser" in messages
    assert "plugin 'clash' is broken" in messages and "'fast' is registered twice" in messages
    # the built-in wins the clash; the broken plugins' other components are skipped too
    assert registry.get("encoder", "fast").plugin == "ltengine_plugins.usem3_encoder"
    assert not registry.has("blocker", "raiser-blocker") and not registry.has("blocker", "clash-blocker")
    assert registry.has("blocker", "good-blocker") and registry.get("encoder", "good-enc").plugin == "good"
    assert set(host.failed) == {"raiser", "clash"}
    assert host.failed["raiser"] == "register_encoders hook raised RuntimeError: boom in raiser"
    assert host.failed["clash"].startswith("DuplicateComponentError: encoder name 'fast' is registered twice")
    # skipped entirely: their other hooks (run_stage) no longer run
    assert not host.pm.has_plugin("raiser") and not host.pm.has_plugin("clash") and host.pm.has_plugin("good")


def test_every_call_keeps_working_with_broken_plugins_installed(installed) -> None:
    import ltx_good
    import ltx_raiser

    left = pd.DataFrame({"name": ["Acme Inc", "Globex"]})
    right = pd.DataFrame({"name": ["Globex GmbH", "ACME Incorporated"]})
    with pytest.warns(PluginLoadWarning, match="'raiser'"):
        out = lt.merge(left, right, on="name", progress=False, cache=False)
    assert list(out["name_y"]) == ["ACME Incorporated", "Globex GmbH"]
    assert ltx_raiser.STAGE_CALLS == [] and "encode" in ltx_good.STAGE_CALLS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not on every call
        lt.merge(left, right, on="name", progress=False, cache=False)


def test_plugins_command_lists_broken_plugins_with_their_error(installed) -> None:
    from ltengine.cli import cli

    with pytest.warns(PluginLoadWarning):
        result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert listing["raiser"]["error"] == "register_encoders hook raised RuntimeError: boom in raiser"
    assert "'fast' is registered twice" in listing["clash"]["error"]
    assert listing["good"]["encoders"] == ["good-enc"] and listing["good"]["blockers"] == ["good-blocker"]
    assert listing["ltengine_plugins.usem3_encoder"]["encoders"][0] == "usem3"


class _Raiser:
    @lt.hookimpl
    def register_rerankers(self, register):
        raise ValueError("bad reranker table")


class _Copycat:
    @lt.hookimpl
    def register_retrievers(self, register):
        from ltengine_plugins.exact_retriever import ExactRetriever

        register(type("Copy", (ExactRetriever,), {"name": "faiss"}))


def test_run_time_registration_is_strict_by_default_but_never_breaks_the_listing() -> None:
    from ltengine.cli import cli

    host = lt.get_host()
    host.register(_Raiser(), name="raiser-rt")
    try:
        with pytest.raises(PluginError, match="plugin 'raiser-rt': register_rerankers hook raised ValueError: bad reranker table"):
            host.registry  # noqa: B018
        result = CliRunner().invoke(cli, ["plugins"])  # crashed before (describe used the registry)
        assert result.exit_code == 0, result.output
        listing = {p["name"]: p for p in json.loads(result.stdout)}
        assert listing["raiser-rt"]["error"] == "register_rerankers hook raised ValueError: bad reranker table"
        assert listing["ltengine_plugins.faiss_retriever"]["retrievers"] == ["faiss"]
    finally:
        host.unregister("raiser-rt")
    host.register(_Copycat(), name="copycat-rt")
    try:
        with pytest.raises(DuplicateComponentError):
            host.registry  # noqa: B018
        result = CliRunner().invoke(cli, ["plugins"])
        assert result.exit_code == 0, result.output
        listing = {p["name"]: p for p in json.loads(result.stdout)}
        assert "'faiss' is registered twice" in listing["copycat-rt"]["error"]
    finally:
        host.unregister("copycat-rt")
    assert host.registry.get("retriever", "faiss").plugin == "ltengine_plugins.faiss_retriever"


def test_run_time_registration_can_opt_into_skipping() -> None:
    host = lt.get_host()
    host.register(_Raiser(), name="raiser-lenient", strict=False)
    try:
        with pytest.warns(PluginLoadWarning, match="'raiser-lenient' is broken and is skipped"):
            assert host.registry.has("retriever", "faiss")
        assert "raiser-lenient" in host.failed and not host.pm.has_plugin("raiser-lenient")
    finally:
        host.unregister("raiser-lenient")  # tolerated although already skipped
    assert "raiser-lenient" not in host.failed


def test_a_raising_register_commands_hook_is_skipped() -> None:
    import click

    class BadCommands:
        @lt.hookimpl
        def register_commands(self, cli):
            raise RuntimeError("no commands today")

    class GoodCommands:
        @lt.hookimpl
        def register_commands(self, cli):
            @cli.command(name="hello-d")
            def hello() -> None:
                click.echo("hi")

    host = PluginHost(load_entry_points=False)
    host.register(BadCommands(), name="bad-commands")
    host.register(GoodCommands(), name="good-commands")
    group = click.Group()
    with pytest.warns(PluginLoadWarning, match="'bad-commands' is broken.*register_commands hook raised RuntimeError"):
        host.add_commands(group)
    assert "hello-d" in group.commands
    assert host.failed["bad-commands"].startswith("register_commands hook raised")


# -- item 13: the environment variables ----------------------------------------------------------------
def test_stages_cannot_be_disabled(monkeypatch) -> None:
    monkeypatch.setenv("LTENGINE_DISABLE_PLUGINS", "stages, exact_retriever")
    with pytest.warns(PluginSettingWarning, match="'stages'.*essential and cannot be disabled"):
        host = PluginHost(load_entry_points=False)
    assert host.pm.has_plugin("ltengine.stages")
    assert not host.registry.has("retriever", "exact")
    monkeypatch.setattr(plugins_module, "_HOST", host)
    left = pd.DataFrame({"name": ["Acme Inc"]})
    right = pd.DataFrame({"name": ["Globex GmbH", "ACME Incorporated"]})
    out = lt.merge(left, right, on="name", progress=False, cache=False)  # misleading errors before
    assert out["name_y"].tolist() == ["ACME Incorporated"]


def test_unknown_names_in_the_env_variables_warn_listing_known_plugins(monkeypatch) -> None:
    monkeypatch.setenv("LTENGINE_DISABLE_PLUGINS", "faiss_retreiver")
    with pytest.warns(PluginSettingWarning, match=r"LTENGINE_DISABLE_PLUGINS names unknown plugin\(s\) "
                                                  r"'faiss_retreiver'.*Known plugins: built-in: .*faiss_retriever"):
        host = PluginHost()
    assert host.registry.has("retriever", "faiss")
    monkeypatch.delenv("LTENGINE_DISABLE_PLUGINS")
    monkeypatch.setenv("LTENGINE_LOAD_PLUGINS", "no-such-plugin")
    with pytest.warns(PluginSettingWarning, match="LTENGINE_LOAD_PLUGINS names unknown plugin.*'no-such-plugin'"):
        PluginHost()
    for good in ("faiss_retriever", "ltengine_plugins.faiss_retriever"):  # known names: silent
        monkeypatch.setenv("LTENGINE_DISABLE_PLUGINS", good)
        monkeypatch.delenv("LTENGINE_LOAD_PLUGINS", raising=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            PluginHost()


def test_entry_point_names_are_known_to_the_env_check(installed, monkeypatch) -> None:
    monkeypatch.setenv("LTENGINE_DISABLE_PLUGINS", "raiser,clash")
    monkeypatch.setenv("LTENGINE_LOAD_PLUGINS", "good")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        host = PluginHost()
        assert host.registry.has("encoder", "good-enc")


def test_the_cli_runs_when_a_plugins_register_commands_hook_raises(monkeypatch, capsys) -> None:
    from ltengine.cli import commands as cli_module

    class BadCommands:
        @lt.hookimpl
        def register_commands(self, cli):
            raise RuntimeError("no commands today")

    host = PluginHost(load_entry_points=False)
    host.register(BadCommands(), name="bad-commands-cli")
    monkeypatch.setattr(plugins_module, "_HOST", host)
    with pytest.warns(PluginLoadWarning, match="'bad-commands-cli' is broken"):
        with pytest.raises(SystemExit) as stop:
            cli_module.main(["plugins"])
    assert stop.value.code == 0
    listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert "register_commands hook raised RuntimeError" in listed["bad-commands-cli"]["error"]

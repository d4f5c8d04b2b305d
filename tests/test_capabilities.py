"""Declared capabilities: every optional method or attribute the core reads is declared on the base
classes in ``ltengine.components`` with a documented default, and the core reads them directly
(no ``hasattr``/``getattr`` probing of components: an AST scan below keeps it so)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.components import Blocker, Encoder, Reranker, Retriever
from ltengine.config import LinkConfig
from ltengine.engine.encoding import resolve_encoder
from ltengine.errors import ColumnError
from ltengine.testing import registered_plugin

ROOT = Path(__file__).resolve().parents[1]

#: The only hasattr/getattr calls allowed under ltengine/, none on a component:
#: (module, source of the call's arguments) -> why.
ALLOWED_PROBES: dict[tuple[str, str], str] = {
    ("ltengine/plugins.py", "plugin, '__version__', None"): "a plugin module's optional version string",
    ("ltengine/plugins.py", "self.pm.hook, f'register_{kind}s'"): "looking a pluggy hook up by its name",
    ("ltengine/config.py", "self, name"): "LinkConfig's own dataclass fields, by field name",
}


def _probes() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted((ROOT / "ltengine").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("hasattr", "getattr")):
                args = ", ".join(ast.unparse(a) for a in node.args)
                found.append((path.relative_to(ROOT).as_posix(), args, node.lineno))
    return found


def test_the_core_never_probes_components_with_hasattr_or_getattr() -> None:
    unexpected = [f"{module}:{line}: ({args})" for module, args, line in _probes()
                  if (module, args) not in ALLOWED_PROBES]
    assert not unexpected, (
        "declare the capability on the base class in ltengine/components.py and read it directly "
        "(or list a getattr on a non-component object in ALLOWED_PROBES, with the reason): " + "; ".join(unexpected)
    )


class _Plain(Retriever):
    name = "plain-retriever"

    def build(self, vectors, ids):
        self.ids = np.asarray(ids)

    def search(self, vectors, ids, k):
        raise NotImplementedError

    def score_pairs(self, queries, right_ids):
        return np.full(len(right_ids), 0.5, dtype=np.float32)


class _PlainReranker(Reranker):
    name = "plain-reranker"


class _PlainBlocker(Blocker):
    name = "plain-blocker"


def test_capabilities_are_declared_with_their_defaults() -> None:
    retriever = _Plain()
    assert retriever.size is None and retriever.index_type == "plain-retriever" and retriever.inputs == "vectors"
    retriever.size, retriever.index_type = 3, "hnsw"  # a retriever may assign them in build
    assert retriever.size == 3 and retriever.index_type == "hnsw"
    features = retriever.pair_features(np.zeros((2, 2), np.float32), np.array([1, 2]))
    assert list(features) == ["score_lexical"] and features["score_lexical"].tolist() == [0.5, 0.5]
    assert retriever.can_score_pairs and not Retriever.can_score_pairs.fget(object.__new__(Retriever))  # type: ignore[attr-defined]
    reranker = _PlainReranker()
    assert reranker.attach(object()) is None
    assert (Reranker.cascade_default, Reranker.output_columns, Reranker.calls_llm) == (False, (), False)
    assert _PlainBlocker().key_description is None
    assert Encoder.priority == 0 and Encoder.accepts("org/model") is False


def test_built_in_components_declare_what_they_offer() -> None:
    registry = lt.get_host().registry
    judge = registry.get("reranker", "llm").cls
    assert judge.cascade_default and judge.calls_llm and judge.output_columns == ("judge_confidence", "judge_error")
    cross = registry.get("reranker", "cross-encoder").cls
    assert not cross.cascade_default and not cross.calls_llm
    assert registry.get("encoder", "sentence-transformers").cls.priority < 0  # the catch-all is asked last
    lexical = registry.get("retriever", "char-ngram").create()
    lexical.build(["Gazprom", "Toyota"], np.array([0, 1]))
    assert lexical.size == 2 and "jaro_winkler" in "".join(lexical.pair_features(["Gazprom"], np.array([0])))


def test_a_third_party_encoder_with_a_higher_priority_claims_org_model_ids() -> None:
    class OrgEncoder(Encoder):
        name = "org-encoder"
        priority = 1

        @classmethod
        def accepts(cls, model: str) -> bool:
            return model.startswith("org/")

    class Plugin:
        @lt.hookimpl
        def register_encoders(self, register):
            register(OrgEncoder)

    before = resolve_encoder(lt.get_host().registry, LinkConfig(model="org/model"))
    assert before.name == "sentence-transformers"  # the catch-all, without the plugin
    with registered_plugin(Plugin(), name="org-encoders"):  # registered after the built-ins
        registry = lt.get_host().registry
        chosen = resolve_encoder(registry, LinkConfig(model="org/model"))
        assert isinstance(chosen, OrgEncoder) and chosen.model == "org/model"
        assert resolve_encoder(registry, LinkConfig(model="other/model")).name == "sentence-transformers"


class _LengthEncoder(Encoder):
    name = "cap-length"
    normalized = False

    @property
    def dimension(self) -> int:
        return 2

    def encode(self, texts, *, role):
        lengths = np.array([len(t) for t in texts], dtype=np.float32)
        return np.stack([np.ones_like(lengths), lengths / 100], axis=1)


class _SureReranker(Reranker):
    """Decides every pair (no NaN), and adds one column of its own."""

    name = "sure"
    output_columns = ("sure_note",)

    def score(self, pairs, left, right):
        same = (pairs.text_l.str[:1] == pairs.text_r.str[:1]).astype(float)
        return pd.DataFrame({"score": same * 0.9 + 0.05, "sure_note": "checked"}, index=pairs.index)


class _Components:
    @lt.hookimpl
    def register_encoders(self, register):
        register(_LengthEncoder)

    @lt.hookimpl
    def register_rerankers(self, register):
        register(_SureReranker)


@pytest.fixture
def sure():
    with registered_plugin(_Components(), name="capability-components") as name:
        yield name


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame({"name": ["apple", "banana"]}),
            pd.DataFrame({"name": ["avocado", "apple pie", "blueberry", "bandana"]}))


@pytest.mark.parametrize("merge", ["merge", "merge_knn"])
def test_is_match_is_the_nullable_boolean_even_when_every_pair_is_decided(sure, merge) -> None:
    left, right = _frames()
    out = getattr(lt, merge)(left, right, on="name", encoder="cap-length", rerank="sure", progress=False,
                             cache=False, keep_unmatched=False, **({"k": 2} if merge == "merge_knn" else {}))
    assert len(out) and out["is_match"].notna().all()  # every pair decided ...
    assert out["is_match"].dtype == "boolean"  # ... still the nullable boolean (was plain bool)
    assert (out["sure_note"] == "checked").all()


def test_a_rerankers_declared_output_columns_are_reserved_before_any_work(sure) -> None:
    left, right = _frames()
    with pytest.raises(ColumnError, match="sure_note"):
        lt.merge(left.assign(sure_note=1), right, on="name", encoder="cap-length", rerank="sure", progress=False,
                 cache=False)


def test_cli_rerank_flags_reach_the_reranker_that_calls_an_llm() -> None:
    from ltengine.cli.rerank_options import cli_options

    class MyJudge(Reranker):
        name = "my-judge"
        calls_llm = True

    class Plugin:
        @lt.hookimpl
        def register_rerankers(self, register):
            register(MyJudge)

    with registered_plugin(Plugin(), name="my-judge-plugin"):
        options = cli_options(("cross-encoder:/m", "my-judge:some/model"), task="firms")
    assert options["rerank_options"] == {"my-judge:some/model": {"task": "firms"}}
    assert cli_options(("llm:openai/gpt-4o-mini",), api_base="http://x")["rerank_options"] == {"api_base": "http://x"}

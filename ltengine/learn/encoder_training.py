"""The contrastive fine-tuning loop of :func:`ltengine.train_model` (sentence-transformers + torch).

Each step takes a batch of (left text, right text, hard negative) triples from different entities and
minimises sentence-transformers' ``MultipleNegativesRankingLoss``: every left text must be closer to
its own right text than to the batch's other right texts and hard negatives (in-batch negatives).
Validation top-1 (each held-out left text against every right text) is measured before training,
every ``eval_every`` steps and at the end; the best weights are kept (early stopping with
``patience``).  ``max_minutes`` stops the loop between steps.  The word-embedding matrix is frozen
(most of a multilingual model's weights: a few hundred pairs cannot teach it, and it keeps the
optimizer small); every transformer layer is trained.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from typing import Any

import numpy as np
import pandas as pd

from ltengine.progress import progress_bar


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How to train (defaults: see :func:`ltengine.train_model`)."""

    epochs: int | None = None
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_share: float = 0.1
    max_minutes: float | None = None
    seed: int = 0
    #: Evaluations without a better validation top-1 before stopping: two epochs' worth (4 a epoch), and never
    #: before the warm-up ends, so a noisy small validation split does not stop a run that has barely started.
    patience: int = 8
    evals_per_epoch: int = 4
    max_length: int = 128
    #: Training steps aimed at when ``epochs`` is None (fewer epochs than this would barely move the weights).
    auto_steps: int = 120
    max_auto_epochs: int = 10
    query_prefix: str = ""
    document_prefix: str = ""
    freeze_embeddings: bool = True
    progress: bool | None = None


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_batches(triples: pd.DataFrame, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle the rows and pack them into batches in which no entity, left text or right text
    repeats (a repeat would be an in-batch false negative)."""
    order = rng.permutation(len(triples))
    entity = triples["entity"].to_numpy()
    left, right = triples["left_text"].to_numpy(dtype=object), triples["right_text"].to_numpy(dtype=object)
    batches: list[list[int]] = []
    open_batches: list[tuple[list[int], set[Any]]] = []
    for i in order:
        keys = {("e", entity[i]), ("l", left[i]), ("r", right[i])}
        for rows, seen in open_batches:
            if not keys & seen:
                rows.append(int(i))
                seen.update(keys)
                break
        else:
            open_batches.append(([int(i)], set(keys)))
        full = [b for b in open_batches if len(b[0]) >= batch_size]
        for b in full:
            batches.append(b[0])
            open_batches.remove(b)
        if len(open_batches) > 8:  # bound the search: flush the fullest
            open_batches.sort(key=lambda b: -len(b[0]))
            batches.append(open_batches.pop(0)[0])
    batches += [rows for rows, _ in open_batches if len(rows) > 1]
    return [np.asarray(b) for b in batches]


def top1(model: Any, pairs: pd.DataFrame, distractors: list[str], settings: TrainSettings) -> float:
    """Share of held-out positive pairs whose left text ranks a right text of its own entity first,
    among the pairs' right texts and ``distractors``."""
    positives = pairs[pairs["label"] == 1]
    if positives.empty:
        return float("nan")
    lefts = list(dict.fromkeys(positives["left_text"]))
    rights = list(dict.fromkeys([*positives["right_text"], *distractors]))
    own = positives.groupby("left_text")["right_text"].agg(set).to_dict()
    kw = dict(normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False, batch_size=64, prompt="")
    q = model.encode([settings.query_prefix + t for t in lefts], **kw)
    d = model.encode([settings.document_prefix + t for t in rights], **kw)
    best = np.asarray(q @ d.T).argmax(axis=1)
    return float(np.mean([rights[j] in own[t] for t, j in zip(lefts, best)]))


def _features(model: Any, texts: list[str]) -> dict[str, Any]:
    """Tokenised ``texts`` on the model's device (``preprocess`` in sentence-transformers >= 6, ``tokenize`` before)."""
    import sentence_transformers
    import torch

    major = int(sentence_transformers.__version__.split(".")[0])
    features = model.preprocess(texts, prompt="") if major >= 6 else model.tokenize(texts)
    return {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}


def _trainable(model: Any, freeze_embeddings: bool) -> list[Any]:
    params = []
    for name, param in model.named_parameters():
        if freeze_embeddings and "word_embeddings" in name:
            param.requires_grad_(False)
        if param.requires_grad:
            params.append((name, param))
    return params


def fine_tune(model: Any, train: pd.DataFrame, val: pd.DataFrame, distractors: list[str],
              settings: TrainSettings) -> dict[str, Any]:
    """Fine-tune ``model`` (a SentenceTransformer, in place) on ``train`` triples (columns
    ``left_text``, ``right_text``, ``negative``, ``entity``); ``val`` (canonical frame, may be empty)
    drives early stopping.  Returns the facts of the run (steps, losses, validation top-1 ...)."""
    import torch
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    seed_everything(settings.seed)
    rng = np.random.default_rng(settings.seed)
    started = time.monotonic()
    deadline = started + settings.max_minutes * 60 if settings.max_minutes else math.inf
    saved_length = model.max_seq_length
    model.max_seq_length = min(saved_length or settings.max_length, settings.max_length)
    params = _trainable(model, settings.freeze_embeddings)
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW([p for _, p in params], lr=settings.learning_rate, weight_decay=0.01)
    steps_per_epoch = max(1, len(make_batches(train, settings.batch_size, np.random.default_rng(settings.seed))))
    epochs = settings.epochs or min(settings.max_auto_epochs, max(1, math.ceil(settings.auto_steps / steps_per_epoch)))
    total = steps_per_epoch * epochs
    warmup = max(1, int(total * settings.warmup_share))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    validate = not val.empty
    eval_every = max(1, steps_per_epoch // max(1, settings.evals_per_epoch)) if validate else 0
    history: list[dict[str, Any]] = []
    before = top1(model, val, distractors, settings) if validate else None
    best_score, bad_evals, improved = before, 0, False
    best_state = {n: p.detach().clone() for n, p in params} if validate else None
    if validate:
        history.append({"step": 0, "validation_top1": before})
    step, losses, stopped = 0, [], "completed"
    bar = progress_bar(total, "train_model", settings.progress, unit="step")
    model.train()
    try:
        for epoch in range(epochs):
            for rows in make_batches(train, settings.batch_size, rng):
                if time.monotonic() > deadline:
                    stopped = "max_minutes"
                    break
                batch = train.iloc[rows]
                columns = [[settings.query_prefix + t for t in batch["left_text"]],
                           [settings.document_prefix + t for t in batch["right_text"]],
                           [settings.document_prefix + t for t in batch["negative"]]]
                features = [_features(model, texts) for texts in columns]
                loss = loss_fn(features, torch.empty(0))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
                optimizer.step()
                scheduler.step()
                step += 1
                losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", **({"val": f"{best_score:.3f}"} if validate else {}))
                if validate and (step % eval_every == 0 or step == total):
                    model.eval()
                    score = top1(model, val, distractors, settings)
                    model.train()
                    history.append({"step": step, "epoch": epoch, "validation_top1": score})
                    if score > best_score:
                        best_score, bad_evals, improved = score, 0, True
                        best_state = {n: p.detach().clone() for n, p in params}
                    elif step > warmup:
                        bad_evals += 1
                        if bad_evals >= settings.patience:
                            stopped = "early_stopping"
                            break
            if stopped != "completed":
                break
    finally:
        bar.close()
        model.eval()
        model.max_seq_length = saved_length
    if best_state is not None:  # keep the best weights seen on the validation split (the base's if none beat it)
        with torch.no_grad():
            for name, param in params:
                param.copy_(best_state[name])
        if not improved:
            stopped += "; no step beat the base model on validation, so the base weights were kept"
    return {"steps": step, "epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": settings.batch_size,
            "learning_rate": settings.learning_rate, "stopped": stopped, "final_loss": float(np.mean(losses[-20:])) if losses else None,
            "validation_top1_before": before, "validation_top1_after": best_score, "history": history,
            "frozen": ["word_embeddings"] if settings.freeze_embeddings else [],
            "improved_on_validation": improved if validate else None}


"""The training loop of :func:`ltengine.train_reranker`: a sentence-transformers ``CrossEncoder``
(one logit per pair) fine-tuned with binary cross-entropy, evaluated on the validation pairs after
every ``eval_every`` steps, stopped early when the validation loss stops improving, at ``epochs`` or
at the deadline (``max_minutes``), and left holding its best weights.  A base encoder's classification
head (pooler and classifier) starts random and learns at its own, higher rate.

torch and sentence-transformers are imported inside the functions (``import ltengine`` stays fast).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import ModelUnavailableError
from ltengine.progress import progress_bar

Pairs = Sequence[tuple[str, str]]


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How to train (see :func:`ltengine.train_reranker` for the meaning of each)."""

    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 3e-5
    head_learning_rate: float | None = None  # the head's (pooler, classifier) rate; None: learning_rate
    max_length: int = 128
    seed: int = 0
    deadline: float | None = None  # time.monotonic() value
    eval_every: int | None = None  # steps; None = 4 evaluations per epoch
    patience: int = 3  # evaluations without improvement before stopping
    freeze_embeddings: bool = True
    progress: bool | None = None


def load_cross_encoder(folder: str, max_length: int, *, num_labels: int | None = 1, device: str | None = None) -> Any:
    """A CrossEncoder from a local folder (a base encoder gets a fresh one-logit head), on ``device``
    (None: CUDA when a GPU is present, else the CPU)."""
    try:
        import torch
        import transformers
        from sentence_transformers import CrossEncoder
    except ImportError as exc:  # pragma: no cover - the 'learn' extra installs them
        raise ModelUnavailableError("pip install sentence-transformers torch to train a reranker") from exc
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "newly initialized weights": expected for a base model
    try:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return CrossEncoder(folder, num_labels=num_labels, max_length=max_length, device=device)
    except Exception as exc:
        raise ModelUnavailableError(f"cannot load {folder!r} as a cross-encoder: {type(exc).__name__}: {exc}") from exc
    finally:
        transformers.logging.set_verbosity(level)


def has_fresh_head(model: Any) -> bool:
    """Whether the cross-encoder's classification head is new (the base was a plain encoder, not a
    trained cross-encoder): its config names no ``...ForSequenceClassification`` architecture."""
    return not any("ForSequenceClassification" in name for name in (model.model.config.architectures or []))


def head_parameter_names(net: Any) -> set[str]:
    """The parameters of the classification head: everything outside the base encoder, and its pooler."""
    prefix = net.base_model_prefix + "."
    return {name for name, _ in net.named_parameters() if not name.startswith(prefix) or ".pooler." in name}


def _encode(model: Any, batch: Pairs, max_length: int) -> Any:
    """The tokenised pairs on the model's device."""
    return model.tokenizer(
        [a for a, _ in batch], [b for _, b in batch], padding=True, truncation="longest_first",
        max_length=max_length, return_tensors="pt",
    ).to(model.model.device)


def predict_logits(model: Any, pairs: Pairs, max_length: int, batch_size: int = 64) -> np.ndarray:
    """Raw logits of ``pairs``, computed in batches of similar length (no gradients)."""
    import torch

    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
    out = np.empty(len(pairs), dtype=np.float64)
    net = model.model
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = _encode(model, [pairs[i] for i in idx], max_length)
            out[idx] = net(**enc).logits.view(-1).double().cpu().numpy()
    net.train(was_training)
    return out


def _bce(logits: np.ndarray, labels: np.ndarray) -> float:
    z, y = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def ranking_top1(logits: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """Share of the groups (left records) with a positive whose best-scored pair is positive (1.0 if none)."""
    frame = pd.DataFrame({"g": groups, "s": logits, "y": labels})
    frame = frame[frame.groupby("g")["y"].transform("max").to_numpy() == 1]
    if frame.empty:
        return 1.0
    return float(frame.sort_values("s", ascending=False, kind="stable").groupby("g").head(1)["y"].mean())


def train_loop(
    model: Any, train_pairs: Pairs, train_labels: np.ndarray, val_pairs: Pairs, val_labels: np.ndarray,
    settings: TrainSettings, val_groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place; return the training report (steps, losses, why it stopped).

    The weights kept are the best on the validation pairs: by the top-1 of each group's (left record's)
    candidates when ``val_groups`` is given (what a reranker is for), ties broken by the loss; else by the loss.
    Early stopping counts only evaluations after the warm-up."""
    import torch

    s = settings
    torch.manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    net = model.model
    if s.freeze_embeddings:  # the word-embedding matrix is most of a small model's weights: not updated
        net.get_input_embeddings().weight.requires_grad_(False)
    head = head_parameter_names(net)
    head_rate = s.learning_rate if s.head_learning_rate is None else s.head_learning_rate  # 0 freezes the head
    param_groups = [
        {"params": [p for n, p in net.named_parameters() if p.requires_grad and (n in head) == in_head], "lr": lr}
        for in_head, lr in ((False, s.learning_rate), (True, head_rate))
    ]
    params = [p for group in param_groups for p in group["params"]]
    optimizer = torch.optim.AdamW([g for g in param_groups if g["params"]], weight_decay=0.01)
    steps_per_epoch = max(1, math.ceil(len(train_pairs) / s.batch_size))
    total = steps_per_epoch * s.epochs
    warmup = max(1, int(0.1 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    eval_every = s.eval_every or max(1, steps_per_epoch // 4)
    labels = torch.as_tensor(np.asarray(train_labels, dtype=np.float32), device=net.device)
    groups = None if val_groups is None else np.asarray(val_groups)

    def evaluate() -> tuple[float, float]:
        """(validation top-1 or 0, loss) of the current weights."""
        logits = predict_logits(model, val_pairs, s.max_length)
        return (ranking_top1(logits, val_labels, groups) if groups is not None else 0.0), _bce(logits, val_labels)

    start_top1, start_loss = evaluate() if len(val_pairs) else (0.0, math.inf)
    # the untrained weights are never kept: a base encoder's classification head is random
    best_top1, best_loss = -1.0, math.inf
    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    history = [{"step": 0, "val_loss": round(start_loss, 6),
                **({"val_top1": round(start_top1, 4)} if groups is not None else {})}]
    best_step, since_best, step, stop = 0, 0, 0, "epochs"
    started = time.monotonic()
    net.train()
    with progress_bar(total, "training the reranker", s.progress, unit="step") as bar:
        for _epoch in range(s.epochs):
            order = rng.permutation(len(train_pairs))
            for start in range(0, len(order), s.batch_size):
                if s.deadline is not None and time.monotonic() > s.deadline:
                    stop = "max_minutes"
                    break
                idx = order[start : start + s.batch_size]
                enc = _encode(model, [train_pairs[i] for i in idx], s.max_length)
                loss = loss_fn(net(**enc).logits.view(-1), labels[idx])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                step += 1
                bar.update(1)
                if len(val_pairs) and (step % eval_every == 0 or step == total):
                    val_top1, val_loss = evaluate()
                    history.append({"step": step, "train_loss": round(float(loss.item()), 6),
                                    "val_loss": round(val_loss, 6),
                                    **({"val_top1": round(val_top1, 4)} if groups is not None else {})})
                    if val_top1 > best_top1 + 1e-9 or (val_top1 >= best_top1 - 1e-9 and val_loss < best_loss - 1e-4):
                        best_top1, best_loss, best_step, since_best = val_top1, val_loss, step, 0
                        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    elif step > warmup:
                        since_best += 1
                        if since_best >= s.patience:
                            stop = "early stopping"
                            break
            if stop != "epochs":
                break
    if len(val_pairs) and best_step > 0:
        net.load_state_dict(best_state)
    elif len(val_pairs) and step > 0:  # stopped before any evaluation: the weights as trained
        best_top1, best_loss = evaluate()
        best_step = step
    net.eval()
    return {
        "steps": step, "planned_steps": total, "steps_per_epoch": steps_per_epoch, "best_step": best_step,
        "best_val_loss": round(best_loss, 6), **({"best_val_top1": round(best_top1, 4)} if groups is not None else {}),
        "stopped_by": stop, "seconds": round(time.monotonic() - started, 2),
        "history": history,
    }

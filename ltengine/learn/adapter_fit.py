"""The adapter's training loop: a low-rank residual map ``x + (x @ down) @ up`` fitted with a
contrastive loss with in-batch negatives (the batch's queries against every training document, so
the hardest negatives, the ones the encoder confuses, are always in the softmax), early stopping on
the validation top-1 (torch, CPU, seconds)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from ltengine.progress import progress_bar


@dataclasses.dataclass(frozen=True)
class Task:
    """Encoded training data: ``queries`` (m, d) and ``documents`` (n, d) unit rows, and the
    positive (query, document) index pairs of the train and validation parts."""

    queries: np.ndarray
    documents: np.ndarray
    train_pairs: np.ndarray  # (p, 2) int
    val_pairs: np.ndarray  # (v, 2) int, possibly empty


@dataclasses.dataclass(frozen=True)
class FitResult:
    down: np.ndarray
    up: np.ndarray
    epochs: int
    best_epoch: int
    val_top1_before: float | None
    val_top1_after: float | None
    train_top1_before: float
    train_top1_after: float
    seconds: float


def _adapt(torch: Any, x: Any, down: Any, up: Any) -> Any:
    y = x + (x @ down) @ up
    return torch.nn.functional.normalize(y, dim=1)


def _top1(torch: Any, queries: Any, documents: Any, pairs: np.ndarray, down: Any, up: Any) -> float:
    """Share of the pairs' queries whose nearest document is one of their positives."""
    if len(pairs) == 0:
        return float("nan")
    with torch.no_grad():
        q_ids = np.unique(pairs[:, 0])
        best = (_adapt(torch, queries[q_ids], down, up) @ _adapt(torch, documents, down, up).T).argmax(1).numpy()
    positives = set(map(tuple, pairs.tolist()))
    return float(np.mean([(int(q), int(d)) in positives for q, d in zip(q_ids, best)]))


def _loss(torch: Any, anchors: Any, candidates: Any, positive: Any, scale: float) -> Any:
    """Multi-positive InfoNCE: -log(sum over positives / sum over all) of softmax(scale * cosine)."""
    logits = scale * (anchors @ candidates.T)
    all_ = torch.logsumexp(logits, dim=1)
    pos = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    return (all_ - pos).mean()


def fit_adapter(task: Task, *, rank: int, epochs: int, batch_size: int, learning_rate: float,
                weight_decay: float, scale: float, patience: int, seed: int, max_minutes: float | None,
                progress: bool | None) -> FitResult:
    """Train ``down``/``up`` on ``task``; keep the epoch with the best validation top-1 (train top-1
    without a validation part)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster than two fighting over shared cores
    try:
        return _fit(torch, task, rank=rank, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    weight_decay=weight_decay, scale=scale, patience=patience, seed=seed,
                    max_minutes=max_minutes, progress=progress)
    finally:
        torch.set_num_threads(threads)


def _fit(torch: Any, task: Task, *, rank: int, epochs: int, batch_size: int, learning_rate: float,
         weight_decay: float, scale: float, patience: int, seed: int, max_minutes: float | None,
         progress: bool | None) -> FitResult:
    start = time.perf_counter()
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    queries = torch.from_numpy(np.ascontiguousarray(task.queries, dtype=np.float32))
    documents = torch.from_numpy(np.ascontiguousarray(task.documents, dtype=np.float32))
    d = queries.shape[1]
    rank = max(1, min(rank, d))
    down = torch.nn.Parameter(torch.randn(d, rank) / d**0.5)
    up = torch.nn.Parameter(torch.zeros(rank, d))  # starts as the identity map: never worse at epoch 0
    optimizer = torch.optim.AdamW([down, up], lr=learning_rate, weight_decay=weight_decay)

    train = task.train_pairs
    q_ids = np.unique(train[:, 0])
    q_index = {int(q): i for i, q in enumerate(q_ids)}
    # positives between the training queries and *all* documents (other documents are negatives)
    mask_q = torch.zeros(len(q_ids), len(task.documents), dtype=torch.bool)
    mask_q[[q_index[int(q)] for q in train[:, 0]], train[:, 1]] = True

    has_val = len(task.val_pairs) > 0
    watched = task.val_pairs if has_val else train
    train_before = _top1(torch, queries, documents, train, down, up)
    best_score = _top1(torch, queries, documents, watched, down, up)
    before = best_score
    best_state = (down.detach().clone(), up.detach().clone())
    best_epoch, epoch, stale = 0, 0, 0
    deadline = None if max_minutes is None else start + 60.0 * max_minutes
    q_train = queries[q_ids]
    with progress_bar(epochs, "training the adapter (epochs)", progress) as bar:
        for epoch in range(1, epochs + 1):
            order = generator.permutation(len(q_ids))
            for begin in range(0, len(order), batch_size):
                batch = torch.from_numpy(order[begin : begin + batch_size])
                adapted_docs = _adapt(torch, documents, down, up)
                adapted_q = _adapt(torch, q_train[batch], down, up)
                loss = _loss(torch, adapted_q, adapted_docs, mask_q[batch], scale)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            bar.update(1)
            score = _top1(torch, queries, documents, watched, down, up)
            if score > best_score + 1e-9:
                best_score, best_epoch, stale = score, epoch, 0
                best_state = (down.detach().clone(), up.detach().clone())
            else:
                stale += 1
            if stale >= patience or (deadline is not None and time.perf_counter() > deadline):
                break
    best_down, best_up = best_state
    return FitResult(
        down=best_down.numpy().astype(np.float32), up=best_up.numpy().astype(np.float32),
        epochs=epoch, best_epoch=best_epoch,
        val_top1_before=before if has_val else None, val_top1_after=best_score if has_val else None,
        train_top1_before=train_before,
        train_top1_after=_top1(torch, queries, documents, train, best_down, best_up),
        seconds=time.perf_counter() - start,
    )

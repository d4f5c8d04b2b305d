"""ONNX Runtime backend for sentence-transformers models (private helper of the built-in plugins).

A sentence-transformers folder is exported once to ONNX with ``torch.onnx`` (the whole module chain:
transformer, pooling, dense layers, normalisation), optionally quantised to dynamic int8 with
``onnxruntime.quantization``, and cached under :func:`models_dir` keyed by the folder's content
(:func:`build_onnx`, an atomic build: temporary sibling folder, marker written last, ``os.replace``,
file lock across processes).  :class:`OnnxSentenceEncoder` runs it: texts tokenised with the
model's own fast tokenizer, sorted by token length and cut into batches that pad little, on the
CUDA provider when ONNX Runtime has one, else on the CPU with one intra-op thread per core the
process may use (no spinning threads, so ONNX Runtime, torch, FAISS and BLAS do not oversubscribe).

Not a plugin: it registers nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ltengine.cache import ltengine_home
from ltengine.errors import ModelUnavailableError
from ltengine.models import allowed_threads
from ltengine_plugins._file_lock import build_lock

#: Bumped when the export recipe changes: older builds are rebuilt.
EXPORT_VERSION = 1
MARKER = "ltengine-build.json"
#: At most this many padded tokens per batch (so a few long texts do not make huge batches).
MAX_BATCH_TOKENS = 16_384
#: The backends an "onnx" option may name; "onnx-int8" = dynamic int8 weights.
ONNX_BACKENDS = ("onnx", "onnx-int8")


def models_dir() -> Path:
    """``$LTENGINE_MODELS_DIR``, else ``ltengine_home()/models``."""
    env = os.environ.get("LTENGINE_MODELS_DIR")
    return Path(env).expanduser() if env else ltengine_home() / "models"


def onnx_available() -> bool:
    """Whether onnxruntime and onnx (for the export) are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def onnx_folder(identity: str, backend: str) -> Path:
    """Where the ``backend`` build of the model whose content key is ``identity`` lives."""
    digest = hashlib.sha256(f"{identity}|v{EXPORT_VERSION}".encode()).hexdigest()[:16]
    return models_dir() / f"st-{backend}-{digest}"


def cached_build(identity: str, backend: str) -> Path | None:
    """The finished ``backend`` build of ``identity``, or None when there is none yet."""
    folder = onnx_folder(identity, backend)
    return folder if _valid(folder) else None


def _valid(folder: Path) -> bool:
    try:
        info = json.loads((folder / MARKER).read_text("utf-8"))
        return info.get("export_version") == EXPORT_VERSION and all(
            (folder / rel).stat().st_size == size for rel, size in info["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def build_onnx(st_model: Any, identity: str, backend: str) -> Path:
    """The ONNX folder of ``st_model`` (a loaded SentenceTransformer) for ``backend``, exported
    first unless a valid build is cached.  Raises ModelUnavailableError if the export fails."""
    if backend not in ONNX_BACKENDS:
        raise ValueError(backend)
    folder = onnx_folder(identity, backend)
    if _valid(folder):
        return folder
    with build_lock(folder.parent, folder.name):
        if _valid(folder):  # another process finished it meanwhile
            return folder
        tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir(parents=True)
            extra = _export(st_model, tmp, quantized=backend == "onnx-int8")
            files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
            info = {"export_version": EXPORT_VERSION, "identity": identity, "backend": backend, "files": files, **extra}
            (tmp / MARKER).write_text(json.dumps(info, indent=1), "utf-8")
            if folder.exists():
                trash = folder.parent / f".trash-{folder.name}-{uuid.uuid4().hex[:8]}"
                os.replace(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, folder)
        except ModelUnavailableError:
            raise
        except Exception as exc:
            raise ModelUnavailableError(
                f"cannot export the model to ONNX under {folder.parent}: {type(exc).__name__}: {exc}. "
                "Use encoder_options={'backend': 'torch'} to run it with torch instead") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _export(st_model: Any, dest: Path, *, quantized: bool) -> dict[str, Any]:
    import torch

    tokenizer = st_model.tokenizer
    tokenizer.save_pretrained(str(dest / "hf-tokenizer"))
    if not (dest / "hf-tokenizer" / "tokenizer.json").exists():
        raise ModelUnavailableError("the ONNX backend needs a fast tokenizer (tokenizer.json); use backend='torch'")
    os.replace(dest / "hf-tokenizer" / "tokenizer.json", dest / "tokenizer.json")
    shutil.rmtree(dest / "hf-tokenizer")
    sample = tokenizer(["an example", "another, longer example text"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class Chain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st_model

        def forward(self, *inputs: Any) -> Any:
            return self.st(dict(zip(names, inputs)))["sentence_embedding"]

    module = Chain().to("cpu").eval()
    fp32 = dest / "model_fp32.onnx"
    axes = {n: {0: "batch", 1: "seq"} for n in names} | {"embedding": {0: "batch"}}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dimension = int(module(*(sample[n].cpu() for n in names)).shape[1])
        torch.onnx.export(module, tuple(sample[n].cpu() for n in names), str(fp32), input_names=names,
                          output_names=["embedding"], opset_version=17, dynamo=False, dynamic_axes=axes)
    if quantized:
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # "consider pre-processing" advice
        try:  # per-channel int8 weights, 7-bit range (no u8 x s8 saturation on AVX2 without VNNI)
            quantize_dynamic(str(fp32), str(dest / "model.onnx"), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul"], per_channel=True, reduce_range=True)
        finally:
            logging.disable(previous)
        fp32.unlink()
    else:
        os.replace(fp32, dest / "model.onnx")
    transformer = st_model[0]
    return {"inputs": names, "dimension": dimension, "max_seq_length": int(st_model.max_seq_length or 512),
            "do_lower_case": bool(getattr(transformer, "do_lower_case", False)),
            "pad_id": int(tokenizer.pad_token_id or 0), "quantized": quantized, "torch": torch.__version__}


def ort_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, then the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or available


class OnnxSentenceEncoder:
    """Runs a folder built by :func:`build_onnx`: ``encode(texts)`` -> unit float32 rows in input order."""

    def __init__(self, folder: Path, *, threads: int | None = None, batch_size: int = 64) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.info = json.loads((folder / MARKER).read_text("utf-8"))
        self.batch_size = max(1, int(batch_size))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.info["max_seq_length"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or allowed_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads yield the cores
        self.providers = ort_providers()
        self.session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=self.providers)

    def batches(self, texts: list[str]) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Length-bucketed batches: (row indices, padded inputs), texts sorted by token length."""
        if self.info["do_lower_case"]:
            texts = [t.lower() for t in texts]
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(lengths, kind="stable")
        start = 0
        while start < len(order):
            width = int(lengths[order[min(len(order), start + self.batch_size) - 1]])
            size = max(1, min(self.batch_size, MAX_BATCH_TOKENS // max(1, width)))
            rows = order[start : start + size]
            width = int(lengths[rows[-1]])
            arrays = {n: np.zeros((len(rows), width), dtype=np.int64) for n in self.info["inputs"]}
            for i, row in enumerate(rows):
                enc, n = encodings[row], int(lengths[row])
                arrays["input_ids"][i, :n] = enc.ids
                arrays["input_ids"][i, n:] = self.info["pad_id"]
                arrays["attention_mask"][i, :n] = 1
                if "token_type_ids" in arrays:
                    arrays["token_type_ids"][i, :n] = enc.type_ids
            yield rows, arrays
            start += len(rows)

    def encode(self, texts: list[str]) -> np.ndarray:
        out: np.ndarray | None = None
        for rows, arrays in self.batches(texts):
            vectors = self.session.run(["embedding"], arrays)[0]
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        if out is None:
            return np.zeros((0, 0), dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)
        return out

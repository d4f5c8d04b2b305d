"""A fitted Linker on disk: :func:`save_index` and :func:`load_index` (``Linker.save``/``Linker.load``).

A saved index is a folder (``registry.lti``) of plain files, never pickle or joblib:

- ``manifest.json``: the format name and version, the ltengine version, the config, the encoder's
  identity (``cache_id``: name, model content, options), the blocks and which retriever folder holds
  each, the fitted match-probability models, and the SHA-256 of every other file;
- ``right.parquet``: the right table as given to ``fit``/``add`` (the output's right-hand columns);
  ``rows.parquet``: each row's serialised text, lexical text and block key; ``ids.npy``: the indexed rows;
- ``blocks/<n>/semantic/`` and ``blocks/<n>/lexical/``: each block's retrievers, written by their own
  ``save`` (FAISS's ``write_index``; a flat, HNSW or IVF index can be memory-mapped on load).

Saving builds the folder beside ``path`` and renames it into place (an existing index there is
replaced only once the new one is complete).  Loading checks the format version, every checksum and the
encoder's identity before anything is used: a damaged file, another format or another encoder is an
error, never wrong links.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine._version import __version__
from ltengine.config import LinkConfig
from ltengine.engine.blocks import FittedRight
from ltengine.engine.calibration import MatchModel, ModelStore, RightReference
from ltengine.errors import ConfigError, FileFormatError, LinkInputError

FORMAT = "ltengine-index"
#: Bumped whenever the layout changes; another version is refused on load.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Config fields that shape the saved index: ``Linker.load(path, **overrides)`` may not change them.
INDEX_FIELDS = ("right_on", "model", "encoder", "encoder_options", "retriever", "retriever_options", "blocker",
                "blocker_options", "block_on", "mode", "lexical_retriever", "lexical_options",
                "keep_symbol_records")
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_key(key: Any) -> Any:
    """A block key as JSON (str, int, float, bool or None: keys that come back equal)."""
    if isinstance(key, np.generic):
        key = key.item()
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    raise LinkInputError(f"block key {key!r} ({type(key).__name__}) cannot be saved: a saved index needs block keys "
                         "that are strings or numbers (a blocker returning other keys cannot be saved)")


def _write_table(frame: pd.DataFrame, path: Path, what: str) -> None:
    try:
        frame.to_parquet(path, engine="pyarrow")
    except ImportError:
        raise LinkInputError("saving an index needs pyarrow: pip install 'ltengine[parquet]'") from None
    except (ValueError, TypeError, ArithmeticError) as exc:  # pyarrow's ArrowInvalid/ArrowTypeError subclass these
        raise LinkInputError(f"cannot save {what} as Parquet: {exc}. Convert the column named there "
                             "to one type (e.g. df[col].astype(str)) and fit again") from None


def save_index(path: str | Path, config: LinkConfig, right: FittedRight, models: ModelStore,
               encoder_id: str | None) -> Path:
    """Write the fitted right side ``right`` of a Linker with ``config`` to the folder ``path``.

    ``encoder_id``: the encoder's ``cache_id`` (None when the index holds no vectors).  Returns the path."""
    path = Path(path)
    if path.exists() and not (path / MANIFEST).is_file():
        raise LinkInputError(f"{path} exists and is not a saved ltengine index: choose another path")
    try:
        config_data = json.loads(json.dumps(config.to_dict()))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the config cannot be saved as JSON ({exc}): component options must be plain values") from None
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    temp.mkdir(parents=True)
    try:
        blocks = _write_content(temp, right)
        files = sorted(p.relative_to(temp).as_posix() for p in temp.rglob("*") if p.is_file())
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "ltengine_version": __version__,
            "config": config_data, "encoder": encoder_id, "semantic": bool(right.semantic),
            "profile": right.profile, "rows": len(right.frame), "blocks": blocks,
            "lexical_built": bool(right.lexical), "vectors": right.vectors is not None,
            "models": {mode: _model_data(model) for mode, model in models.fitted().items()},
            "files": {name: _sha256(temp / name) for name in files},
        }
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        _replace(temp, path)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return path


def _write_content(folder: Path, right: FittedRight) -> list[dict[str, Any]]:
    """Write the tables, ids and each block's retrievers; returns the manifest's block list."""
    _write_table(right.frame, folder / "right.parquet", "the right table")
    rows = pd.DataFrame({"text": right.texts.astype(str), "lexical_text": right.lexical_texts.astype(str)})
    if right.keys is not None:
        rows["block_key"] = pd.Series(right.keys, dtype=object).map(lambda k: None if pd.isna(k) else _json_key(k))
    _write_table(rows, folder / "rows.parquet", "the block keys")
    np.save(folder / "ids.npy", np.asarray(right.ids, dtype=np.int64), allow_pickle=False)
    if right.vectors is not None and right.vector_rows is not None:
        np.save(folder / "vectors.npy", right.vectors, allow_pickle=False)
        np.save(folder / "vector_rows.npy", right.vector_rows, allow_pickle=False)
    blocks = []
    for number, key in enumerate(right.block_sizes):
        entry: dict[str, Any] = {"key": _json_key(key), "size": int(right.block_sizes[key])}
        for kind, retrievers in (("semantic", right.blocks), ("lexical", right.lexical)):
            if key in retrievers:
                retriever = retrievers[key]
                if not retriever.can_save:
                    raise LinkInputError(f"retriever {retriever.name!r} cannot be saved (it has no save/load)")
                target = folder / "blocks" / str(number) / kind
                target.mkdir(parents=True)
                retriever.save(target)
                entry[kind] = retriever.name
        blocks.append(entry)
    return blocks


def _replace(temp: Path, path: Path) -> None:
    """Move the complete folder ``temp`` to ``path``; an index already there goes only after that."""
    if not path.exists():
        os.replace(temp, path)
        return
    old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
    os.replace(path, old)
    try:
        os.replace(temp, path)
    except OSError:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -- loading ------------------------------------------------------------------------------------------
def read_manifest(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """The manifest of the saved index at ``path``, after checking its format, version and (with
    ``verify``) every file's checksum; FileFormatError otherwise."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise FileFormatError(f"{path} is not a saved ltengine index (no {MANIFEST}); create one with "
                              "Linker.fit(right).save(path) or `ltengine index RIGHT --on ... --out PATH`")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{path}/{MANIFEST} is damaged ({exc}); save the index again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FileFormatError(f"{path} is not a saved ltengine index ({MANIFEST} names no {FORMAT!r} format)")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise FileFormatError(
            f"{path} was saved in index format version {version!r} (ltengine {manifest.get('ltengine_version')}); "
            f"this ltengine ({__version__}) reads version {FORMAT_VERSION}: fit and save the index again")
    if verify:
        for name, digest in manifest["files"].items():
            file = path / name
            if not file.is_file():
                raise FileFormatError(f"{path} is damaged: {name} is missing; save the index again")
            if _sha256(file) != digest:
                raise FileFormatError(f"{path} is damaged: {name} does not match its checksum; save the index again")
    return manifest


def saved_config(manifest: dict[str, Any], overrides: dict[str, Any]) -> LinkConfig:
    """The saved config with ``overrides`` applied; fields that shaped the index may not change."""
    config = LinkConfig.from_dict(manifest["config"])
    changed = config.replace(**overrides) if overrides else config
    before, after = config.to_dict(), changed.to_dict()
    for name in INDEX_FIELDS:
        if after[name] != before[name]:
            raise ConfigError(
                f"the saved index was built with {name}={before[name]!r}; loading it with "
                f"{name}={after[name]!r} would give wrong links: fit and save a new index instead")
    return changed


def load_index(path: str | Path, manifest: dict[str, Any], config: LinkConfig, encoder: Callable[[], Any],
               create: Callable[[str, dict[str, Any]], Any], *, mmap: bool = False) -> tuple[FittedRight, ModelStore]:
    """Read the fitted right side and the match-probability models of the index at ``path``.

    ``encoder()``: the configured encoder (its ``cache_id`` must equal the saved one);
    ``create(name, options)``: a new retriever; ``mmap``: map the retrievers' index files."""
    path = Path(path)
    if manifest["encoder"] is not None:
        current = encoder().cache_id
        if current != manifest["encoder"]:
            raise ConfigError(
                f"{path} was built with the encoder {manifest['encoder']!r}, but this Linker's encoder is "
                f"{current!r} (another model, model version or options): its vectors would not be comparable. "
                "Load it with the same model, or fit and save a new index")
    try:
        frame = pd.read_parquet(path / "right.parquet", engine="pyarrow")
        rows = pd.read_parquet(path / "rows.parquet", engine="pyarrow")
        ids = np.load(path / "ids.npy", allow_pickle=False)
        keys = rows["block_key"].to_numpy(dtype=object) if "block_key" in rows else None
        right = FittedRight(frame, rows["text"].to_numpy(dtype=object), {}, {},
                            rows["lexical_text"].to_numpy(dtype=object), keys, ids,
                            semantic=bool(manifest["semantic"]), profile=dict(manifest["profile"]))
        if manifest["vectors"]:
            right.vectors = np.load(path / "vectors.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
            right.vector_rows = np.load(path / "vector_rows.npy", allow_pickle=False)
        for number, block in enumerate(manifest["blocks"]):
            key = block["key"]
            right.block_sizes[key] = int(block["size"])
            for kind, name, options in (("semantic", config.retriever, config.retriever_options),
                                        ("lexical", config.lexical_retriever, config.lexical_options)):
                if kind in block:
                    retriever = create(name, options)
                    retriever.load(path / "blocks" / str(number) / kind, mmap=mmap)
                    (right.blocks if kind == "semantic" else right.lexical)[key] = retriever
        models = ModelStore()
        models.restore({mode: _model(data) for mode, data in manifest["models"].items()})
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:  # damaged despite matching checksums
        raise FileFormatError(f"{path} cannot be read ({type(exc).__name__}: {exc}); save the index again") from None
    if len(frame) != manifest["rows"] or len(right.texts) != len(frame):
        raise FileFormatError(f"{path} is damaged: {len(frame)} rows, {len(right.texts)} texts, "
                              f"the manifest says {manifest['rows']}; save the index again")
    return right, models


def _model_data(model: MatchModel) -> dict[str, Any]:
    data = dataclasses.asdict(dataclasses.replace(model, reference=None))
    return dict(data, reference=model.reference.to_dict() if model.reference is not None else None)


def _model(data: dict[str, Any]) -> MatchModel:
    reference = data.get("reference")
    return MatchModel(features=tuple(data["features"]), edges=tuple(tuple(e) for e in data["edges"]),
                      weights=tuple(tuple(w) for w in data["weights"]), prior_logit=float(data["prior_logit"]),
                      pairs=int(data["pairs"]), left_rows=int(data["left_rows"]), iterations=int(data["iterations"]),
                      converged=bool(data["converged"]), share_shift=float(data.get("share_shift", 0.0)),
                      reference=RightReference.from_dict(reference) if reference is not None else None)


def is_saved_index(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a saved index's manifest."""
    return (Path(path) / MANIFEST).is_file()

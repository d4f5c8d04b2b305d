"""The cross-encoder reranker: ``rerank="cross-encoder:<Hub id or local folder>"``.

Any sentence-transformers ``CrossEncoder`` reads both texts of a pair together, which is slower
than the bi-encoder but sharper.  Models are found and loaded like the sentence-transformers encoder's
(``ltengine_plugins._st_models``: local folder, packaged weights, then the Hugging Face Hub, with the
same offline error).  Scores are mapped to 0..1: a one-label model goes through its sigmoid (or ours,
if it has none); a model with several labels is soft-maxed and the ``label`` column (default: the
last) is the match probability.  A model trained by ``ltengine.train_reranker`` carries
``ltengine_calibration.json`` (Platt or isotonic scaling fitted on its validation logits): its raw
logits are mapped through it instead, so ``rerank_score`` is a calibrated probability.

Pairs are scored in batches of similar length (sorted by characters), so little padding is computed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from ltengine_plugins._st_models import load_st_model, offline_models, resolve_model_path

from ltengine.components import Reranker
from ltengine.errors import ConfigError, ModelUnavailableError
from ltengine.hookspecs import hookimpl
from ltengine.numeric import is_integer
from ltengine.progress import progress_bar

if TYPE_CHECKING:
    from ltengine.run import RunContext

#: Pairs per ``predict`` call: the unit of progress.
CHUNK = 1024
#: Written beside a trained model by ``ltengine.train_reranker`` (ltengine.learn.score_calibration).
CALIBRATION_FILE = "ltengine_calibration.json"


def read_calibration(folder: str) -> dict[str, Any] | None:
    """The score calibration stored in a local model folder, or None."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        params = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{str(path)!r} is not a readable score calibration: {exc}") from exc
    if not isinstance(params, dict) or params.get("method") not in ("platt", "isotonic"):
        raise ModelUnavailableError(f"{str(path)!r}: unknown score calibration (method must be 'platt' or 'isotonic')")
    return params


def calibrate_logits(params: dict[str, Any], logits: np.ndarray, retrieval: np.ndarray | None = None) -> np.ndarray:
    """Platt: sigmoid(a * logit + b), plus ``w_score`` * the pair's retrieval score when the map was fitted
    with it; isotonic: piecewise-linear through the fitted knots, with a ``tie_break`` share of
    sigmoid(logit) mixed in so pairs on one step keep their order."""
    z = np.asarray(logits, dtype=np.float64)
    if params["method"] == "platt":
        linear = float(params["a"]) * z + float(params["b"])
        if "w_score" in params:
            s = np.zeros(len(z)) if retrieval is None else np.nan_to_num(np.asarray(retrieval, dtype=np.float64))
            linear = linear + float(params["w_score"]) * s
        return 1.0 / (1.0 + np.exp(-linear))
    steps = np.interp(z, np.asarray(params["x"], dtype=np.float64), np.asarray(params["y"], dtype=np.float64))
    eps = float(params.get("tie_break", 0.0))
    return (1.0 - eps) * steps + eps / (1.0 + np.exp(-z))


def _check_cross_encoder_folder(path: str) -> None:
    """A local bi-encoder (sentence embedding) folder is not a cross-encoder: say so clearly."""
    config = Path(path) / "config.json"
    try:
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError):
        return
    if architectures and not any("SequenceClassification" in a for a in architectures):
        raise ModelUnavailableError(
            f"{path!r} is not a cross-encoder: its architecture is {', '.join(architectures)} (a sentence "
            "embedding model?). Use it as the encoder (model=...) and give rerank='cross-encoder:...' a "
            "cross-encoder (sequence classification) model."
        )


class CrossEncoderReranker(Reranker):
    """Re-score pairs with a sentence-transformers CrossEncoder."""

    name = "cross-encoder"
    aliases = ("ce", "cross_encoder", "crossencoder")
    #: Cheap enough to score every candidate.
    cascade_default = False
    scores_pairs_independently = True  # each pair scored from its own texts: Ray splits them over actors

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: Pairs per forward pass.
        batch_size: int = 32
        #: torch device: None = sentence-transformers' choice.
        device: str | None = None
        #: Truncate pairs to this many tokens (None = the model's limit).
        max_length: int | None = None
        #: For models with several labels: the index of the "match" label (None = the last).
        label: int | None = None
        #: Passed to CrossEncoder (e.g. backend="onnx").
        model_kwargs: dict | None = None

        def __post_init__(self) -> None:
            if not is_integer(self.batch_size) or self.batch_size < 1:
                raise ValueError(f"batch_size must be a positive integer; got {self.batch_size!r}")
            if self.max_length is not None and (not is_integer(self.max_length) or self.max_length < 1):
                raise ValueError(f"max_length must be a positive integer; got {self.max_length!r}")

    _model: Any = None
    _run: RunContext | None = None
    _calibration: dict[str, Any] | None = None

    def __init__(self, model: str | None = None, options: Any = None, **kw: Any) -> None:
        super().__init__(model, options, **kw)
        if not self.model:
            raise ConfigError(
                "the cross-encoder reranker needs a model: rerank='cross-encoder:<Hugging Face id or local folder>'"
            )

    def load(self) -> Any:
        if self._model is None:
            target, source = resolve_model_path(self.model)
            if source != "hub":
                _check_cross_encoder_folder(target)
                self._calibration = read_calibration(target)
            o = self.options
            kwargs = dict(o.model_kwargs or {})
            if o.max_length is not None:
                kwargs["max_length"] = o.max_length
            self._model = load_st_model(
                "CrossEncoder", target, source, name=self.model, device=o.device, kwargs=kwargs,
                kind="cross-encoder", user="the cross-encoder reranker",
                hub_hint=f"Pass a local cross-encoder folder instead (models available offline: {offline_models()[0]}; "
                "those are bi-encoders, not cross-encoders).",
            )
        return self._model

    def _predict(self, model: Any, batch: list[tuple[str, str]]) -> np.ndarray:
        labels = int(getattr(model, "num_labels", 1) or 1)
        if labels == 1:  # a logit: through our calibration or a sigmoid, whatever activation the model saved
            import torch

            activation = torch.nn.Identity() if self._calibration is not None else torch.nn.Sigmoid()
            scores = np.asarray(
                model.predict(batch, batch_size=self.options.batch_size, show_progress_bar=False,
                              activation_fn=activation),
                dtype=np.float64,
            ).reshape(-1)
            return scores  # raw logits when calibrated: the map is applied per pair in :meth:`score`
        probs = np.asarray(
            model.predict(batch, batch_size=self.options.batch_size, show_progress_bar=False, apply_softmax=True),
            dtype=np.float64,
        ).reshape(len(batch), labels)
        label = labels - 1 if self.options.label is None else self.options.label
        if not -labels <= label < labels:
            raise ConfigError(f"label {label} is out of range for a cross-encoder with {labels} labels")
        return probs[:, label]

    def score(self, pairs: pd.DataFrame, left: pd.DataFrame, right: pd.DataFrame) -> pd.Series:
        texts = list(zip(pairs["text_l"].astype(str), pairs["text_r"].astype(str)))
        positions: dict[tuple[str, str], int] = {}  # each distinct pair is scored once
        codes = np.array([positions.setdefault(t, len(positions)) for t in texts], dtype=np.int64)
        unique_pairs = list(positions)
        # batches of similar length: sort by characters (longest first), score, put back in place
        by_length = sorted(range(len(unique_pairs)), key=lambda i: -len(unique_pairs[i][0]) - len(unique_pairs[i][1]))
        unique_pairs = [unique_pairs[i] for i in by_length]
        sorted_out = np.empty(len(unique_pairs), dtype=np.float64)
        progress = self._run.config.progress if self._run is not None else None
        if unique_pairs:
            model = self.load()
            with progress_bar(
                len(unique_pairs), "reranking (cross-encoder)", progress, unit="pair"
            ) as bar:
                for start in range(0, len(unique_pairs), CHUNK):
                    batch = unique_pairs[start : start + CHUNK]
                    sorted_out[start : start + len(batch)] = self._predict(model, batch)
                    bar.update(len(batch))
        out = np.empty(len(unique_pairs), dtype=np.float64)
        out[np.asarray(by_length, dtype=np.int64)] = sorted_out
        values = out[codes] if len(codes) else np.zeros(0)
        if self._calibration is not None and len(values):  # a trained model: logits through its calibration
            column = next((c for c in ("retrieval_score", "score") if c in pairs.columns), None)  # in-run / output name
            retrieval = pairs[column].to_numpy(dtype=np.float64) if column else None
            values = calibrate_logits(self._calibration, values, retrieval)
        return pd.Series(np.clip(values, 0.0, 1.0), index=pairs.index)

    def attach(self, run: RunContext) -> None:
        """Keep the run: its config says whether to show a progress bar."""
        self._run = run


@hookimpl
def register_rerankers(register):
    register(CrossEncoderReranker)

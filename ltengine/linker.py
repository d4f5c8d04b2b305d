"""The Linker: runs blocker -> encoder -> retriever -> reranker(s) -> decision -> merged frame."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .config import LinkConfig
from .decide import best_per_left, one_to_one, top_k_per_left
from .encoding import encode_texts, resolve_encoder
from .errors import ColumnError, LinkInputError
from .plugins import PluginHost, get_host
from .progress import progress_bar
from .retrieval import empty_candidates
from .text import check_columns, check_frame, serialize

Mode = Literal["best", "knn", "range"]
#: Columns ltengine adds to merged output; input tables must not already use them.
OUTPUT_COLUMNS = ("score", "rank")
#: Left rows searched per retriever call in an unblocked link (unit of progress).
SEARCH_CHUNK = 8192


class LinkWarning(UserWarning):
    """Something the user should know about a link run (e.g. blocks present on one side only)."""


@dataclasses.dataclass
class RunContext:
    """State shared by the stages of one run: config, plugin host, timings and a report."""

    config: LinkConfig
    host: PluginHost
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    report: dict[str, Any] = dataclasses.field(default_factory=dict)

    def run(self, stage: str, component: Any, **payload: Any) -> Any:
        """Run ``stage`` through the ``run_stage`` hook (so plugins can wrap it) and time it."""
        start = time.perf_counter()
        result = self.host.hook.run_stage(stage=stage, component=component, payload=payload, context=self)
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start
        return result

    def create(self, kind: Any, name: str, **kwargs: Any) -> Any:
        return self.host.registry.get(kind, name).create(**kwargs)


@dataclasses.dataclass
class _FittedRight:
    frame: pd.DataFrame
    texts: np.ndarray
    blocks: dict[Any, Any]  # block key (None when unblocked) -> retriever
    block_sizes: dict[Any, int]


def _as_config(config: LinkConfig | Mapping[str, Any] | str | Path | None) -> LinkConfig:
    if config is None:
        return LinkConfig()
    if isinstance(config, LinkConfig):
        return config
    if isinstance(config, (str, Path)):
        return LinkConfig.from_path(config)
    if isinstance(config, Mapping):
        return LinkConfig.from_dict(config)
    raise LinkInputError(f"config must be a LinkConfig, a dict or a TOML file path; got {type(config).__name__}")


class Linker:
    """Links left tables to one right table.  Build the right-hand index once, link many left frames::

        linker = Linker(LinkConfig(left_on=("name",), right_on=("name",))).fit(registry_df)
        matched = linker.merge(batch1)
        matched2 = linker.merge(batch2)
    """

    def __init__(
        self, config: LinkConfig | Mapping[str, Any] | str | Path | None = None, *, host: PluginHost | None = None,
        **overrides: Any,
    ) -> None:
        config = _as_config(config)
        self.config = config.replace(**overrides) if overrides else config
        self.host = host or get_host()
        if self.config.rerank or self.config.rerank_options:
            from .rerank import validate

            validate(self.config, self.host.registry)  # fail before encoding, not after
        self.context = RunContext(self.config, self.host)
        self._encoder: Any = None
        self._right: _FittedRight | None = None

    # -- components ---------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            self._encoder = resolve_encoder(self.host.registry, self.config)
        return self._encoder

    def _block_keys(self, df: pd.DataFrame, side: str) -> np.ndarray | None:
        cfg = self.config
        if not cfg.block_on:
            return None
        check_columns(df, cfg.block_on, side, role="blocking")
        blocker = self.context.create("blocker", cfg.blocker, columns=cfg.block_on, options=cfg.blocker_options)
        keys = self.context.run("block", blocker, records=df[list(cfg.block_on)])
        keys = pd.Series(keys)
        if len(keys) != len(df):
            raise LinkInputError(f"blocker {cfg.blocker!r} returned {len(keys)} keys for {len(df)} {side} rows")
        return keys.to_numpy(dtype=object)

    def _check_input(self, df: Any, side: str, on: tuple[str, ...]) -> pd.DataFrame:
        df = check_frame(df, side)
        if not on:
            raise LinkInputError(f"no {side} columns to link on: pass on=... (or left_on=/right_on=)")
        check_columns(df, on, side)
        for col in OUTPUT_COLUMNS:
            if col in df.columns:
                raise ColumnError(
                    f"the {side} table already has a column {col!r}, which ltengine adds to its output; "
                    f"rename it first, e.g. df.rename(columns={{{col!r}: '{col}_{side}'}})"
                )
        return df

    # -- fitting the right side ---------------------------------------------------------------
    def fit(self, right: pd.DataFrame) -> Linker:
        """Serialise, encode and index ``right`` (per block).  Returns self."""
        cfg = self.config
        right = self._check_input(right, "right", cfg.right_on)
        texts = serialize(right, cfg.right_on, "right").to_numpy(dtype=object)
        keys = self._block_keys(right, "right")
        ids = np.flatnonzero(texts != "")
        vectors = encode_texts(self.encoder, texts[ids], "document", self.context)
        blocks: dict[Any, Any] = {}
        sizes: dict[Any, int] = {}
        for key, positions in _groups(keys, ids):
            retriever = self.context.create("retriever", cfg.retriever, options=cfg.retriever_options)
            self.context.run("build", retriever, vectors=vectors[positions], ids=ids[positions])
            blocks[key] = retriever
            sizes[key] = len(positions)
        self._right = _FittedRight(right, texts, blocks, sizes)
        self.context.report.update(right_rows=len(right), right_empty_text=int(len(right) - len(ids)))
        return self

    # -- linking ------------------------------------------------------------------------------
    def candidates(self, left: pd.DataFrame, *, k: int | None = None, threshold: float | None = None) -> pd.DataFrame:
        """Retrieve candidates for ``left``: columns id_l, id_r (row positions), score, rank, text_l, text_r.

        With ``threshold`` (range search) every pair at or above it is returned; otherwise the
        ``k`` best per left row within its block.
        """
        if self._right is None:
            raise LinkInputError("Linker.fit(right) must be called before linking")
        cfg = self.config
        left = self._check_input(left, "left", cfg.left_on)
        k = k or cfg.k
        texts = serialize(left, cfg.left_on, "left").to_numpy(dtype=object)
        keys = self._block_keys(left, "left")
        ids = np.flatnonzero(texts != "")
        report = self.context.report
        report.update(left_rows=len(left), left_empty_text=int(len(left) - len(ids)))
        vectors = encode_texts(self.encoder, texts[ids], "query", self.context)
        found: list[pd.DataFrame] = []
        left_only_rows, left_only_blocks = 0, 0
        seen_blocks = set()
        with progress_bar(len(ids), "searching", cfg.progress) as bar:
            for key, positions in _groups(keys, ids):
                retriever = self._right.blocks.get(key)
                if retriever is None:
                    left_only_rows += len(positions)
                    left_only_blocks += 1
                    bar.update(len(positions))
                    continue
                seen_blocks.add(key)
                k_eff = min(k, self._right.block_sizes[key])
                for start in range(0, len(positions), SEARCH_CHUNK):
                    chunk = positions[start : start + SEARCH_CHUNK]
                    found.append(
                        self.context.run(
                            "search", retriever, vectors=vectors[chunk], ids=ids[chunk], k=k_eff, threshold=threshold
                        )
                    )
                    bar.update(len(chunk))
        right_only = [key for key in self._right.blocks if key not in seen_blocks]
        if keys is not None:
            report.update(
                left_rows_in_blocks_missing_on_right=left_only_rows,
                blocks_only_on_left=left_only_blocks,
                blocks_only_on_right=len(right_only),
                right_rows_in_blocks_missing_on_left=int(sum(self._right.block_sizes[b] for b in right_only)),
            )
            if left_only_rows:
                warnings.warn(
                    f"{left_only_rows} left rows in {left_only_blocks} blocks ({_block_label(self.config)}) have "
                    "no right rows in the same block and get no candidates",
                    LinkWarning,
                    stacklevel=3,
                )
        pairs = pd.concat(found, ignore_index=True) if found else empty_candidates()
        pairs = pairs.rename(columns={"retrieval_score": "score"})
        pairs["text_l"] = texts[pairs["id_l"].to_numpy()] if len(pairs) else pd.Series(dtype=object)
        pairs["text_r"] = self._right.texts[pairs["id_r"].to_numpy()] if len(pairs) else pd.Series(dtype=object)
        return pairs

    def merge(self, left: pd.DataFrame, mode: Mode = "best") -> pd.DataFrame:
        """Link ``left`` to the fitted right table and return the merged frame.

        ``mode="best"``: at most one right row per left row (the best of ``k`` candidates);
        ``"knn"``: up to ``k`` rows per left row with ``rank``; ``"range"``: every pair >= threshold.
        """
        cfg = self.config
        if mode == "range" and cfg.threshold is None:
            raise LinkInputError("merge_range needs a threshold (cosine similarity, e.g. threshold=0.8)")
        start = time.perf_counter()
        if mode != "best" and cfg.one_to_one:
            raise LinkInputError("one_to_one applies to merge (one match per row), not to merge_knn/merge_range")
        pairs = self.candidates(left, threshold=cfg.threshold if mode == "range" else None)
        if cfg.threshold is not None:
            pairs = pairs[pairs["score"] >= cfg.threshold]
        # --- rerank start: rerankers re-score the candidates; decisions then use `decide_on`
        decide_on = "score"
        if cfg.rerank or cfg.rerank_options:
            from .rerank import apply_rerankers

            right_frame = self._right.frame  # type: ignore[union-attr]
            pairs, decide_on = apply_rerankers(pairs, left, right_frame, self.context, mode=mode)
        # --- rerank end
        if mode == "best":
            if cfg.one_to_one:
                pairs = one_to_one(pairs, score=decide_on)
            pairs = best_per_left(pairs, score=decide_on)
        elif mode == "knn":
            pairs = top_k_per_left(pairs, cfg.k, score=decide_on)
        else:
            pairs = top_k_per_left(pairs, len(pairs) or 1, score=decide_on)
        out = assemble(left, self._right.frame, pairs, cfg, with_rank=mode != "best")  # type: ignore[union-attr]
        self.context.report.update(matched_left_rows=int(pairs["id_l"].nunique()), output_rows=len(out))
        self.context.timings["total_link"] = time.perf_counter() - start
        out.attrs["ltengine"] = {"report": dict(self.context.report), "timings": dict(self.context.timings)}
        return out


def _block_label(config: LinkConfig) -> str:
    return "block_on=" + ", ".join(config.block_on)


def _groups(keys: np.ndarray | None, ids: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    """Split the positions ``ids`` by block key (one group keyed None when unblocked; NA keys dropped)."""
    if keys is None:
        return [(None, np.arange(len(ids)))] if len(ids) else []
    sub = pd.Series(keys[ids])
    valid = sub.notna().to_numpy()
    groups = pd.Series(np.arange(len(ids)))[valid].groupby(sub[valid].to_numpy(), sort=True)
    return [(key, idx.to_numpy()) for key, idx in groups]


def assemble(left: pd.DataFrame, right: pd.DataFrame, pairs: pd.DataFrame, cfg: LinkConfig, *, with_rank: bool) -> pd.DataFrame:
    """Left columns, then right columns (suffixed where names collide), then score (and rank)."""
    pairs = pairs.sort_values(["id_l", "rank" if with_rank else "id_l"], kind="stable")
    common = set(left.columns) & set(right.columns)
    sx, sy = cfg.suffixes
    left_names = {c: f"{c}{sx}" for c in left.columns if c in common}
    right_names = {c: f"{c}{sy}" for c in right.columns if c in common}
    final = [left_names.get(c, c) for c in left.columns] + [right_names.get(c, c) for c in right.columns]
    clash = sorted({c for c in final if final.count(c) > 1}, key=str)
    if clash:
        raise ColumnError(
            f"output columns {clash} would appear twice after adding suffixes {cfg.suffixes}; "
            "pass other suffixes=(..., ...) or rename the columns"
        )
    id_l = pairs["id_l"].to_numpy()
    left_part = left.iloc[id_l].rename(columns=left_names).reset_index(drop=True)
    right_part = right.iloc[pairs["id_r"].to_numpy()].rename(columns=right_names).reset_index(drop=True)
    out = pd.concat([left_part, right_part], axis=1)
    out["score"] = pairs["score"].to_numpy(dtype=np.float64)
    extra = [c for c in pairs.columns if c not in ("id_l", "id_r", "score", "rank", "text_l", "text_r")]
    for col in extra:
        out[col] = pairs[col].to_numpy()
    if with_rank:
        out["rank"] = pairs["rank"].to_numpy(dtype=np.int64)
    order = id_l
    if cfg.keep_unmatched:
        missing = np.setdiff1d(np.arange(len(left)), id_l)
        if len(missing):
            rest = left.iloc[missing].rename(columns=left_names).reset_index(drop=True)
            out = pd.concat([out, rest], ignore_index=True) if len(out) else rest.reindex(columns=out.columns)
            order = np.concatenate([id_l, missing])
    out = out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    if with_rank and "rank" in out and out["rank"].isna().any():
        out["rank"] = out["rank"].astype("Int64")
    return out

"""The Linker: runs blocker -> encoder -> retriever -> reranker(s) -> decision -> merged frame.

Candidates come from the semantic chain (encoder + vector retriever), the lexical retriever
(character n-grams of romanised names), or both fused (``LinkConfig.mode``; ``"auto"`` fuses them by a
model fitted on the run's own candidates, :mod:`ltengine.engine.adaptive`).
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ltengine.config import LinkConfig, as_config
from ltengine.engine.adaptive import field_scores, fuse_adaptive
from ltengine.engine.adaptive import plan as adaptive_plan
from ltengine.engine.blocks import FittedRight, drop_self_pairs, groups, matched_groups, search_blocks
from ltengine.engine.calibration import CALIBRATION_K, MatchModel, ModelStore, model_columns, pair_features
from ltengine.engine.decide import best_per_left, one_to_one, top_k_per_left
from ltengine.engine.encoding import SideVectors, encode_side, encode_texts, resolve_encoder
from ltengine.engine.fusion import auto_mode, check_hybrid_components, create_fuser, fuse_candidates, row_map
from ltengine.engine.output import (
    added_columns,
    assemble,
    check_clash,
    check_output_columns,
    detach_features,
    hide_features,
)
from ltengine.engine.persist import load_index, read_manifest, save_index, saved_config
from ltengine.engine.persist_update import add_rows, remove_rows
from ltengine.engine.rerank import apply_rerankers, plan
from ltengine.engine.text import check_columns, check_frame, lexical_texts, serialize
from ltengine.errors import LinkInputError
from ltengine.lexical.scripts import script_profile
from ltengine.plugins import PluginHost, get_host
from ltengine.run import RunContext

Mode = Literal["best", "knn", "range"]


class Linker:
    """Links left tables to one right table.  Build the right-hand index once, link many left frames::

        linker = Linker(LinkConfig(left_on=("name",), right_on=("name",))).fit(registry_df)
        matched = linker.merge(batch1)
        matched2 = linker.merge(batch2)

    A fitted Linker may be shared, also between threads: each ``merge`` result carries its own report.
    """

    def __init__(
        self, config: LinkConfig | Mapping[str, Any] | str | Path | None = None, *, host: PluginHost | None = None,
        **overrides: Any,
    ) -> None:
        config = as_config(config)
        self.config = config.replace(**overrides) if overrides else config
        self.host = host or get_host()
        rerankers = []
        if self.config.rerank or self.config.rerank_options:  # fail before encoding, not after
            rerankers = [stage.component for stage in plan(self.config, self.host.registry).stages]
        if self.config.mode != "semantic":
            check_hybrid_components(self.host, self.config)
        #: Columns this configuration adds to the output (checked against both inputs before any work).
        self.added_columns = added_columns(self.config, rerankers)
        #: The context of the fit, or of the last ``merge`` call (each merge works on its own copy).
        self.context = RunContext(self.config, self.host)
        self._fitted_context = self.context
        self._lock = threading.Lock()
        self._encoder: Any = None
        self._right: FittedRight | None = None
        self._models = ModelStore()  # the match-probability model of each resolved mode

    # -- components ---------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            self._encoder = resolve_encoder(self.host.registry, self.config)
        return self._encoder

    def _block_keys(self, df: pd.DataFrame, side: str, ctx: RunContext) -> np.ndarray | None:
        cfg = self.config
        if not cfg.block_on:
            return None
        check_columns(df, cfg.block_on, side, role="blocking")
        blocker = ctx.create("blocker", cfg.blocker, columns=cfg.block_on, options=cfg.blocker_options)
        keys = ctx.run("block", blocker, records=df[list(cfg.block_on)])
        keys = pd.Series(keys)
        if len(keys) != len(df):
            raise LinkInputError(f"blocker {cfg.blocker!r} returned {len(keys)} keys for {len(df)} {side} rows")
        described = blocker.key_description
        if described:
            ctx.report["block_keys"] = str(described)
        return keys.to_numpy(dtype=object)

    def _check_input(self, df: Any, side: str, on: tuple[str, ...]) -> pd.DataFrame:
        df = check_frame(df, side)
        if not on:
            raise LinkInputError(f"no {side} columns to link on: pass on=... (or left_on=/right_on=)")
        check_columns(df, on, side)
        check_clash(df.columns, self.added_columns, side)
        return df

    def check_inputs(self, left: pd.DataFrame, right: pd.DataFrame) -> None:
        """Check both tables before any work: linked columns present, and no column of either (after
        suffixing) is one this run adds to its output (:func:`ltengine.engine.output.added_columns`)."""
        right = self._check_input(right, "right", self.config.right_on)  # right first, as fit() would
        left = self._check_input(left, "left", self.config.left_on)
        check_output_columns(left, right, self.added_columns, self.config.suffixes)

    # -- fitting the right side ---------------------------------------------------------------
    def fit(self, right: pd.DataFrame, *, expected_queries: int | None = None) -> Linker:
        """Serialise, encode and index ``right`` (per block).  Returns self.

        ``expected_queries``: how many left rows will be linked, if known (a hint for the
        retriever's index choice: FAISS ``auto`` stays exact when that is cheaper than building HNSW).

        Modes ``semantic``/``auto``/``hybrid`` encode and index the right side; ``auto`` and
        ``hybrid`` also keep its vectors (to score lexical candidates semantically).  The lexical
        index is built now in ``lexical``/``hybrid`` mode, and on first need in ``auto`` mode.
        """
        cfg = self.config
        self.context = RunContext(cfg, self.host)
        right = self._check_input(right, "right", cfg.right_on)
        texts = serialize(right, cfg.right_on, "right", keep_symbols=cfg.keep_symbol_records).to_numpy(dtype=object)
        keys = self._block_keys(right, "right", self.context)
        ids = np.flatnonzero(texts != "")
        right_lexical = lexical_texts(right, cfg.right_on, "right", texts, cfg.keep_symbol_records)
        blocks: dict[Any, Any] = {}
        block_positions = dict(groups(keys, ids))
        sizes = {key: len(positions) for key, positions in block_positions.items()}
        fitted = FittedRight(right, texts, blocks, sizes, right_lexical, keys, ids,
                              profile=script_profile(right_lexical[ids]))
        if cfg.mode != "lexical":
            for key in block_positions:
                blocks[key] = self.context.create("retriever", cfg.retriever, options=cfg.retriever_options)
                blocks[key].expected_queries = expected_queries
            # one block of every row, whose index offers its own storage: the vectors are encoded straight into it
            whole = [r for key, r in blocks.items() if len(block_positions[key]) == len(ids) and r.can_score_pairs]
            buffer = (lambda d: whole[0].vector_buffer(len(ids), d)) if whole else None
            vectors = encode_texts(self.encoder, texts[ids], "document", self.context, buffer)
            for key, positions in block_positions.items():
                self.context.run("build", blocks[key], ids=ids[positions],  # one block: no copy
                                 vectors=vectors if len(positions) == len(vectors) else vectors[positions])
            fitted.semantic = True
            if cfg.mode in ("auto", "hybrid") and not all(r.can_score_pairs for r in blocks.values()):
                fitted.vectors = vectors
                fitted.vector_rows = row_map(len(right), ids)
            del vectors  # before waiting for the index kinds: an index built elsewhere (Ray shards) has its own copy
            kinds = Counter(r.index_type for r in blocks.values())
            self.context.report["index"] = dict(kinds)  # index kind -> number of blocks
        self._right, self._models = fitted, ModelStore()
        if cfg.mode in ("lexical", "hybrid"):
            self._lexical_index()
        self.context.report.update(right_rows=len(right), right_empty_text=int(len(right) - len(ids)))
        self._fitted_context = self.context
        return self

    def _lexical_index(self, ctx: RunContext | None = None) -> dict[Any, Any]:
        """The lexical retrievers per block (built on first use, once even under threads)."""
        right = self._right
        assert right is not None
        ctx = ctx or self.context
        with self._lock:
            if not right.lexical and len(right.ids):
                cfg = self.config
                built = {}
                for key, positions in groups(right.keys, right.ids):
                    retriever = ctx.create("retriever", cfg.lexical_retriever, options=cfg.lexical_options)
                    ctx.run("build", retriever, vectors=list(right.lexical_texts[right.ids[positions]]),
                            ids=right.ids[positions])
                    built[key] = retriever
                right.lexical.update(built)
        return right.lexical

    def resolve_mode(self, left_texts: np.ndarray, ctx: RunContext | None = None) -> str:
        """The mode used for these left texts: ``config.mode``, or for ``"auto"`` hybrid if the scripts differ."""
        cfg, right = self.config, self._right
        assert right is not None
        report = (ctx or self.context).report
        if cfg.mode != "auto":
            report.update(mode=cfg.mode, mode_reason="set in the config")
            return cfg.mode
        mode, about = auto_mode(script_profile(left_texts), right.profile, right.semantic)
        report.update(about)
        return mode

    # -- linking ------------------------------------------------------------------------------
    def candidates(self, left: pd.DataFrame, *, k: int | None = None, threshold: float | None = None,
                   context: RunContext | None = None, self_offset: int | None = None) -> pd.DataFrame:
        """Retrieve candidates for ``left``: columns id_l, id_r (row positions), score, rank, text_l, text_r.

        With ``threshold`` (range search) every pair at or above it is returned; otherwise the
        ``k`` best per left row within its block.  In hybrid mode ``score`` is the fused score and
        ``score_semantic``/``score_lexical`` are added; the ``hybrid_depth`` best candidates of each
        retriever are fused, and a ``threshold`` applies to the fused score.  ``context``: where
        timings and the report go (default: :attr:`context`).  ``self_offset``: a self-link, left row
        ``i`` is right row ``i + self_offset``; those pairs are dropped before anything is fitted on them.
        """
        if self._right is None:
            raise LinkInputError("Linker.fit(right) must be called before linking")
        cfg = self.config
        ctx = context or self.context
        left = self._check_input(left, "left", cfg.left_on)
        k = k or cfg.k
        texts = serialize(left, cfg.left_on, "left", keep_symbols=cfg.keep_symbol_records).to_numpy(dtype=object)
        keys = self._block_keys(left, "left", ctx)
        ids = np.flatnonzero(texts != "")
        report = ctx.report
        report.update(left_rows=len(left), left_empty_text=int(len(left) - len(ids)))
        left_lexical = lexical_texts(left, cfg.left_on, "left", texts, cfg.keep_symbol_records)
        script_mode = self.resolve_mode(left_lexical[ids], ctx)
        mode = adaptive_plan(self._models, cfg.mode, script_mode, len(ids), report)
        right = self._right
        block_groups = matched_groups(right, keys, ids, ctx, cfg.block_on)

        def search(retrievers: dict[Any, Any], lexical: bool, k: int, threshold: float | None,
                   desc: str) -> pd.DataFrame:
            def payload(chunk: np.ndarray) -> Any:
                return list(left_lexical[ids[chunk]]) if lexical else vectors[chunk]

            found = search_blocks(right, retrievers, block_groups, ids, payload, k, threshold, desc, ctx, cfg.progress)
            return found if self_offset is None else drop_self_pairs(found, self_offset)

        if mode == "lexical":
            vectors = None
            pairs = search(self._lexical_index(ctx), True, k, threshold, "searching (lexical)")
        elif mode == "semantic":
            vectors = encode_side(self.encoder, texts[ids], "query", ctx)
            pairs = search(right.blocks, False, k, threshold, "searching")
        else:
            depth = max(k, cfg.hybrid_depth)
            # the lexical search (mostly Python: romanising, n-grams) runs on a second thread while the left
            # texts are encoded and searched (mostly native code that releases the GIL)
            with ThreadPoolExecutor(1, thread_name_prefix="ltengine-lexical") as pool:
                lexical_search = pool.submit(lambda: search(self._lexical_index(ctx), True, depth, None,
                                                            "searching (lexical)"))  # the index is built there too
                vectors = encode_side(self.encoder, texts[ids], "query", ctx)
                semantic = search(right.blocks, False, depth, None, "searching (semantic)")
                lexical = lexical_search.result()
            pairs = self._fuse(semantic, lexical, block_groups, ids, vectors, left_lexical, k, threshold, ctx,
                               script_mode if mode == "adaptive" else None, left)
        pairs = pairs.rename(columns={"retrieval_score": "score"})
        pairs["text_l"] = texts[pairs["id_l"].to_numpy()] if len(pairs) else pd.Series(dtype=object)
        pairs["text_r"] = right.texts[pairs["id_r"].to_numpy()] if len(pairs) else pd.Series(dtype=object)
        return pairs

    def _fuse(self, semantic: pd.DataFrame, lexical: pd.DataFrame, groups: list[tuple[Any, np.ndarray]],
              ids: np.ndarray, vectors: SideVectors, lexical_texts: np.ndarray, k: int, threshold: float | None,
              ctx: RunContext, adaptive: str | None = None, left: pd.DataFrame | None = None) -> pd.DataFrame:
        """Fuse the two candidate lists (:func:`ltengine.engine.fusion.fuse_candidates`), timed as ``fuse``;
        ``adaptive`` (the scripts' mode): rank by the fusion fitted on the run (:mod:`~ltengine.engine.adaptive`),
        with the columns of ``left`` compared one by one when there are several, in one script."""
        cfg = self.config
        right = self._right
        assert right is not None and right.semantic
        start = time.perf_counter()
        lexical_index = self._lexical_index(ctx)
        block_of = np.full(len(lexical_texts), -1, dtype=np.int64)  # left row -> index of its block in groups
        for number, (_, positions) in enumerate(groups):
            block_of[ids[positions]] = number
        fuser = create_fuser(self.host, cfg.fuser, cfg.fuser_options, encoder=self.encoder.name)
        blocks = [(right.blocks[key], lexical_index[key]) for key, _ in groups]
        pairs = fuse_candidates(semantic, lexical, fuser, block_of=block_of, blocks=blocks,
                                left_rows=row_map(len(lexical_texts), ids), vectors=vectors,
                                lexical_texts=lexical_texts, right_vectors=right.vectors,
                                right_rows=right.vector_rows, k=2 * max(k, cfg.hybrid_depth) if adaptive
                                else k, threshold=None if adaptive else threshold)
        if adaptive:
            if adaptive == "semantic" and len(cfg.left_on) > 1 and left is not None:
                begin = time.perf_counter()
                pairs = pairs.assign(score_fields=field_scores(left, right.frame, cfg.left_on, cfg.right_on, pairs,
                                                               cfg.keep_symbol_records))
                ctx.timings["fields"] = ctx.timings.get("fields", 0.0) + time.perf_counter() - begin
            pairs = fuse_adaptive(pairs, self._models, adaptive, k, threshold, ctx.report)
        ctx.timings["fuse"] = ctx.timings.get("fuse", 0.0) + time.perf_counter() - start
        return pairs

    # -- saving, loading, adding and removing rows (engine/persist.py, engine/persist_update.py) --------
    def save(self, path: str | Path) -> Path:
        """Save the fitted index, config, encoder identity and match-probability models to the folder
        ``path`` (written beside it, then renamed into place; see :mod:`ltengine.engine.persist`)."""
        if self._right is None:
            raise LinkInputError("Linker.fit(right) must be called before save")
        encoder_id = self.encoder.cache_id if self._right.semantic else None
        return save_index(path, self.config, self._right, self._models, encoder_id)

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False, verify: bool = True, host: PluginHost | None = None,
             **overrides: Any) -> Linker:
        """The Linker saved at ``path``, ready to link (nothing is re-encoded).  ``mmap``: map the vector
        indexes from their files; ``verify``: check every file's checksum first; ``overrides``: config
        fields to change (not those that shaped the index, e.g. the model: ConfigError)."""
        manifest = read_manifest(path, verify=verify)
        linker = cls(saved_config(manifest, overrides), host=host)
        ctx = linker.context
        linker._right, linker._models = load_index(
            path, manifest, linker.config, lambda: linker.encoder,
            lambda name, options: ctx.create("retriever", name, options=options), mmap=mmap)
        ctx.report.update(right_rows=len(linker._right.frame), loaded_from=str(path))
        return linker

    def add(self, right: pd.DataFrame) -> Linker:
        """Index more right rows (same columns) without re-encoding those held: ``fit(a).add(b)`` links as
        ``fit(pd.concat([a, b]))``.  The match-probability model is refitted on the next merge.  Returns self."""
        if self._right is None:
            raise LinkInputError("Linker.fit(right) must be called before add")
        right = self._check_input(right, "right", self.config.right_on)
        ctx = self._fitted_context
        keys = self._block_keys(right, "right", ctx)
        with self._lock:
            add_rows(self._right, right, keys, self.config, ctx, lambda: self.encoder)
            self._models = ModelStore()
        return self

    def remove(self, labels: Any) -> Linker:
        """Stop linking to the right rows with these index labels (they stay in memory, unreachable, until
        the next fit).  The match-probability model is refitted on the next merge.  Returns self."""
        if self._right is None:
            raise LinkInputError("Linker.fit(right) must be called before remove")
        with self._lock:
            remove_rows(self._right, labels, self._fitted_context)
            self._models = ModelStore()
        return self

    def calibrate(self, left: pd.DataFrame) -> MatchModel:
        """Fit the match-probability model on ``left``'s top candidates and keep it for later merges
        (which otherwise fit it on their first call).  Returns the model."""
        ctx = self._fitted_context.fork()
        self._models.clear()  # the fusion of mode "auto" is refitted too
        return self._models.get(self.candidates(left, k=CALIBRATION_K, context=ctx), ctx, refit=True)

    def merge(self, left: pd.DataFrame, mode: Mode = "best") -> pd.DataFrame:
        """Link ``left`` to the fitted right table and return the merged frame.

        ``mode="best"``: at most one right row per left row (the best of ``k`` candidates);
        ``"knn"``: up to ``k`` rows per left row with ``rank``; ``"range"``: every pair >= threshold.
        """
        cfg = self.config
        if mode not in ("best", "knn", "range"):
            raise LinkInputError(
                f"Linker.merge(mode={mode!r}): mode here is the output shape, 'best', 'knn' or 'range'; "
                "choose semantic/lexical/hybrid retrieval with LinkConfig(mode=...) or Linker(mode=...)"
            )
        if mode == "range" and cfg.threshold is None:
            raise LinkInputError("merge_range needs a threshold (cosine similarity, e.g. threshold=0.8, or 'auto')")
        start = time.perf_counter()
        if mode != "best" and cfg.one_to_one:
            raise LinkInputError("one_to_one applies to merge (one match per row), not to merge_knn/merge_range")
        if self._right is None:
            raise LinkInputError("Linker.fit(right) must be called before linking")
        left = self._check_input(left, "left", cfg.left_on)
        check_output_columns(left, self._right.frame, self.added_columns, cfg.suffixes)  # before any work
        ctx = self._fitted_context.fork()  # this call's own report: results never share one
        ranged = mode == "range" and cfg.threshold != "auto"
        pairs = self.candidates(left, k=max(cfg.k, CALIBRATION_K), threshold=cfg.threshold if ranged else None,
                                context=ctx)
        top = self.candidates(left, k=CALIBRATION_K, context=ctx) if ranged else pairs[pairs["rank"] <= CALIBRATION_K]
        features = pair_features(pairs, model_columns(pairs), top)
        pairs = hide_features(pairs.assign(match_probability=self._models.get(top, ctx).predict(features)), features)
        if not ranged:
            pairs = top_k_per_left(pairs, cfg.k)
        if cfg.threshold == "auto":
            pairs = pairs[pairs["match_probability"] >= 0.5]
        elif cfg.threshold is not None:
            pairs = pairs[pairs["score"] >= cfg.threshold]
        # --- rerank start: rerankers re-score the candidates; decisions then use `decide_on`
        decide_on = "score"
        if cfg.rerank or cfg.rerank_options:
            right_frame = self._right.frame  # type: ignore[union-attr]
            pairs, decide_on = apply_rerankers(pairs, left, right_frame, ctx, mode=mode)
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
        ctx.report.update(matched_left_rows=int(pairs["id_l"].nunique()), output_rows=len(out))
        ctx.timings["total_link"] = time.perf_counter() - start
        out.attrs["ltengine"] = {"report": copy.deepcopy(ctx.report), "timings": dict(ctx.timings),
                                 "pair_features": detach_features(out)}  # what lt.explain needs beyond columns
        self.context = ctx  # the last run's context, for inspection
        return out


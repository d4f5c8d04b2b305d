"""The sparse kNN similarity graph of one table's rows, built with the Linker (see :mod:`ltengine.dedup.cluster`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ltengine.config import LinkConfig
from ltengine.progress import progress_bar

#: The component scores of the adaptive chain, the features of the self-link's match model when present.
COMPONENTS = ("score_semantic", "score_lexical")
#: Unique texts searched per ``Linker.candidates`` call (a multiple of the encoder chunk keeps the
#: query chunks aligned with the chunks encoded by ``fit``).
QUERY_CHUNK_TEXTS = 16 * 4096


# -- the graph --------------------------------------------------------------------------------------
class Graph:
    """The sparse similarity graph of one table's rows, built on *units* (distinct texts per block).

    ``unit_of_row[i]``: the unit of row ``i`` (-1 for an empty text); ``src < dst``: unit edges with
    ``weight`` (retrieval score, match probability with ``threshold="auto"``, or ``rerank_score`` after a
    reranker), ``score`` (retrieval score) and ``probability`` (the match probability, ``None`` after a reranker).
    """

    def __init__(self, unit_of_row: np.ndarray, n_units: int, src: np.ndarray, dst: np.ndarray,
                 score: np.ndarray, weight: np.ndarray, report: dict[str, Any],
                 probability: np.ndarray | None = None) -> None:
        self.unit_of_row, self.n_units = unit_of_row, n_units
        self.src, self.dst, self.score, self.weight = src, dst, score, weight
        self.report, self.probability = report, probability


def _units(df: pd.DataFrame, cfg: LinkConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each row or -1, representative row of each unit, text of each unit), units sorted by text."""
    from ltengine.engine.text import serialize

    texts = serialize(df, cfg.left_on, "input", keep_symbols=cfg.keep_symbol_records).to_numpy(dtype=object)
    nonempty = texts != ""
    key = pd.DataFrame({"__text": texts})
    for i, col in enumerate(cfg.block_on):
        key[f"__b{i}"] = df[col].to_numpy(dtype=object)
    blocks_present = key.iloc[:, 1:].notna().all(axis=1).to_numpy() if cfg.block_on else np.ones(len(df), bool)
    # rows with a missing blocking value are left to the blocker (each its own unit)
    group = np.full(len(df), -1, dtype=np.int64)
    collapsible = nonempty & blocks_present
    if collapsible.any():
        group[collapsible] = key[collapsible].groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    rest = np.flatnonzero(nonempty & ~blocks_present)
    group[rest] = group.max(initial=-1) + 1 + np.arange(len(rest))
    rows = np.flatnonzero(nonempty)
    _, first = np.unique(group[rows], return_index=True)
    reps = rows[first]
    order = np.argsort(texts[reps], kind="stable")  # sorted texts: query chunks align with fit's encode chunks
    reps = reps[order]
    unit_of_group = np.empty(len(reps), dtype=np.int64)
    unit_of_group[group[reps]] = np.arange(len(reps))
    unit_of_row = np.full(len(df), -1, dtype=np.int64)
    unit_of_row[rows] = unit_of_group[group[rows]]
    return unit_of_row, reps, texts[reps]


def _query_chunks(texts: np.ndarray, chunk_texts: int) -> list[tuple[int, int]]:
    """Contiguous unit ranges holding ``chunk_texts`` distinct texts each (texts are sorted)."""
    if len(texts) == 0:
        return []
    codes = pd.factorize(pd.Series(texts, dtype=object), sort=False)[0]  # sorted input: codes ascend
    cuts = np.flatnonzero(np.diff(codes // chunk_texts)) + 1
    bounds = np.concatenate([[0], cuts, [len(texts)]])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def knn_graph(df: pd.DataFrame, cfg: LinkConfig, *, k: int, threshold: float | None, keep_all: bool,
              chunk_texts: int = QUERY_CHUNK_TEXTS) -> Graph:
    """Build the symmetric kNN graph of ``df``'s rows with the Linker (``cfg`` is a self-link config).

    ``keep_all`` keeps every retrieved edge (average linkage needs scores below the threshold);
    otherwise only edges >= ``threshold`` are kept.  With ``cfg.rerank`` the edges >= threshold are
    judged (each unordered pair once) and only accepted ones are kept.  Queries go in chunks of
    ``chunk_texts`` distinct texts.  Every kept edge gets ``probability``, the match probability of a model
    fitted without labels on all the candidates (:func:`_edge_probabilities`); ``threshold=None``
    (``"auto"``): every retrieved edge is kept, weighted by it, and a reranker judges those with probability >= 0.5.
    """
    from ltengine.execution import create_linker

    start = time.perf_counter()
    unit_of_row, reps, unit_texts = _units(df, cfg)
    n_units = len(reps)
    report: dict[str, Any] = {"rows": len(df), "empty_text": int((unit_of_row < 0).sum()), "units": n_units}
    units = df.iloc[reps][list(dict.fromkeys([*cfg.left_on, *cfg.block_on]))].reset_index(drop=True)
    rerank = bool(cfg.rerank or cfg.rerank_options)
    src_parts, dst_parts, score_parts, directed = [], [], [], []
    linker = create_linker(cfg)  # executor='ray': a RayLinker
    if n_units > 1:
        linker.fit(units, expected_queries=len(units))
        chunks = _query_chunks(unit_texts, chunk_texts)
        with progress_bar(n_units, "kNN graph", cfg.progress) as bar:
            for lo, hi in chunks:
                cand = linker.candidates(units.iloc[lo:hi], k=k + 1, self_offset=lo)
                id_l = cand["id_l"].to_numpy(dtype=np.int64) + lo
                id_r = cand["id_r"].to_numpy(dtype=np.int64)
                score = cand["score"].to_numpy(dtype=np.float32)
                keep = id_l != id_r
                directed.append(pd.DataFrame({"id_l": id_l[keep], "id_r": id_r[keep], "score": score[keep],
                                              **{c: cand[c].to_numpy(dtype=np.float64)[keep] for c in COMPONENTS
                                                 if c in cand.columns}}))
                if threshold is not None and (not keep_all or rerank):
                    keep &= score >= threshold
                a, b = np.minimum(id_l, id_r)[keep], np.maximum(id_l, id_r)[keep]
                src_parts.append(a)
                dst_parts.append(b)
                score_parts.append(score[keep])
                bar.update(hi - lo)
    src, dst, score = _dedup_edges(src_parts, dst_parts, score_parts)
    report["edges"] = len(src)
    weight = score.astype(np.float64)
    start_calibrate = time.perf_counter()
    probability = _edge_probabilities(src, dst, directed, report)
    calibrate_seconds = time.perf_counter() - start_calibrate
    if threshold is None:
        weight = probability
    if rerank:
        strong = probability >= 0.5 if threshold is None else np.ones(len(src), dtype=bool)
        src, dst, score, weight = _rerank_edges(src[strong], dst[strong], score[strong], units, unit_texts, linker,
                                                report)
        probability = None
    report["timings"] = dict(linker.context.timings, graph_total=time.perf_counter() - start,
                             calibrate=calibrate_seconds)
    report["linker"] = {key: value for key, value in linker.context.report.items() if key != "rerank"}
    return Graph(unit_of_row, n_units, src, dst, score, weight, report, probability)


def _edge_probabilities(src: np.ndarray, dst: np.ndarray, directed: list[pd.DataFrame],
                        report: dict[str, Any]) -> np.ndarray:
    """Match probability of each unit edge (``src < dst``, sorted; each one among the ``directed`` candidates:
    frames of id_l, id_r, score and, from the adaptive chain, the component scores), from a
    :class:`MatchModel` fitted without labels on all the self-link's candidates, each unordered pair once.

    With the component scores (``mode="auto"``/hybrid) the features are ``score_semantic`` and
    ``score_lexical``, as in Splink's model of record comparisons: in a self-link a row may have several
    duplicates, so a margin within the row says little (FEBRL3, quick slice: pairwise F1 0.99 against
    0.77 with the fused score and its margin).  Otherwise the score and its margin within the querying unit
    (each pair from the direction with the larger margin).  The parameters go to ``report["calibration"]``."""
    from ltengine.engine.calibration import fit_match_model, pair_features

    empty = pd.DataFrame({"id_l": np.empty(0, np.int64), "id_r": np.empty(0, np.int64), "score": np.empty(0)})
    pairs = pd.concat(directed, ignore_index=True) if directed else empty
    pairs["score"] = pairs["score"].astype(np.float64)
    components = all(c in pairs.columns for c in COMPONENTS)
    feats = pairs[list(COMPONENTS)].astype(np.float64) if components else pair_features(pairs, ("score",))
    a = np.minimum(pairs["id_l"].to_numpy(), pairs["id_r"].to_numpy())
    b = np.maximum(pairs["id_l"].to_numpy(), pairs["id_r"].to_numpy())
    # a pair's direction: the component scores are symmetric; the margin is not (the larger one counts)
    strength = () if components else (-feats["score_margin"].to_numpy(), -feats["score"].to_numpy())
    order = np.lexsort((*strength, b, a))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (a[order][1:] != a[order][:-1]) | (b[order][1:] != b[order][:-1])
    once = order[first]  # sorted by (a, b): the same order as the deduplicated edges
    model = fit_match_model(feats.iloc[once].reset_index(drop=True), pairs["id_l"].to_numpy()[once],
                            top=_row_best(pairs)[once] if components else None)
    probability = model.predict(feats.iloc[once].reset_index(drop=True))
    report["calibration"] = dict(model.describe(), fitted_on="this call's candidate pairs (each unordered pair once)")
    width = int(max(b.max(initial=-1), dst.max(initial=-1))) + 1
    known = a[once] * width + b[once]  # ascending: ``once`` is sorted by (a, b)
    at = np.searchsorted(known, src.astype(np.int64) * width + dst)
    if len(src) and (at.max() >= len(known) or not np.array_equal(known[at], src * width + dst)):
        raise AssertionError("an edge without a candidate pair")  # pragma: no cover - edges come from the candidates
    return probability[at]


def _row_best(pairs: pd.DataFrame) -> np.ndarray:
    """Whether each pair is its querying unit's best (by ``score``): where the EM starts from."""
    rank = pairs.groupby("id_l", sort=False)["score"].rank(ascending=False, method="first")
    return rank.to_numpy() == 1


def _dedup_edges(src_parts: list, dst_parts: list, score_parts: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate edge parts; each (src, dst) once, with its highest score."""
    if not src_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    src, dst, score = np.concatenate(src_parts), np.concatenate(dst_parts), np.concatenate(score_parts)
    order = np.lexsort((-score, dst, src))
    src, dst, score = src[order], dst[order], score[order]
    first = np.ones(len(src), dtype=bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    return src[first], dst[first], score[first]


def _rerank_edges(src: np.ndarray, dst: np.ndarray, score: np.ndarray, units: pd.DataFrame, unit_texts: np.ndarray,
                  linker: Any, report: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """Judge the edges (>= threshold) with the configured rerankers; keep those with ``is_match`` true."""
    from ltengine.engine.rerank import apply_rerankers

    pairs = pd.DataFrame({"id_l": src, "id_r": dst, "score": score, "rank": np.ones(len(src), dtype=np.int64),
                          "text_l": unit_texts[src], "text_r": unit_texts[dst]})
    if len(pairs):
        pairs, _ = apply_rerankers(pairs, units, units, linker.context, mode=None)
        accepted = np.asarray(pairs["is_match"].fillna(False), dtype=bool)
    else:
        pairs["rerank_score"] = np.empty(0, np.float64)
        accepted = np.zeros(0, dtype=bool)
    report["rerank"] = dict(linker.context.report.get("rerank", {}), judged_edges=len(pairs),
                            accepted_edges=int(accepted.sum()))
    kept = pairs[accepted]
    return (kept["id_l"].to_numpy(np.int64), kept["id_r"].to_numpy(np.int64),
            kept["score"].to_numpy(np.float32), kept["rerank_score"].to_numpy(np.float64))

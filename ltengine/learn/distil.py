"""``lt.distil_judge``: an LLM judge's verdicts, kept as a local cross-encoder.

1. Retrieve ``k`` candidates per left row (``merge_knn``, the engine's own candidates).
2. Hold out ``holdout_share`` of the left rows (whole rows: all their candidates), for agreement.
3. Sample at most ``max_pairs`` candidate pairs: ``uncertain_share`` of them the most uncertain
   (``match_probability`` nearest 0.5), the rest easy ones for balance (likely matches and likely
   non-matches alternately), interleaved so that any prefix of the order keeps that mix.
4. Have the judge label them through the engine's rerank chain (the ``llm`` reranker of the
   registry: batched, cached on disk, retried, budgeted by ``max_cost``/``max_calls``).  Pairs are
   sent in priority order, so when the budget stops the run the most useful pairs were labelled;
   every verdict paid for is kept (in the judge's cache, and in ``judge_labels.csv`` beside the model).
5. Train a cross-encoder on the verdicts (:func:`ltengine.train_reranker`) and measure its agreement
   with the judge on the held-out pairs (``distillation.json`` in the model folder).

Later runs: ``rerank=f"cross-encoder:{path}"`` (no requests) or
``rerank=[f"cross-encoder:{path}", "llm:<model>"]``: only pairs the distilled model is unsure about
(its calibrated score in the judge's band, default 0.1-0.9) still go to the LLM.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.api import merge_knn
from ltengine.config import Columns, LinkConfig
from ltengine.engine.rerank import apply_rerankers
from ltengine.engine.text import serialize
from ltengine.errors import ConfigError, LinkInputError
from ltengine.learn.folders import prepare_output_dir
from ltengine.learn.reranker import train_reranker
from ltengine.plugins import get_host
from ltengine.run import RunContext

LEFT_ROW, RIGHT_ROW = "_lt_distil_left_row", "_lt_distil_right_row"
#: Files written beside the distilled model.
LABELS_FILE, REPORT_FILE = "judge_labels.csv", "distillation.json"


def _as_list(columns: Columns) -> list[str]:
    return [] if columns is None else ([columns] if isinstance(columns, str) else [str(c) for c in columns])


def _output_columns(columns: list[str], frame: pd.DataFrame, suffix: str) -> list[str]:
    """Where ``merge_knn`` put each input column (``name_x`` when both sides had ``name``)."""
    return [c + suffix if c + suffix in frame.columns else c for c in columns]


def sample_pairs(cands: pd.DataFrame, max_pairs: int, uncertain_share: float, seed: int) -> np.ndarray:
    """Row positions of ``cands`` to label, in priority order: the most uncertain pairs
    (``match_probability`` nearest 0.5) interleaved with easy ones (likely matches and likely non-matches
    alternately, random within each) so that every prefix keeps about ``uncertain_share`` uncertain
    pairs: a budget that stops labelling early still leaves both kinds to learn from."""
    p = pd.to_numeric(cands["match_probability"], errors="coerce").to_numpy(dtype=np.float64)
    p = np.where(np.isnan(p), cands["score"].to_numpy(dtype=np.float64), p)
    n = min(int(max_pairs), len(cands))
    n_uncertain = min(n, round(n * uncertain_share))
    order = np.argsort(np.abs(p - 0.5), kind="stable")
    uncertain = list(order[:n_uncertain])[::-1]  # popped from the end: most uncertain first
    rest = order[n_uncertain:]
    rng = np.random.default_rng(seed)
    high = list(rng.permutation(rest[p[rest] >= 0.5]))
    low = list(rng.permutation(rest[p[rest] < 0.5]))
    easy: list[int] = []
    while high or low:
        for pool in (high, low):
            if pool:
                easy.append(pool.pop())
    easy = easy[: n - n_uncertain][::-1]
    chosen: list[int] = []
    n_easy = 0
    while len(chosen) < n and (uncertain or easy):
        want_easy = n_easy < (len(chosen) + 1) * (1.0 - uncertain_share)  # keep each prefix's share of easy pairs
        if easy and (want_easy or not uncertain):
            chosen.append(easy.pop())
            n_easy += 1
        else:
            chosen.append(uncertain.pop())
    return np.asarray(chosen, dtype=np.int64)


def _judge(cands: pd.DataFrame, rows: np.ndarray, left: pd.DataFrame, right: pd.DataFrame,
           config: LinkConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Send ``cands.iloc[rows]`` to the judge of ``config.rerank``; (verdict frame, rerank report)."""
    id_l, id_r = cands[LEFT_ROW].to_numpy()[rows], cands[RIGHT_ROW].to_numpy()[rows]
    pairs = pd.DataFrame({
        "id_l": id_l, "id_r": id_r, "score": cands["score"].to_numpy(dtype=np.float64)[rows],
        "text_l": serialize(left, list(config.left_on), "left").to_numpy(dtype=object)[id_l],
        "text_r": serialize(right, list(config.right_on), "right").to_numpy(dtype=object)[id_r],
    })
    context = RunContext(config, get_host())
    out, _ = apply_rerankers(pairs, left, right, context)
    return out, context.report.get("rerank", {})


def distil_judge(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: Columns = None,
    *,
    left_on: Columns = None,
    right_on: Columns = None,
    judge: str = "llm:openai/gpt-4o-mini",
    k: int = 10,
    model: str | None = None,
    mode: str | None = None,
    max_pairs: int = 2000,
    uncertain_share: float = 0.75,
    holdout_share: float = 0.2,
    max_cost: float | None = None,
    max_calls: int | None = None,
    judge_options: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike[str] = "models/judge-ce",
    overwrite: bool = False,
    base_model: str = "accurate",
    seed: int = 0,
    progress: bool | None = None,
    link_options: Mapping[str, Any] | None = None,
    **train_options: Any,
) -> str:
    """Label candidate pairs with an LLM judge and train a local cross-encoder on its verdicts; return its folder.

    ``judge``: ``"llm:<litellm model>"``; ``judge_options``: the judge's options (``task``,
    ``api_base``, ``batch_size``, prices ...); ``max_cost`` (dollars) / ``max_calls`` (requests) cap
    the labelling: it stops cleanly and trains on what was paid for.  ``k``, ``model``, ``mode`` and
    ``link_options`` (LinkConfig fields: ``cache_dir``, ``encoder_options`` ...) configure the
    retrieval of candidates.  ``max_pairs`` pairs at most are labelled, ``uncertain_share`` of them
    the most uncertain.  ``holdout_share`` of the left rows are kept out of training to measure
    agreement with the judge.  Other keyword arguments go to :func:`ltengine.train_reranker`
    (``epochs``, ``max_minutes``, ...).  The folder holds the model, ``judge_labels.csv`` and
    ``distillation.json`` (requests, cost, agreement, F1 against the judge).
    """
    started = time.monotonic()
    if not isinstance(judge, str) or not judge.strip().startswith(("llm:", "llm-judge:", "judge:")):
        raise ConfigError(f"judge must be 'llm:<litellm model>', e.g. 'llm:openai/gpt-4o-mini'; got {judge!r}")
    if not isinstance(max_pairs, int) or isinstance(max_pairs, bool) or max_pairs < 4:
        raise ConfigError(f"max_pairs must be an integer >= 4; got {max_pairs!r}")
    for value, name in ((uncertain_share, "uncertain_share"), (holdout_share, "holdout_share")):
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
            raise ConfigError(f"{name} must be in [0, 1); got {value!r}")
    for frame, side in ((left, "left"), (right, "right")):
        if not isinstance(frame, pd.DataFrame):
            raise LinkInputError(f"the {side} table must be a pandas DataFrame; got {type(frame).__name__}")
    folder = prepare_output_dir(output_dir, overwrite=overwrite)  # refuse before paying for anything
    link = dict(link_options or {})
    left_frame = left.reset_index(drop=True).assign(**{LEFT_ROW: np.arange(len(left))})
    right_frame = right.reset_index(drop=True).assign(**{RIGHT_ROW: np.arange(len(right))})
    cands = merge_knn(left_frame, right_frame, on=on, left_on=left_on, right_on=right_on, k=k, model=model,
                      mode=mode, progress=progress, **link)
    if cands.empty:
        raise LinkInputError("retrieval found no candidate pairs to label (are the linked columns empty?)")
    # hold out whole left rows for agreement
    rng = np.random.default_rng(seed)
    left_rows = np.unique(cands[LEFT_ROW].to_numpy())
    held = set(rng.permutation(left_rows)[: round(len(left_rows) * float(holdout_share))].tolist())
    is_held = cands[LEFT_ROW].isin(held).to_numpy()
    order = sample_pairs(cands, max_pairs, float(uncertain_share), seed)
    config = LinkConfig.resolve(
        None, on=on, left_on=left_on, right_on=right_on, progress=progress,
        rerank=judge.strip(), rerank_options={**dict(judge_options or {}), "cascade": False,
                                              **({"max_cost": max_cost} if max_cost is not None else {}),
                                              **({"max_calls": max_calls} if max_calls is not None else {})},
        **{key: value for key, value in link.items() if key in ("cache", "cache_dir")},
    )
    verdicts, report = _judge(cands, order, left_frame, right_frame, config)
    stage = (report.get("stages") or [{}])[-1]
    labelled = cands.iloc[order].reset_index(drop=True)
    labelled["label"] = pd.array(verdicts["is_match"], dtype="boolean").astype("Int64").to_numpy()
    labelled["judge_error"] = verdicts["judge_error"].to_numpy() if "judge_error" in verdicts else None
    labelled["held_out"] = is_held[order]
    keep = labelled["label"].notna().to_numpy()
    labels_csv = labelled.drop(columns=[LEFT_ROW, RIGHT_ROW])
    left_cols = _output_columns(list(config.left_on), cands, config.suffixes[0])
    right_cols = _output_columns(list(config.right_on), cands, config.suffixes[1])
    train = labelled[keep & ~labelled["held_out"].to_numpy()]
    holdout = labelled[keep & labelled["held_out"].to_numpy()]
    facts: dict[str, Any] = {
        "judge": judge, "k": k, "candidate_pairs": len(cands), "pairs_sent": len(order),
        "pairs_labelled": int(keep.sum()), "judge_matches": int((labelled["label"] == 1).sum()),
        "requests": stage.get("requests"), "cache_hits": stage.get("cache_hits"), "cost": stage.get("cost"),
        "budget": report.get("budget"), "judge_errors": stage.get("errors"),
        "training_pairs": len(train), "holdout_pairs": len(holdout),
    }
    if train.empty or train["label"].nunique() < 2:
        spill = folder.parent / f"{folder.name}.{LABELS_FILE}"
        _write_csv(labels_csv, spill)
        raise LinkInputError(
            f"the judge labelled {int(keep.sum())} pairs ({facts['judge_matches']} matches), too few of both kinds "
            f"to train on (budget: {report.get('budget', {}).get('stop_reason') or 'not reached'}). The verdicts "
            f"are kept in {str(spill)!r} and in the judge's cache: raise max_cost/max_pairs and rerun."
        )
    train_frame = train.drop(columns=[LEFT_ROW, RIGHT_ROW]).assign(label=train["label"].astype(int))
    path = train_reranker(train_frame, left_cols, right_cols, "label", base_model=base_model, output_dir=folder,
                          overwrite=overwrite, seed=seed, progress=progress, suffixes=tuple(config.suffixes),
                          negatives_per_left=train_options.pop("negatives_per_left", None), **train_options)
    if len(holdout):
        ce_config = config.replace(rerank=(f"cross-encoder:{path}",), rerank_options={})
        scored, _ = _judge(cands, order[keep & labelled["held_out"].to_numpy()], left_frame, right_frame, ce_config)
        predicted = scored["rerank_score"].to_numpy() >= 0.5
        truth = holdout["label"].to_numpy(dtype=np.int64) == 1
        tp, fp, fn = int((predicted & truth).sum()), int((predicted & ~truth).sum()), int((~predicted & truth).sum())
        facts.update(
            holdout_agreement=round(float(np.mean(predicted == truth)), 4),
            holdout_f1_vs_judge=round(2 * tp / (2 * tp + fp + fn), 4) if tp + fp + fn else None,
            holdout_judge_matches=int(truth.sum()),
        )
    facts["seconds"] = round(time.monotonic() - started, 1)
    _write_csv(labels_csv, Path(path) / LABELS_FILE)
    tmp = Path(path) / f".{REPORT_FILE}.tmp"
    tmp.write_text(json.dumps(facts, indent=1, default=str), "utf-8")
    os.replace(tmp, Path(path) / REPORT_FILE)
    return path


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.parent / f".{path.name}.tmp"
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def distillation_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What :func:`distil_judge` recorded beside a distilled model ({} for another folder)."""
    try:
        return json.loads((Path(path) / REPORT_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}

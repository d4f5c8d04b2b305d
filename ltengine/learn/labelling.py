"""``lt.label_pairs``: active labelling.  Ask for the labels that teach the most: the candidate pairs the
current model is least sure of (match probability near 0.5), spread over the data, saved after every
answer so that nothing is lost and a session resumes where it stopped."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltengine.config import Columns, resolve_on
from ltengine.errors import ColumnError, ConfigError, FileFormatError, LinkInputError
from ltengine.learn.labelling_ask import NO, QUIT, UNDO, UNSURE, YES, make_labeler

#: Columns label_pairs adds to the candidate pairs (the input tables must not have them).
ROW_COLUMNS = ("left_row", "right_row")
#: The two records of each pair as the engine serialises them (what the labeler saw).
TEXT_COLUMNS = ("text_l", "text_r")
ANSWER, LABEL = "answer", "label"
#: Features of the model refitted on the answers so far (those present in the candidates).
FEATURES = ("score", "score_semantic", "score_lexical", "match_probability", "rank")


def _current_probability(candidates: pd.DataFrame, answered: pd.DataFrame) -> np.ndarray:
    """P(match) of every candidate under the current model: the run's label-free ``match_probability``
    until the answers hold 3 of each class, then a logistic regression on the answers (scikit-learn)."""
    p = candidates["match_probability"].to_numpy(dtype=float)
    labels = answered[LABEL].dropna().astype(int) if len(answered) else pd.Series([], dtype=int)
    if (labels == 1).sum() < 3 or (labels == 0).sum() < 3:
        return np.nan_to_num(p, nan=0.5)
    from sklearn.linear_model import LogisticRegression

    columns = [c for c in FEATURES if c in candidates.columns]
    train = answered.loc[labels.index, columns].to_numpy(dtype=float)
    mean, std = train.mean(0), train.std(0) + 1e-9
    model = LogisticRegression(C=1.0, max_iter=1000).fit((train - mean) / std, labels.to_numpy())
    features = np.nan_to_num(candidates[columns].to_numpy(dtype=float))
    return model.predict_proba((features - mean) / std)[:, 1]


def select_pairs(candidates: pd.DataFrame, answered: pd.DataFrame, size: int, rng: np.random.Generator) -> list[int]:
    """Positions (in ``candidates``) of up to ``size`` new pairs to ask: drawn without replacement with
    probability proportional to uncertainty squared (``1 - |2p - 1|``), at most one per left row and one
    per right row in a batch, preferring left rows not asked yet (so the picks spread over the data)."""
    asked = set(zip(answered["left_row"], answered["right_row"])) if len(answered) else set()
    asked_left = set(answered["left_row"]) if len(answered) else set()
    keys = list(zip(candidates["left_row"], candidates["right_row"]))
    free = np.array([key not in asked for key in keys])
    if not free.any():
        return []
    p = _current_probability(candidates, answered)
    weight = (1.0 - np.abs(2.0 * p - 1.0)) ** 2 + 1e-4
    fresh = ~candidates["left_row"].isin(asked_left).to_numpy()
    weight = weight * np.where(fresh, 1.0, 0.05)  # rows already asked about: rarely again
    weight[~free] = 0.0
    order = rng.choice(len(weight), size=int(free.sum()), replace=False, p=weight / weight.sum())
    picked: list[int] = []
    used_left: set[Any] = set()
    used_right: set[Any] = set()
    for position in order:
        left_row, right_row = keys[position]
        if left_row in used_left or right_row in used_right:
            continue
        picked.append(int(position))
        used_left.add(left_row)
        used_right.add(right_row)
        if len(picked) == size:
            break
    return picked


def _read_saved(path: Path, candidates: pd.DataFrame) -> pd.DataFrame:
    """The answers saved by an earlier session (resume), checked against the current candidates."""
    try:
        saved = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"cannot read the saved labels {str(path)!r}: {exc}") from exc
    missing = [c for c in (*ROW_COLUMNS, ANSWER) if c not in saved.columns]
    if missing:
        raise FileFormatError(f"{str(path)!r} is not a label_pairs file (no {', '.join(missing)} column); "
                              "choose another save= path")
    bad = ~saved[ANSWER].isin([YES, NO, UNSURE])
    if bad.any():
        raise FileFormatError(f"{str(path)!r} row {int(np.flatnonzero(bad)[0])}: answer "
                              f"{saved[ANSWER][bad].iloc[0]!r} is not y, n or unsure")
    index = {key: i for i, key in enumerate(zip(candidates["left_row"], candidates["right_row"]))}
    rows = []
    for left_row, right_row, answer in zip(saved["left_row"], saved["right_row"], saved[ANSWER]):
        position = index.get((int(left_row), int(right_row)))
        if position is None:
            raise FileFormatError(f"{str(path)!r} holds a pair (left row {left_row}, right row {right_row}) that "
                                  "is not among this run's candidates: it was saved for other tables or options")
        rows.append((position, answer))
    return _answers_frame(candidates, rows)


def _answers_frame(candidates: pd.DataFrame, rows: list[tuple[int, str]]) -> pd.DataFrame:
    frame = candidates.iloc[[position for position, _ in rows]].copy()
    frame[ANSWER] = [answer for _, answer in rows]
    frame[LABEL] = pd.array([1 if a == YES else 0 if a == NO else None for _, a in rows], dtype="Int64")
    return frame


def _save(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` atomically (a temporary file in the same folder, then os.replace)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _texts(candidates: pd.DataFrame, positions: list[int], left_texts: np.ndarray,
           right_texts: np.ndarray) -> list[tuple[str, str]]:
    rows = candidates.iloc[positions]
    return [(str(left_texts[a]), str(right_texts[b])) for a, b in zip(rows["left_row"], rows["right_row"])]


def label_pairs(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: Columns = None,
    *,
    left_on: Columns = None,
    right_on: Columns = None,
    n: int = 50,
    labeler: Any = "console",
    save: str | os.PathLike[str] | None = None,
    k: int = 5,
    mode: str = "hybrid",
    batch_size: int = 10,
    seed: int = 0,
    labeler_options: Mapping[str, Any] | None = None,
    **merge_options: Any,
) -> pd.DataFrame:
    """Ask for ``n`` labels on the candidate pairs that teach the most; return the labelled pairs.

    Candidates: ``merge_knn(left, right, on=..., k=k, mode=mode, **merge_options)`` (hybrid by default, so
    the result has ``score_semantic``/``score_lexical`` for :func:`ltengine.fit_fusion`).  Pairs are
    chosen ``batch_size`` at a time, favouring those whose match probability under the current model
    (the run's ``match_probability``, then a logistic model refitted on the answers) is near 0.5, one per
    left and right row per batch.  ``labeler``: ``"console"`` (y / n / unsure / undo / quit),
    ``"llm:<model>"`` (the LLM judge, with ``labeler_options`` as its ``rerank_options``: cached and
    budgeted), or a function ``pair -> True/False/None``.  ``save``: a CSV or Parquet file written
    atomically after every answer; an existing one is resumed.

    Returns the candidate rows answered yes or no, in the order asked, with ``left_row``/``right_row``
    (positions in ``left``/``right``), ``text_l``/``text_r`` (the two records as serialised for
    linking), ``answer`` and ``label`` (1/0): pass it to ``train_adapter(frame, ...)`` /
    ``train_model(frame, left_on="text_l", right_on="text_r", label="label")``,
    ``fit_fusion(frame, frame["label"])`` or ``suggest_threshold(frame, "label")``.
    """
    from ltengine.api import merge_knn
    from ltengine.engine.text import serialize

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n must be a positive integer; got {n!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}")
    for side, frame in (("left", left), ("right", right)):
        if not isinstance(frame, pd.DataFrame):
            raise LinkInputError(f"the {side} table must be a DataFrame; got {type(frame).__name__}")
        for column in (*ROW_COLUMNS, *TEXT_COLUMNS):
            if column in frame.columns:
                raise ColumnError(f"the {side} table has a column {column!r}, which label_pairs adds; rename it")
    link = {key: merge_options[key] for key in ("model", "encoder_options", "cache_dir", "progress")
            if key in merge_options}
    ask = make_labeler(labeler, labeler_options, link)
    marked_left = left.assign(left_row=np.arange(len(left)))
    marked_right = right.assign(right_row=np.arange(len(right)))
    candidates = merge_knn(marked_left, marked_right, on=on, left_on=left_on, right_on=right_on, k=k, mode=mode,
                           **merge_options).reset_index(drop=True)
    columns = resolve_on(on, left_on, right_on)
    if not columns:
        raise LinkInputError("name the columns to link on: on=... (or left_on=/right_on=)")
    left_cols, right_cols = ([c] if isinstance(c, str) else list(c) for c in (columns["left_on"], columns["right_on"]))
    left_texts = serialize(left, left_cols, "left").to_numpy(dtype=object)
    right_texts = serialize(right, right_cols, "right").to_numpy(dtype=object)
    candidates["text_l"] = left_texts[candidates["left_row"].to_numpy()]
    candidates["text_r"] = right_texts[candidates["right_row"].to_numpy()]
    path = Path(save) if save is not None else None
    answers: list[tuple[int, str]] = []
    if path is not None and path.exists():
        saved = _read_saved(path, candidates)
        index = {key: i for i, key in enumerate(zip(candidates["left_row"], candidates["right_row"]))}
        answers = [(index[(a, b)], x) for a, b, x in zip(saved["left_row"], saved["right_row"], saved[ANSWER])]
    rng = np.random.default_rng(seed + len(answers))
    stop = False
    while len(answers) < n and not stop:
        answered = _answers_frame(candidates, answers)
        batch = select_pairs(candidates, answered, min(batch_size, n - len(answers)), rng)
        if not batch:
            break
        texts = _texts(candidates, batch, left_texts, right_texts)
        if not ask.interactive:
            for position, answer in zip(batch, ask.answer_all(candidates.iloc[batch], texts)):
                answers.append((position, answer))
            if path is not None:
                _save(_answers_frame(candidates, answers), path)
            continue
        queue = list(zip(batch, texts))
        while queue and len(answers) < n:
            position, (left_text, right_text) = queue[0]
            answer = ask.ask(candidates.iloc[position], left_text, right_text, f"{len(answers) + 1}/{n}")
            if answer == QUIT:
                stop = True
                break
            if answer == UNDO:
                if answers:
                    undone = answers.pop()
                    queue.insert(0, (undone[0], _texts(candidates, [undone[0]], left_texts, right_texts)[0]))
            else:
                answers.append((position, answer))
                queue.pop(0)
            if path is not None:
                _save(_answers_frame(candidates, answers), path)
    result = _answers_frame(candidates, answers)
    result = result[result[ANSWER] != UNSURE].reset_index(drop=True)
    result[LABEL] = result[LABEL].astype("int64")
    result.attrs["ltengine"] = {"labels": {"asked": len(answers), "yes": int((result[LABEL] == 1).sum()),
                                           "no": int((result[LABEL] == 0).sum()),
                                           "unsure": sum(a == UNSURE for _, a in answers)}}
    return result

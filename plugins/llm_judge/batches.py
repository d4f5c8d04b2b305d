"""The LLM judge's batch answers: a strict check, and what to ask next when an answer is rejected.

An answer is accepted only if its ids are exactly the ids asked, each once, each with a readable
verdict.  Otherwise *nothing* of it is used: a shifted (0-based), partial or duplicated mapping
could put verdicts on the wrong pairs, and which answers are right cannot be verified.

A rejected batch is asked again once.  If that answer is rejected too, a batch whose answer had
wrong ids (or unreadable verdicts) is split in halves, and each half is asked, split again on a
rejected answer, down to single pairs.  An answer with no JSON answers at all is not split (a
model that ignores the format does not learn it from smaller batches; splitting would only
multiply paid requests).  Pairs that never get a verifiable answer get
``judge_error="malformed answer"`` (``"malformed answer: wrong ids"`` when the ids were wrong),
never a verdict.  For a batch of ``b`` pairs that is answered wrongly every time this costs at
most ``2 * b`` requests.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import prompt

#: judge_error of pairs whose answers never passed the check, by the kind of the last rejection.
ERRORS = {
    "unparseable": "malformed answer",
    "wrong ids": "malformed answer: wrong ids",
    "unreadable verdict": "malformed answer: unreadable verdict",
}


@dataclasses.dataclass(frozen=True)
class Job:
    """Pairs (cache keys) to send in one request, and why: "first", "reask" or "split"."""

    keys: tuple[str, ...]
    how: str = "first"


@dataclasses.dataclass(frozen=True)
class Checked:
    """A checked answer: ``verdicts`` by pair id when accepted, else ``kind`` and ``problem``."""

    verdicts: dict[str, dict[str, Any]] | None
    kind: str | None = None
    problem: str | None = None


def _few(ids: Sequence[Any]) -> str:
    shown = [repr(i) for i in list(ids)[:5]]
    return ", ".join(shown) + (f" (+{len(ids) - 5} more)" if len(ids) > 5 else "")


def check_answer(content: str | None, tokens: Sequence[Any] | None, ids: Sequence[str]) -> Checked:
    """Accept the answer only if it holds exactly ``ids``, each once, each with a verdict."""
    items = prompt.answer_items(content)
    if not items:
        return Checked(None, "unparseable", "no JSON answers in the reply")
    seen = [item[0] if item is not None else None for item in items]
    if len(ids) == 1 and len(items) == 1 and items[0] is not None and seen[0] is None:
        seen = [ids[0]]  # a lone answer without an id, to a lone pair
    counts = collections.Counter(seen)
    wanted = set(ids)
    missing = [i for i in ids if counts[i] == 0]
    extra = [i for i in counts if i not in wanted]
    duplicated = [i for i in ids if counts[i] > 1]
    if missing or extra or duplicated:
        parts = [
            f"{label} {_few(found)}"
            for label, found in (("missing ids", missing), ("unknown ids", extra), ("repeated ids", duplicated))
            if found
        ]
        return Checked(None, "wrong ids", "; ".join(parts))
    unreadable = [pid for pid, item in zip(seen, items) if item is None or item[1] is None]
    if unreadable:
        return Checked(None, "unreadable verdict", f"no true/false verdict for ids {_few(unreadable)}")
    probs = prompt.match_probabilities(content or "", tokens)
    p_by_id = dict(zip(seen, probs)) if len(probs) == len(items) else {}
    verdicts = {
        pid: {"match": bool(item[1]), "confidence": item[2], "p_yes": p_by_id.get(pid)}
        for pid, item in zip(seen, items)
        if item is not None
    }
    return Checked(verdicts)


def next_jobs(job: Job, checked: Checked) -> tuple[list[Job], str | None]:
    """After ``job``'s answer was rejected: the jobs to ask next, or none and the pairs' judge_error."""
    if job.how == "first":
        return [Job(job.keys, "reask")], None
    if checked.kind == "unparseable" or len(job.keys) == 1:
        return [], ERRORS.get(checked.kind or "", "malformed answer")
    half = (len(job.keys) + 1) // 2
    return [Job(job.keys[:half], "split"), Job(job.keys[half:], "split")], None


def worst_case_requests(batch_size: int) -> int:
    """Requests one batch of ``batch_size`` pairs can cost when every answer is rejected."""
    if batch_size <= 1:
        return 2
    half = (batch_size + 1) // 2
    return 2 + worst_split(half) + worst_split(batch_size - half)


def worst_split(n: int) -> int:
    """Requests a split part of ``n`` pairs can cost (asked once, split again when rejected)."""
    if n <= 1:
        return 1
    half = (n + 1) // 2
    return 1 + worst_split(half) + worst_split(n - half)


def verdict_frame(index: pd.Index, keys: list[str], verdicts: dict[str, dict], errors: dict[str, str]) -> pd.DataFrame:
    """The judge's output columns for the pairs ``keys`` (verdicts, else their judge_error)."""
    n = len(keys)
    score = np.full(n, np.nan)
    confidence = np.full(n, np.nan)
    match = pd.array([pd.NA] * n, dtype="boolean")
    error = np.full(n, None, dtype=object)
    for i, key in enumerate(keys):
        verdict = verdicts.get(key)
        if verdict is None:
            error[i] = errors.get(key, "not judged")
            continue
        yes, conf, p_yes = verdict["match"], verdict.get("confidence"), verdict.get("p_yes")
        match[i] = yes
        if p_yes is not None:
            score[i] = p_yes
        elif conf is not None:
            sure = min(max(conf, 0.5), 1.0)
            score[i] = sure if yes else 1.0 - sure
        else:
            score[i] = 1.0 if yes else 0.0
        if conf is not None:
            confidence[i] = conf
        elif p_yes is not None:
            confidence[i] = max(p_yes, 1.0 - p_yes)
    return pd.DataFrame(
        {"score": score, "is_match": match, "judge_confidence": confidence, "judge_error": error}, index=index
    )


def error_kind(error: str) -> str:
    """A short label of a judge_error for the report: "budget", "request failed: rate_limited", ..."""
    prefix = "request failed: "
    if error.startswith(prefix):
        return prefix + error[len(prefix) :].split(" ", 1)[0].rstrip(":")
    return error.split(":", 1)[0]

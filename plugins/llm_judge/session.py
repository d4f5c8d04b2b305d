"""One judging run of the LLM judge: the estimate, the request loop, settling answers, cache writes.

A :class:`Session` sends the batches ``concurrency`` at a time, reserving each request's worst-case
cost against the run's budget before it is sent, checks every answer strictly
(:mod:`ltengine_plugins.llm_judge.batches`), stores each accepted verdict in the cache as soon as it
arrives, and asks again / splits batches whose answers are rejected.  It stops at the deadline, at
the end of the budget, or at a fatal request error (raised as :class:`ComponentError`).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import logging
import time
from typing import Any, Protocol

from ltengine.errors import ComponentError
from ltengine.progress import progress_bar

from . import batches as answers
from . import prompt
from .batches import Job
from .client import Client, RequestFailed

logger = logging.getLogger("ltengine.llm_judge")

#: Expected / maximum answer tokens per pair (the maximum bounds the cost reserved per request).
TOKENS_PER_ANSWER, MAX_TOKENS_PER_ANSWER = 22, 48


class Judge(Protocol):
    """What a session needs of the judge: its model, options, client, answer-token limit and the pool its
    requests run on."""

    model: str
    options: Any
    client: Client

    def max_tokens_for(self, n_pairs: int) -> int: ...

    def request_pool(self, concurrency: int) -> cf.Executor: ...


class Session:
    """One judging run over ``unique`` pairs (cache key -> (left JSON, right JSON)).

    ``verdicts`` (cache key -> verdict) starts with the cache hits and receives every accepted answer;
    ``errors`` (cache key -> judge_error) and ``stats`` (requests, attempts, tokens, cost, rejections)
    fill up as the run goes.  A subclass with other ``messages``/``check`` runs other tasks on the same
    loop (:mod:`ltengine_plugins.llm_judge.rows`).
    """

    #: Progress bar text and unit.
    activity, unit = "judging", "pair"

    def __init__(
        self,
        judge: Judge,
        unique: dict[str, tuple[str, str]],
        cache: Any,
        budget: Any,
        progress: Any,
        verdicts: dict[str, dict],
    ) -> None:
        self.judge, self.client, self.options = judge, judge.client, judge.options
        self.unique, self.cache, self.budget, self.progress = unique, cache, budget, progress
        self.verdicts = verdicts
        self.errors: dict[str, str] = {}
        self.stats: collections.Counter = collections.Counter()

    def messages(self, batch: list[str]) -> list[dict[str, str]]:
        """The chat messages asking about the pairs ``batch`` (ids "1", "2", ... in batch order)."""
        items = [(str(i + 1), self.unique[key][0], self.unique[key][1]) for i, key in enumerate(batch)]
        return prompt.build_messages(items, self.options.task)

    def check(self, content: str | None, tokens: Any, ids: list[str]) -> answers.Checked:
        """The strict check of one answer (see :func:`~ltengine_plugins.llm_judge.batches.check_answer`)."""
        return answers.check_answer(content, tokens, ids)

    def worst_cost(self, messages: list[dict[str, str]], n_pairs: int) -> float | None:
        """Dollars a request can cost at most (None: the model has no price)."""
        return self.client.cost_of(self.client.count_tokens(messages), self.judge.max_tokens_for(n_pairs))

    def estimate(self, batches: list[list[str]]) -> dict[str, Any]:
        """Requests, tokens and dollars the batches would cost (before any request is made)."""
        prompt_tokens = 0
        exact = batches[:50] if len(batches) > 200 else batches
        chars_exact = tokens_exact = 0
        for batch in exact:
            messages = self.messages(batch)
            tokens = self.client.count_tokens(messages)
            prompt_tokens += tokens
            chars_exact += sum(len(m["content"]) for m in messages)
            tokens_exact += tokens
        if len(exact) < len(batches):  # scale the rest by the measured tokens per character
            ratio = tokens_exact / max(chars_exact, 1)
            for batch in batches[len(exact) :]:
                chars = sum(len(m["content"]) for m in self.messages(batch))
                prompt_tokens += int(chars * ratio) + 1
        n_pairs = sum(len(b) for b in batches)
        completion_tokens = sum(12 + TOKENS_PER_ANSWER * len(b) for b in batches)
        cost = self.client.cost_of(prompt_tokens, completion_tokens) if batches else 0.0
        return {
            "requests": len(batches),
            "pairs": n_pairs,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost": None if cost is None else round(cost, 8),
        }

    def judge_all(self, batches: list[list[str]], deadline: float | None) -> None:
        """Send the batches (``concurrency`` at a time), store each answer as it arrives; stop at ``deadline``."""
        concurrency, budget, stats, errors = self.options.concurrency, self.budget, self.stats, self.errors
        pending = collections.deque(Job(tuple(batch)) for batch in batches)
        inflight: dict[cf.Future, tuple[Job, float | None]] = {}
        fatal: RequestFailed | None = None
        late = False  # the deadline passed
        total = sum(len(b) for b in batches)
        pool = self.judge.request_pool(concurrency)
        with progress_bar(total, f"{self.activity} ({self.judge.model})", self.progress, unit=self.unit) as bar:
            try:
                while pending or inflight:
                    late = deadline is not None and time.monotonic() >= deadline
                    if late:
                        break
                    while pending and len(inflight) < concurrency and fatal is None:
                        job = pending[0]
                        messages = self.messages(list(job.keys))
                        worst = self.worst_cost(messages, len(job.keys))
                        if budget is not None and not budget.try_reserve(worst):
                            break
                        pending.popleft()
                        stats["requests"] += 1
                        stats["reasked"] += job.how == "reask"
                        limit = self.judge.max_tokens_for(len(job.keys))
                        seconds = None if deadline is None else deadline - time.monotonic()
                        inflight[pool.submit(self.client.complete, messages, limit, seconds)] = (job, worst)
                    if not inflight:
                        break
                    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                    done, _ = cf.wait(inflight, timeout=wait, return_when=cf.FIRST_COMPLETED)
                    for future in done:
                        job, worst = inflight.pop(future)
                        bar.update(self.settle(future, job, worst, pending))
                        exc = future.exception()
                        if isinstance(exc, RequestFailed) and exc.fatal and fatal is None:
                            fatal = exc
            finally:  # on Ctrl-C or the deadline: return at once; what was answered is already in the cache
                pool.shutdown(wait=not inflight, cancel_futures=True)
        for job, worst in inflight.values():  # abandoned at the deadline (the request may still be billed)
            if budget is not None:
                budget.settle(worst, None)
            errors.update({key: "deadline" for key in job.keys})
        stats["deadline_reached"] = int(late or any(e == "deadline" for e in errors.values()))
        for job in pending:
            reason = "deadline" if late else "budget" if fatal is None else "not sent: " + fatal.kind
            errors.update({key: reason for key in job.keys})
        if fatal is not None:
            raise ComponentError(
                f"LLM judge {self.judge.model!r} cannot be used: {fatal}. Answers received so far are cached; "
                "fix the problem and rerun."
            )

    def count_retries(self, retries: dict[str, int]) -> None:
        for kind, count in retries.items():
            self.stats["retry " + kind] += count

    def retries(self) -> dict[str, int]:
        """Retries of this session's requests, by kind of failure."""
        return {kind[len("retry "):]: int(n) for kind, n in self.stats.items() if kind.startswith("retry ")}

    def settle(self, future: cf.Future, job: Job, worst: float | None, pending: collections.deque) -> int:
        """Handle one finished request; return how many pairs are finished (judged or failed)."""
        budget, stats, errors = self.budget, self.stats, self.errors
        batch = job.keys
        exc = future.exception()
        if exc is not None:
            if budget is not None:
                budget.settle(worst, 0.0)  # a failed request is not billed
            message = str(exc) if isinstance(exc, RequestFailed) else self.client.redact(f"{type(exc).__name__}: {exc}")
            logger.warning("llm judge request failed (%d pairs): %s", len(batch), message)
            stats["attempts"] += exc.attempts if isinstance(exc, RequestFailed) else 1
            self.count_retries(exc.retries if isinstance(exc, RequestFailed) else {})
            deadline = isinstance(exc, RequestFailed) and exc.kind == "deadline"
            errors.update({key: "deadline" if deadline else f"request failed: {message}" for key in batch})
            return len(batch)
        reply = future.result()
        stats["attempts"] += reply.attempts
        self.count_retries(reply.retries)
        stats["prompt_tokens"] += reply.prompt_tokens
        stats["completion_tokens"] += reply.completion_tokens
        if reply.cost is None:
            stats["cost_unknown"] = 1
        else:
            stats["cost"] += reply.cost
        if budget is not None:
            budget.settle(worst, reply.cost)
        checked = self.check(reply.content, reply.tokens, [str(i + 1) for i in range(len(batch))])
        if checked.verdicts is not None:
            for i, key in enumerate(batch):
                verdict = checked.verdicts[str(i + 1)]
                self.cache.set(key, verdict)  # durable at once: a crash later keeps this answer
                self.verdicts[key] = verdict
            stats["judged"] += len(batch)
            return len(batch)
        stats["rejected " + (checked.kind or "unknown")] += 1
        logger.warning("llm judge: answer for %d pairs rejected (%s): nothing of it is used", len(batch), checked.problem)
        follow, error = answers.next_jobs(job, checked)
        stats["splits"] += len(follow) > 1
        pending.extendleft(reversed(follow))  # asked next, in order
        if error is not None:
            errors.update({key: error for key in batch})
            return len(batch)
        return 0

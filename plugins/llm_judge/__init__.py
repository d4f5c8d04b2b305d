"""The LLM judge reranker: ``rerank="llm:<litellm model>"`` (OpenAI, Azure, Anthropic, Gemini,
Ollama, vLLM, llama.cpp, ... anything litellm speaks; local servers through ``api_base``).

Several pairs go in one request (``batch_size``), each with an id; ``concurrency`` requests are in
flight at once (threads of this process, or Ray tasks under ``executor="ray"``: ``use_request_pools``).
Every answer is stored in the disk cache (namespace ``llm_judge``) as soon as it arrives, keyed by
model, prompt version, the options that change answers (task, temperature, logprobs, JSON mode,
extra litellm parameters) and the two records, so a rerun, or a run resumed after a crash, only
asks for what is missing.  ``api_base``, keys, batch size and concurrency
are not part of the key.  Keys are read from the environment (the provider's usual variable, or
``api_key_env``) and never written to the cache, logs or error messages.

Costs use litellm's offline price list (or ``input_cost_per_token``/``output_cost_per_token``);
the run's ``max_cost``/``max_calls`` are checked against the worst case of each request before it
is sent, so the caps hold; pairs left when a cap is reached get ``judge_error="budget"``.

A batch answer is used only if its ids are exactly the ids asked, each once (see
:mod:`ltengine_plugins.llm_judge.batches`); otherwise nothing of it is applied, the batch is asked again
once, then split in halves down to single pairs; pairs left without a verifiable answer get
``judge_error="malformed answer"``.  The report counts ``rejected_answers``, ``reasked``, ``splits``.

Time: a request may take ``max_attempts`` x ``timeout`` plus the waits between attempts (Retry-After
up to ``max_retry_after``): 5 x 60 s + 4 x 60 s = 9 min at the defaults, so without a deadline the
worst case is 9 min x ceil(pairs / 8) / ``concurrency`` (1,000 pairs: 4.7 h; up to 16x that if every
answer is rejected).  ``deadline_s`` (default None) bounds the judging run: no attempt runs or waits
past it; pairs without an answer get ``judge_error="deadline"`` (answers received stay cached).

Output columns: ``score`` (P(yes) from logprobs where the provider returns them, else the stated
confidence of the verdict mapped to 0..1), ``is_match`` (the verdict), ``judge_confidence`` and
``judge_error``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import math
import time
from typing import Any, ClassVar

import pandas as pd

from ltengine.cache import NullCache, content_key
from ltengine.components import RequestPools, Reranker
from ltengine.errors import ConfigError
from ltengine.hookspecs import hookimpl
from ltengine.numeric import is_integer, is_real

from . import prompt
from .batches import error_kind, verdict_frame
from .client import Client, ClientSettings
from .session import MAX_TOKENS_PER_ANSWER, Session

logger = logging.getLogger("ltengine.llm_judge")

CACHE_NAMESPACE = "llm_judge"
#: Pairs per request, measured on the fake server and gpt-4o-mini-sized prompts (see evals/rerank_eval.py).
DEFAULT_BATCH_SIZE = 8


def _positive(value: Any, name: str, integer: bool = False) -> None:
    bad = not (is_integer(value) if integer else is_real(value))
    if bad or math.isnan(float(value)) or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}; got {value!r}")


class LLMJudge(Reranker):
    """Ask an LLM whether each candidate pair is the same entity."""

    name = "llm"
    aliases = ("llm-judge", "judge")
    #: Only pairs in the uncertain band of the previous score are sent, by default.
    cascade_default: ClassVar[bool] = True
    #: Columns the score frame adds besides score and is_match.
    output_columns: ClassVar[tuple[str, ...]] = ("judge_confidence", "judge_error")
    #: It calls an LLM: it takes the CLI's --rerank-task / --api-base and spends the run's budget.
    calls_llm: ClassVar[bool] = True

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: What a match means, e.g. "firms; same legal entity" (part of the prompt and cache key).
        task: str | None = None
        #: Candidate pairs per request.
        batch_size: int = DEFAULT_BATCH_SIZE
        #: Requests in flight at once.
        concurrency: int = 4
        #: Server URL for local or self-hosted models, e.g. "http://127.0.0.1:8080/v1".
        api_base: str | None = None
        #: Name of the environment variable holding the API key (else the provider's default variable).
        api_key_env: str | None = None
        #: Seconds per attempt.
        timeout: float = 60.0
        #: Attempts per request on 429 / 5xx / timeouts / connection errors.
        max_attempts: int = 5
        #: Backoff: the n-th retry waits uniform(0, min(max_backoff, backoff * 2**(n-1))) seconds.
        backoff: float = 1.0
        max_backoff: float = 30.0
        #: Longest Retry-After honoured (seconds).
        max_retry_after: float = 60.0
        temperature: float = 0.0
        #: Ask for token logprobs, so the score is P(yes) (ignored by providers without them).
        logprobs: bool = True
        #: Ask for a JSON object answer (response_format), where the provider supports it.
        json_mode: bool = True
        #: Answer tokens per request; default 64 + 48 per pair.
        max_tokens: int | None = None
        #: Prices in dollars per token, for models litellm has no price for (0 for a local model).
        input_cost_per_token: float | None = None
        output_cost_per_token: float | None = None
        #: Extra litellm.completion arguments (e.g. {"top_p": 1, "seed": 0}); part of the cache key.
        litellm_params: dict | None = None
        #: Seconds for the whole judging run (None: no deadline); then judge_error="deadline".
        deadline_s: float | None = None

        def __post_init__(self) -> None:
            _positive(self.batch_size, "batch_size", integer=True)
            _positive(self.concurrency, "concurrency", integer=True)
            _positive(self.max_attempts, "max_attempts", integer=True)
            _positive(self.timeout, "timeout")
            for name in ("backoff", "max_backoff", "max_retry_after", "temperature"):
                value = getattr(self, name)
                if not is_real(value) or value < 0:
                    raise ValueError(f"{name} must be a non-negative number; got {value!r}")
            if self.max_tokens is not None:
                _positive(self.max_tokens, "max_tokens", integer=True)
            if self.deadline_s is not None:
                _positive(self.deadline_s, "deadline_s")
            for name in ("input_cost_per_token", "output_cost_per_token"):
                value = getattr(self, name)
                if value is not None and (not is_real(value) or value < 0):
                    raise ValueError(f"{name} must be a non-negative number of dollars; got {value!r}")
            if self.litellm_params is not None and not isinstance(self.litellm_params, dict):
                raise ValueError(f"litellm_params must be a dict; got {self.litellm_params!r}")
            for key in ("api_key", "messages", "model"):
                if key in (self.litellm_params or {}):
                    raise ValueError(
                        f"litellm_params may not set {key!r}"
                        + ("; put the key in an environment variable and pass api_key_env" if key == "api_key" else "")
                    )

    def __init__(self, model: str | None = None, options: Any = None, **kw: Any) -> None:
        super().__init__(model, options, **kw)
        if not self.model:
            raise ConfigError(
                "the llm reranker needs a model: rerank='llm:<litellm model>', e.g. 'llm:openai/gpt-4o-mini'"
            )
        o = self.options
        self.client = Client(
            ClientSettings(
                model=self.model,
                api_base=o.api_base,
                api_key_env=o.api_key_env,
                timeout=float(o.timeout),
                max_attempts=o.max_attempts,
                backoff=float(o.backoff),
                max_backoff=float(o.max_backoff),
                max_retry_after=float(o.max_retry_after),
                temperature=float(o.temperature),
                logprobs=o.logprobs,
                json_mode=o.json_mode,
                litellm_params=dict(o.litellm_params or {}),
                input_cost_per_token=o.input_cost_per_token,
                output_cost_per_token=o.output_cost_per_token,
            )
        )
        self._run: Any = None
        self._pools: RequestPools | None = None

    def attach(self, run: Any) -> None:
        """Receive the run's cache, budget, progress setting and this stage's report."""
        self._run = run

    def use_request_pools(self, pools: RequestPools) -> None:
        """Send the requests through ``pools`` (Ray tasks under ``executor="ray"``); the budget, cache and
        journal stay in this process."""
        self._pools = pools

    def request_pool(self, concurrency: int) -> concurrent.futures.Executor:
        """The executor one judging session sends its requests on: ``concurrency`` threads here, or the pool
        given to :meth:`use_request_pools`."""
        if self._pools is not None:
            return self._pools(concurrency)
        return concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llm-judge")

    # -- identity ---------------------------------------------------------------------------
    @property
    def answer_id(self) -> str:
        """What the answers depend on besides the pair: the cache key prefix."""
        o = self.options
        params = sorted((o.litellm_params or {}).items())
        return (
            f"{CACHE_NAMESPACE}|v{prompt.PROMPT_VERSION}|{self.model}|task={o.task or ''}|t={o.temperature}"
            f"|lp={o.logprobs}|json={o.json_mode}|{params!r}"
        )

    def max_tokens_for(self, n_pairs: int) -> int:
        """Answer tokens allowed for a request of ``n_pairs`` pairs."""
        return self.options.max_tokens or 64 + MAX_TOKENS_PER_ANSWER * n_pairs

    def row_task(self, kind: str, labels: Any = None, instruction: str | None = None) -> Any:
        """This judge's client, cache, budget and batching for a row task ("classify" or "transform"):
        a :class:`~ltengine_plugins.llm_judge.rows.RowTask` (``ltengine.classify_rows`` / ``transform_rows``)."""
        from .rows import RowTask

        return RowTask(self, kind, labels, instruction)

    # -- scoring ----------------------------------------------------------------------------
    def score(self, pairs: pd.DataFrame, left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
        run = self._run
        report: dict[str, Any] = run.report if run is not None else {}
        cache = run.cache(CACHE_NAMESPACE) if run is not None else NullCache()
        budget = run.budget if run is not None else None
        start = time.perf_counter()
        left_json = prompt.records_json(left, pairs["id_l"].to_numpy())
        right_json = prompt.records_json(right, pairs["id_r"].to_numpy())
        keys = [content_key(self.answer_id, lj, rj) for lj, rj in zip(left_json, right_json)]
        unique: dict[str, tuple[str, str]] = {}
        for key, lj, rj in zip(keys, left_json, right_json):
            unique.setdefault(key, (lj, rj))
        verdicts: dict[str, dict] = {}
        for key in unique:
            hit = cache.get(key)
            if isinstance(hit, dict) and "match" in hit:
                verdicts[key] = hit
        todo = [key for key in unique if key not in verdicts]
        size = self.options.batch_size
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
        session = Session(self, unique, cache, budget, run.progress if run else None, verdicts)
        errors, stats = session.errors, session.stats
        estimate = session.estimate(batches)
        report.update(
            model=self.model,
            batch_size=size,
            concurrency=self.options.concurrency,
            pairs_unique=len(unique),
            cache_hits=len(verdicts),
            estimate=estimate,
        )
        logger.info(
            "llm judge %s: %d pairs to judge (%d cached); estimate %s", self.model, len(todo), len(verdicts), estimate
        )
        if budget is not None and budget.max_cost is not None and todo and estimate["cost"] is None:
            raise ConfigError(
                f"max_cost is set but litellm has no price for model {self.model!r}: pass rerank options "
                "input_cost_per_token / output_cost_per_token (0 for a local model), or drop max_cost"
            )
        if budget is not None and budget.max_cost is not None and todo and estimate["cost"] > budget.max_cost - budget.spent:
            _warn(
                f"LLM judge: estimated ${estimate['cost']:.4f} for {len(todo)} pairs exceeds what is left of "
                f"max_cost=${budget.max_cost:g}; judging stops when the budget is spent (judge_error='budget')"
            )
        if run is not None and run.dry_run:
            errors.update({key: "dry_run" for key in todo})
        elif todo:
            deadline = None if self.options.deadline_s is None else time.monotonic() + float(self.options.deadline_s)
            session.judge_all(batches, deadline)
        elapsed = time.perf_counter() - start
        judged = int(stats["judged"])
        rejected = {kind[len("rejected ") :]: int(n) for kind, n in stats.items() if kind.startswith("rejected ")}
        report.update(
            requests=int(stats["requests"]),
            http_attempts=int(stats["attempts"]),
            reasked=int(stats["reasked"]),
            splits=int(stats["splits"]),
            rejected_answers=rejected,
            retries=session.retries(),
            prompt_tokens=int(stats["prompt_tokens"]),
            completion_tokens=int(stats["completion_tokens"]),
            cost=None if stats["cost_unknown"] else round(float(stats["cost"]), 8),
            judged=judged,
            errors=dict(collections.Counter(error_kind(e) for e in errors.values())),
            deadline_s=self.options.deadline_s,
            deadline_reached=bool(stats["deadline_reached"]),
            seconds=round(elapsed, 3),
            pairs_per_s=round(judged / elapsed, 2) if elapsed > 0 and judged else None,
        )
        if self._pools is not None:
            report["ray"] = self._pools.report()
        if stats["deadline_reached"]:
            _warn(
                f"LLM judge: deadline_s={self.options.deadline_s:g} passed; "
                f"{sum(e == 'deadline' for e in errors.values())} pairs were not judged (judge_error='deadline'). "
                "Every answer received is cached: rerun (or raise deadline_s) to judge the rest."
            )
        return verdict_frame(pairs.index, keys, verdicts, errors)


def _warn(message: str) -> None:
    import warnings

    from ltengine.errors import LinkWarning

    warnings.warn(message, LinkWarning, stacklevel=4)


@hookimpl
def register_rerankers(register):
    register(LLMJudge)

"""One chat request through litellm, retried with tenacity; costs, and secrets kept out of messages.

Transient failures (429, 5xx, timeouts, connection errors, truncated bodies) are retried with
exponential backoff and full jitter, bounded by ``max_attempts``; a 429's ``Retry-After`` /
``retry-after-ms`` header sets the wait instead (capped at ``max_retry_after``).  litellm's and
the OpenAI SDK's own retries are switched off so every attempt is counted here.  With a
deadline (``seconds`` from the call), no attempt starts or waits past it and each
attempt's timeout is cut to the time left; a request stopped by it fails with kind "deadline".
"""

from __future__ import annotations

import dataclasses
import email.utils
import os
import random
import re
import time
from collections.abc import Iterable
from typing import Any

# litellm fetches its price list from the network at import unless told otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

_SECRET_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)[^\s\"',}]+"), r"\1***"),
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}"), "***"),
    (re.compile(r"(?i)((?:api[_-]?key|x-api-key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1***"),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets and anything that looks like a key replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RequestFailed(Exception):
    """A request failed for good.  ``fatal``: every later request would fail too (auth, unknown model);
    ``retries``: the retries it made, by kind of failure."""

    def __init__(self, message: str, *, kind: str, fatal: bool = False, attempts: int = 1,
                 retries: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.kind, self.fatal, self.attempts, self.retries = kind, fatal, attempts, dict(retries or {})

    def __reduce__(self) -> tuple[Any, ...]:  # keyword arguments survive pickling (Ray sends it back)
        return _request_failed, (str(self), self.kind, self.fatal, self.attempts, self.retries)


def _request_failed(message: str, kind: str, fatal: bool, attempts: int, retries: dict[str, int]) -> RequestFailed:
    return RequestFailed(message, kind=kind, fatal=fatal, attempts=attempts, retries=retries)


@dataclasses.dataclass
class Reply:
    """The parts of a chat completion the judge uses."""

    content: str
    tokens: list[Any] | None
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    attempts: int
    finish_reason: str | None = None
    #: Retries this request made, by kind of failure ("rate_limited", "timeout", ...).
    retries: dict[str, int] = dataclasses.field(default_factory=dict)


def _header(exc: BaseException, name: str) -> str | None:
    for source in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if source is not None:
            try:
                value = source.get(name)
            except Exception:  # noqa: BLE001 - any mapping-like object
                value = None
            if value:
                return str(value)
    return None


def retry_after(exc: BaseException) -> float | None:
    """Seconds to wait according to the error's ``retry-after-ms`` / ``Retry-After`` header."""
    ms = _header(exc, "retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = _header(exc, "retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _classify(exc: BaseException) -> tuple[str, bool, bool]:
    """(kind, transient?, fatal?) of an exception raised by litellm."""
    import litellm

    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.RateLimitError) or status == 429:
        return "rate_limited", True, False
    if isinstance(exc, (litellm.Timeout,)) or "Timeout" in name:
        return "timeout", True, False
    if (
        isinstance(exc, litellm.AuthenticationError)
        or status in (401, 403)
        or isinstance(exc, litellm.PermissionDeniedError)
    ):
        return "auth", False, True
    if isinstance(exc, litellm.NotFoundError) or status == 404:
        return "not_found", False, True
    transient_types = tuple(
        t
        for t in (
            getattr(litellm, "APIConnectionError", None),
            getattr(litellm, "InternalServerError", None),
            getattr(litellm, "ServiceUnavailableError", None),
            getattr(litellm, "BadGatewayError", None),
        )
        if t is not None
    )
    if isinstance(exc, transient_types) or (isinstance(status, int) and status >= 500):
        return "server_error", True, False
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return "connection", True, False
    if isinstance(exc, getattr(litellm, "BadRequestError", ())) or status == 400:
        return "bad_request", False, False
    return "error", False, False


def attempt_timeout(timeout: float, left: float) -> float:
    """``timeout`` divided by sqrt(2) until it fits in the ``left`` seconds before a deadline.

    A coarse grid, not ``left`` itself: litellm keeps one HTTP client per timeout value, so each
    distinct value would open new connections.  Raises TimeoutError when too little time is left.
    """
    while timeout > left and timeout >= 0.02:
        timeout /= 2.0**0.5
    if timeout > left or timeout < 0.02:
        raise TimeoutError("the judge's deadline passed before this attempt")
    return timeout


class Waiter:
    """tenacity wait: Retry-After when the server sends one, else exponential backoff with full jitter."""

    def __init__(
        self,
        base: float,
        cap: float,
        max_retry_after: float,
        rng: random.Random | None = None,
        deadline: float | None = None,
    ) -> None:
        self.base, self.cap, self.max_retry_after = base, cap, max_retry_after
        self.rng = rng or random.Random()
        self.deadline = deadline

    def __call__(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = retry_after(exc) if exc is not None else None
        if hinted is not None:
            wait = min(hinted, self.max_retry_after)
        else:
            ceiling = min(self.cap, self.base * (2 ** (retry_state.attempt_number - 1)))
            wait = self.rng.uniform(0.0, ceiling)
        if self.deadline is not None:
            wait = max(0.0, min(wait, self.deadline - time.monotonic()))
        return wait


@dataclasses.dataclass
class ClientSettings:
    model: str
    api_base: str | None
    api_key_env: str | None
    timeout: float
    max_attempts: int
    backoff: float
    max_backoff: float
    max_retry_after: float
    temperature: float
    logprobs: bool
    json_mode: bool
    litellm_params: dict[str, Any]
    input_cost_per_token: float | None
    output_cost_per_token: float | None


class Client:
    """Sends chat requests for one judge.  It holds only its settings, so it can be sent to another
    process (``executor="ray"`` sends requests from Ray tasks); each reply counts its own attempts and retries."""

    def __init__(self, settings: ClientSettings) -> None:
        self.s = settings

    # -- secrets ---------------------------------------------------------------------------
    def _named_key(self) -> str | None:
        """The value of the ``api_key_env`` variable (None: no variable named, or not set)."""
        return os.environ.get(self.s.api_key_env) if self.s.api_key_env else None

    def _api_key(self) -> str | None:
        key = self._named_key()
        if key is None and self.s.api_key_env:
            raise RequestFailed(
                f"auth: the environment variable {self.s.api_key_env!r} (api_key_env) is not set in the process "
                f"sending the request (pid {os.getpid()}). With executor='ray' requests are sent from Ray workers: "
                "set it on every node, or before Ray starts (a local Ray inherits the environment it starts with)",
                kind="auth", fatal=True, attempts=0)
        return key

    def secrets(self) -> list[str]:
        found = [self._named_key()]
        for name, value in os.environ.items():
            if name.endswith(("_API_KEY", "_KEY", "_TOKEN", "_SECRET")) and value:
                found.append(value)
        return [s for s in found if s]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    # -- costs ----------------------------------------------------------------------------
    def cost_of(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Dollars for this many tokens: the option prices, else litellm's price list, else None."""
        s = self.s
        if s.input_cost_per_token is not None or s.output_cost_per_token is not None:
            return prompt_tokens * (s.input_cost_per_token or 0.0) + completion_tokens * (
                s.output_cost_per_token or 0.0
            )
        import litellm

        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=s.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
        except Exception:  # noqa: BLE001 - model not in litellm's price list
            return None
        return float(prompt_cost) + float(completion_cost)

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        import litellm

        try:
            return int(litellm.token_counter(model=self.s.model, messages=messages))
        except Exception:  # noqa: BLE001 - unknown tokenizer: about 4 characters per token
            return sum(len(m["content"]) for m in messages) // 4 + 8

    # -- requests ---------------------------------------------------------------------------
    def _kwargs(self, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
        s = self.s
        kwargs: dict[str, Any] = {
            "model": s.model,
            "messages": messages,
            "timeout": s.timeout,
            "temperature": s.temperature,
            "max_tokens": max_tokens,
            "num_retries": 0,
            "max_retries": 0,
        }
        if s.api_base:
            kwargs["api_base"] = s.api_base
        key = self._api_key()
        if key:
            kwargs["api_key"] = key
        if s.logprobs:
            kwargs.update(logprobs=True, top_logprobs=5)
        if s.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        if s.logprobs or s.json_mode:
            kwargs["drop_params"] = True  # providers that lack them just ignore them
        kwargs.update(s.litellm_params)
        return kwargs

    def complete(self, messages: list[dict[str, str]], max_tokens: int, seconds: float | None = None) -> Reply:
        """One request, retried on transient errors, none of it later than ``seconds`` from now (None: no
        deadline; seconds rather than an instant, so the deadline crosses processes and machines);
        raises RequestFailed (message redacted)."""
        import litellm
        from tenacity import Retrying, retry_if_exception, stop_after_attempt

        litellm.suppress_debug_info = True
        deadline = None if seconds is None else time.monotonic() + seconds
        kwargs = self._kwargs(messages, max_tokens)
        attempts = 0
        retries: dict[str, int] = {}

        def transient(exc: BaseException) -> bool:
            return _classify(exc)[1]

        def before_sleep(state: Any) -> None:
            exc = state.outcome.exception()
            kind = _classify(exc)[0] if exc is not None else "error"
            retries[kind] = retries.get(kind, 0) + 1

        by_count = stop_after_attempt(max(1, self.s.max_attempts))

        def stop(state: Any) -> bool:
            return by_count(state) or (deadline is not None and time.monotonic() >= deadline)

        retrying = Retrying(
            retry=retry_if_exception(transient),
            wait=Waiter(self.s.backoff, self.s.max_backoff, self.s.max_retry_after, deadline=deadline),
            stop=stop,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if deadline is not None:
                        kwargs["timeout"] = attempt_timeout(self.s.timeout, deadline - time.monotonic())
                    attempts += 1
                    response = litellm.completion(**kwargs)
        except Exception as exc:  # noqa: BLE001 - classified and redacted
            kind, _, fatal = _classify(exc)
            if deadline is not None and time.monotonic() >= deadline - 0.01:
                kind, fatal = "deadline", False
            detail = self.redact(f"{type(exc).__name__}: {exc}")[:300]
            suffix = f" after {attempts} attempts" if attempts > 1 else ""
            raise RequestFailed(f"{kind}{suffix}: {detail}", kind=kind, fatal=fatal, attempts=attempts,
                                retries=retries) from None
        return self._reply(response, attempts, retries)

    def _reply(self, response: Any, attempts: int, retries: dict[str, int]) -> Reply:
        choice = response.choices[0]
        content = getattr(choice.message, "content", None) or ""
        logprobs = getattr(choice, "logprobs", None)
        tokens = None
        if logprobs is not None:
            tokens = logprobs.get("content") if isinstance(logprobs, dict) else getattr(logprobs, "content", None)
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = self.cost_of(prompt_tokens, completion_tokens) if usage is not None else None
        return Reply(
            content,
            list(tokens) if tokens else None,
            prompt_tokens,
            completion_tokens,
            cost,
            attempts,
            getattr(choice, "finish_reason", None),
            retries,
        )

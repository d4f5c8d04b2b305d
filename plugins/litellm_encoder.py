"""Embeddings from an API through litellm: OpenAI, Azure, Cohere, Voyage, Gemini, Ollama, any
OpenAI-compatible local server (``api_base``).  Retried with tenacity; cached by the core.

Retries are ours alone: ``max_attempts`` bounds the requests sent.  litellm's OpenAI route cannot
switch the SDK's own retries off (it turns ``max_retries=0`` into its default of 2, and sets that
on a client passed in as well), so OpenAI models and OpenAI-compatible servers are called through
the ``openai`` SDK directly with ``max_retries=0``; every other provider goes through
``litellm.embedding``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from ltengine.components import Encoder, Role
from ltengine.errors import ComponentError
from ltengine.hookspecs import hookimpl

#: Model prefixes this encoder claims when no encoder is named.
PROVIDER_PREFIXES = (
    "openai/", "azure/", "cohere/", "voyage/", "gemini/", "vertex_ai/", "bedrock/", "mistral/",
    "ollama/", "huggingface/", "text-embedding-",
)
#: Longest Retry-After (seconds) honoured between attempts.
MAX_RETRY_AFTER = 60.0


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-list download at import
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def _transient_errors() -> tuple[type[BaseException], ...]:
    """429, 5xx, timeouts and connection errors of the openai SDK and of litellm (its subclasses)."""
    import openai

    litellm = _litellm()
    return (
        openai.RateLimitError, openai.APIConnectionError, openai.InternalServerError,
        litellm.ServiceUnavailableError, litellm.InternalServerError, litellm.Timeout,
    )


def _retry_after(exc: BaseException | None) -> float:
    """Seconds asked for by a failed response's ``retry-after-ms`` / ``Retry-After`` header (0 if none)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            seconds = float(headers.get(name) or 0) * scale
        except (TypeError, ValueError):  # an HTTP date: use the backoff instead
            continue
        if seconds > 0:
            return min(seconds, MAX_RETRY_AFTER)
    return 0.0


class LiteLLMEncoder(Encoder):
    """Embed through any litellm embedding model, e.g. ``openai/text-embedding-3-small``."""

    name = "litellm"
    aliases = ("openai", "api")
    default_model = "openai/text-embedding-3-small"
    #: Providers differ; the core normalises the vectors.
    normalized = False

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: Server URL, e.g. "http://127.0.0.1:8000/v1" for a local OpenAI-compatible server.
        api_base: str | None = None
        #: Name of the environment variable holding the key (the key itself never enters the cache).
        api_key_env: str | None = None
        #: Texts per request.
        batch_size: int = 256
        #: Output dimensions for models that support shortening (text-embedding-3-*).
        dimensions: int | None = None
        timeout: float = 60.0
        #: Requests per batch at most (429, 5xx, timeouts, connection errors are retried with
        #: exponential backoff, honouring Retry-After).
        max_attempts: int = 5
        query_prefix: str = ""
        document_prefix: str = ""

    _client: Any = None
    _route: tuple[str, str] | None = None

    #: A specific claim (provider-prefixed ids such as "openai/..."): asked before the catch-all
    #: sentence-transformers encoder (-100), which would take any id with a "/".
    priority = 10

    @classmethod
    def accepts(cls, model: str) -> bool:
        """Model strings with a provider prefix (``openai/``, ``cohere/``, ...)."""
        return model.startswith(PROVIDER_PREFIXES)

    @property
    def cache_id(self) -> str:
        opts = dataclasses.replace(self.options, api_key_env=None, timeout=0.0, max_attempts=0)
        return f"{self.name}|{self.model}|{opts!r}"

    @property
    def dimension(self) -> int:
        return int(self.encode(["dimension probe"], role="document").shape[1])

    # -- routing ----------------------------------------------------------------------------
    def _provider(self) -> tuple[str, str]:
        """(litellm provider, the provider's model name), e.g. ("openai", "text-embedding-3-small")."""
        if self._route is None:
            try:
                model, provider, _, _ = _litellm().get_llm_provider(model=self.model, api_base=self.options.api_base)
            except Exception as exc:  # noqa: BLE001 - litellm raises BadRequestError for unknown providers
                raise ComponentError(
                    f"litellm does not know the embedding model {self.model!r}: {str(exc)[:200]} "
                    "Use 'provider/model', e.g. 'openai/text-embedding-3-small' or 'cohere/embed-multilingual-v3.0'."
                ) from None
            self._route = (provider, model)
        return self._route

    def _api_key(self) -> str | None:
        env = self.options.api_key_env
        if not env:
            return None
        key = os.environ.get(env)
        if not key:
            raise ComponentError(f"environment variable {env!r} (api_key_env) is not set; export the API key there")
        return key

    def _openai_client(self) -> Any:
        """An ``openai.OpenAI`` client with the SDK's retries off (one per encoder, reused)."""
        if self._client is None:
            import openai

            key = self._api_key() or os.environ.get("OPENAI_API_KEY")
            if not key:
                if not self.options.api_base:
                    raise ComponentError(
                        f"no API key for {self.model!r}: set OPENAI_API_KEY, or name the variable holding the key "
                        "with encoder_options={'api_key_env': 'MY_KEY_VAR'}"
                    )
                key = "no-key"  # local OpenAI-compatible servers (llama.cpp, vLLM, Ollama) need none
            base = self.options.api_base or os.environ.get("OPENAI_API_BASE") or None  # None: OPENAI_BASE_URL/default
            self._client = openai.OpenAI(api_key=key, base_url=base, timeout=self.options.timeout, max_retries=0)
        return self._client

    # -- requests ---------------------------------------------------------------------------
    def _send(self, batch: list[str]) -> list[list[float]]:
        """One request, no retry."""
        provider, model = self._provider()
        if provider == "openai":
            extra: dict[str, Any] = {"dimensions": self.options.dimensions} if self.options.dimensions else {}
            response = self._openai_client().embeddings.create(
                model=model, input=batch, encoding_format="float", **extra
            )
            return [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        kwargs: dict[str, Any] = {
            "model": self.model, "input": batch, "timeout": self.options.timeout, "max_retries": 0, "num_retries": 0,
        }
        if self.options.api_base:
            kwargs["api_base"] = self.options.api_base
        key = self._api_key()
        if key:
            kwargs["api_key"] = key
        if self.options.dimensions:
            kwargs["dimensions"] = self.options.dimensions
        response = _litellm().embedding(**kwargs)
        return [item["embedding"] for item in sorted(response.data, key=lambda item: item["index"])]

    def _request(self, batch: list[str]) -> list[list[float]]:
        """``_send`` with at most ``max_attempts`` requests; a clear error (without the key) after that."""
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

        backoff = wait_random_exponential(multiplier=0.5, max=30)

        def wait(state: Any) -> float:
            return max(backoff(state), _retry_after(state.outcome.exception() if state.outcome else None))

        retrying = Retrying(
            retry=retry_if_exception_type(_transient_errors()),
            wait=wait,
            stop=stop_after_attempt(max(1, self.options.max_attempts)),
            reraise=True,
        )
        try:
            return retrying(self._send, batch)
        except ComponentError:
            raise
        except Exception as exc:  # noqa: BLE001 - any provider error becomes one clear ComponentError
            attempts = retrying.statistics.get("attempt_number", 1)
            message = self._redact(f"{type(exc).__name__}: {str(exc)[:300]}")
            raise ComponentError(
                f"embedding request to {self.model!r} failed after {attempts} attempt{'s' * (attempts != 1)}: {message}"
            ) from None

    def _redact(self, text: str) -> str:
        """``text`` with any API key this encoder may have sent replaced by ``***``."""
        env_names = [self.options.api_key_env, "OPENAI_API_KEY"]
        for key in {os.environ.get(name) for name in env_names if name} - {None, ""}:
            text = text.replace(key, "***")  # type: ignore[arg-type]
        return text

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        prefix = self.options.query_prefix if role == "query" else self.options.document_prefix
        rows: list[list[float]] = []
        size = self.options.batch_size
        for start in range(0, len(texts), size):
            rows.extend(self._request([prefix + t for t in texts[start : start + size]]))
        return np.asarray(rows, dtype=np.float32)


@hookimpl
def register_encoders(register):
    register(LiteLLMEncoder)

"""Embeddings from an API through litellm: OpenAI, Azure, Cohere, Voyage, Gemini, Ollama, any
OpenAI-compatible local server (``api_base``).  Retried with tenacity; cached by the core."""

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
        #: Attempts per request (429, 5xx, timeouts, connection errors), exponential backoff.
        max_attempts: int = 5
        query_prefix: str = ""
        document_prefix: str = ""

    @classmethod
    def accepts(cls, model: str) -> bool:
        return model.startswith(PROVIDER_PREFIXES)

    @property
    def cache_id(self) -> str:
        opts = dataclasses.replace(self.options, api_key_env=None, timeout=0.0, max_attempts=0)
        return f"{self.name}|{self.model}|{opts!r}"

    @property
    def dimension(self) -> int:
        return int(self.encode(["dimension probe"], role="document").shape[1])

    def _request(self, batch: list[str]) -> list[list[float]]:
        import litellm
        from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

        transient = (
            litellm.RateLimitError, litellm.APIConnectionError, litellm.Timeout,
            litellm.InternalServerError, litellm.ServiceUnavailableError,
        )
        litellm.suppress_debug_info = True
        # retries are ours (tenacity); the SDK's own would multiply the attempts
        kwargs: dict[str, Any] = {
            "model": self.model, "input": batch, "timeout": self.options.timeout, "max_retries": 0, "num_retries": 0,
        }
        if self.options.api_base:
            kwargs["api_base"] = self.options.api_base
        if self.options.api_key_env:
            kwargs["api_key"] = os.environ.get(self.options.api_key_env)
        if self.options.dimensions:
            kwargs["dimensions"] = self.options.dimensions

        @retry(
            retry=retry_if_exception_type(transient),
            wait=wait_random_exponential(multiplier=0.5, max=30),
            stop=stop_after_attempt(self.options.max_attempts),
            reraise=True,
        )
        def call() -> Any:
            return litellm.embedding(**kwargs)

        try:
            response = call()
        except Exception as exc:
            raise ComponentError(
                f"embedding request to {self.model!r} failed after {self.options.max_attempts} attempts: "
                f"{type(exc).__name__}: {str(exc)[:300]}"
            ) from None
        data = sorted(response.data, key=lambda item: item["index"])
        return [item["embedding"] for item in data]

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

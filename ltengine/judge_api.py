"""``merge_k_judge``: LinkTransformer's retrieve-then-judge function, as a thin wrapper over
``merge_knn(..., rerank="llm:<model>")``.

LinkTransformer's arguments keep their names and meaning; the output has ltengine's columns
(``rerank_score``, ``is_match``, ``judge_confidence``, ``judge_error``, ...) plus LinkTransformer's
``llm_is_match`` (0/1, <NA> without a verdict) and ``llm_confidence``.  As in LinkTransformer every
candidate is judged (``cascade=False``); pass ``cascade=True`` to send only uncertain pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ltengine.api import merge_knn
from ltengine.compat import api_keys, api_model, linktransformer_arguments
from ltengine.config import Columns
from ltengine.engine.output import JUDGE_API_COLUMNS, check_clash
from ltengine.errors import LinkInputError

#: litellm provider prefixes for LinkTransformer's ``llm_provider`` values.
PROVIDER_PREFIX = {"openai": "openai/", "gemini": "gemini/"}
#: ``llm_params`` keys that are judge options (the rest go to litellm.completion).
PARAM_OPTIONS = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "request_timeout": "timeout",
    "timeout": "timeout",
}


def judge_model(judge_llm_model: str, llm_provider: str = "auto") -> str:
    """The litellm model string for LinkTransformer's (judge_llm_model, llm_provider)."""
    if llm_provider == "auto" or "/" in judge_llm_model:
        return judge_llm_model
    prefix = PROVIDER_PREFIX.get(llm_provider, f"{llm_provider}/")
    return prefix + judge_llm_model


@linktransformer_arguments
def merge_k_judge(
    df1: pd.DataFrame,
    df2: pd.DataFrame,
    on: Columns = None,
    model: str | None = None,
    left_on: Columns = None,
    right_on: Columns = None,
    k: int | None = None,
    suffixes: tuple[str, str] | None = None,
    batch_size: int | None = None,
    openai_key: str | None = None,
    gemini_key: str | None = None,
    knn_sbert_model: str | None = None,
    knn_api_model: str | None = None,
    drop_sim_threshold: float | None = None,
    judge_llm_model: str | None = None,
    llm_provider: str = "auto",
    llm_prompt: str | None = None,
    llm_params: Mapping[str, Any] | None = None,
    confidence_threshold: float | None = None,
    max_retries: int = 5,
    ratelimit_sleep_time: float | None = None,
    *,
    cascade: bool = False,
    max_cost: float | None = None,
    max_calls: int | None = None,
    rerank_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Retrieve ``k`` candidates per left row (default 3), then let an LLM judge each pair (LinkTransformer API).

    ``judge_llm_model``: any litellm model (``"gpt-4o-mini"``, ``"openai/gpt-4o-mini"``,
    ``"gemini/gemini-2.0-flash"``, ``"ollama/llama3"``); ``llm_provider`` ("auto", "openai",
    "gemini" or any litellm provider) prefixes it when it has no provider.  ``llm_prompt`` is the
    task description given to the judge (e.g. "firms; same legal entity"); ``llm_params`` may set
    ``temperature``, ``max_tokens``, ``request_timeout`` and other litellm arguments;
    ``max_retries`` bounds the attempts per request and ``ratelimit_sleep_time`` is the backoff base
    (seconds).  ``openai_key``/``gemini_key`` are put in ``OPENAI_API_KEY``/``GEMINI_API_KEY`` for
    the call only.  ``confidence_threshold`` keeps rows whose ``llm_confidence`` reaches it.
    ``batch_size`` is the embedding batch size (``encoder_options["batch_size"]``).  Further
    keyword arguments are :class:`ltengine.LinkConfig` fields; ``rerank_options`` adds judge options
    (e.g. ``{"api_base": "http://127.0.0.1:8080/v1", "batch_size": 8}``).  As everywhere, an argument
    passed wins over ``config=``, one left out takes the config's value (k: 3 without a config).
    """
    if batch_size is not None:
        options["encoder_options"] = {"batch_size": batch_size, **dict(options.get("encoder_options") or {})}
    if not isinstance(judge_llm_model, str) or not judge_llm_model.strip():
        raise LinkInputError(
            "merge_k_judge needs judge_llm_model='<litellm model>', e.g. 'openai/gpt-4o-mini'; "
            "use merge_knn for candidates without a judge"
        )
    if not isinstance(llm_provider, str) or not llm_provider:
        raise LinkInputError(
            f"llm_provider must be 'auto', 'openai', 'gemini' or a litellm provider; got {llm_provider!r}"
        )
    for side, frame in (("left", df1), ("right", df2)):  # before any request: never overwrite a user column
        if isinstance(frame, pd.DataFrame):
            check_clash(frame.columns, JUDGE_API_COLUMNS, side, "merge_k_judge")
    if confidence_threshold is not None and not 0.0 <= float(confidence_threshold) <= 1.0:
        raise LinkInputError(f"confidence_threshold must be between 0 and 1; got {confidence_threshold!r}")
    judge: dict[str, Any] = {"cascade": cascade, "max_attempts": max(1, int(max_retries))}
    if ratelimit_sleep_time is not None:
        judge["backoff"] = float(ratelimit_sleep_time)
    if llm_prompt:
        judge["task"] = llm_prompt
    extra: dict[str, Any] = {}
    for key, value in dict(llm_params or {}).items():
        if key in PARAM_OPTIONS:
            judge[PARAM_OPTIONS[key]] = value
        else:
            extra[key] = value
    if extra:
        judge["litellm_params"] = extra
    if max_cost is not None:
        judge["max_cost"] = max_cost
    if max_calls is not None:
        judge["max_calls"] = max_calls
    judge.update(dict(rerank_options or {}))
    retrieval_model = api_model(knn_sbert_model or knn_api_model or model)
    if k is None and options.get("config") is None:
        k = 3  # LinkTransformer's default; with a config, its k (LinkConfig.resolve's rule)
    with api_keys({"OPENAI_API_KEY": openai_key, "GEMINI_API_KEY": gemini_key}):
        out = merge_knn(
            df1,
            df2,
            on=on,
            left_on=left_on,
            right_on=right_on,
            model=retrieval_model,
            k=k,
            threshold=drop_sim_threshold,
            suffixes=suffixes,
            rerank=f"llm:{judge_model(judge_llm_model.strip(), llm_provider)}",
            rerank_options=judge,
            **options,
        )
    out["llm_is_match"] = pd.array(out["is_match"], dtype="boolean").astype("Int64")
    out["llm_confidence"] = out["judge_confidence"]
    if confidence_threshold is not None:
        out = out[out["llm_confidence"] >= float(confidence_threshold)].reset_index(drop=True)
    return out


def merge_knn_with_llm(df1: pd.DataFrame, df2: pd.DataFrame, *args: Any, **kwargs: Any) -> pd.DataFrame:
    """LinkTransformer's older name of :func:`merge_k_judge` (same arguments)."""
    return merge_k_judge(df1, df2, *args, **kwargs)


def merge_knn_openai(df1: pd.DataFrame, df2: pd.DataFrame, *args: Any, llm_provider: str = "openai",
                     **kwargs: Any) -> pd.DataFrame:
    """LinkTransformer's older name of :func:`merge_k_judge` with ``llm_provider="openai"``."""
    return merge_k_judge(df1, df2, *args, llm_provider=llm_provider, **kwargs)

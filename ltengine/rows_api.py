"""Row tasks with LinkTransformer's names: :func:`classify_rows` and :func:`transform_rows`.

``classify_rows`` runs one of three classifiers: an LLM (``model="llm:<litellm model>"``, or
LinkTransformer's ``openai_key=`` with a model name), a trained classifier folder
(:func:`ltengine.train_clf_model`, or a transformers sequence classifier), or zero-shot with any
ltengine encoder (each row goes to the label whose description embeds closest).  ``transform_rows``
asks an LLM for one rewritten value per row.  The LLM parts are the judge's machinery (the ``llm``
reranker of the plugin registry: batching with ids, strict answer checks, disk cache, retries,
budget; see :mod:`ltengine_plugins.llm_judge.rows`).  The input frame is never changed: a copy with
the new column(s) comes back, rows in their order.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ltengine.compat import api_keys
from ltengine.errors import ColumnError, LinkInputError, LinkWarning
from ltengine.learn.classifier import embed_texts, is_classifier_folder, load_classifier, row_texts

#: LinkTransformer ``openai_params`` keys that are judge options (the rest go to litellm.completion).
PARAM_OPTIONS = {"temperature": "temperature", "max_tokens": "max_tokens", "request_timeout": "timeout",
                 "timeout": "timeout", "max_retries": "max_attempts", "ratelimit_sleep_time": "backoff"}
#: Rows per LLM request unless ``llm_options`` say otherwise.
DEFAULT_ROWS_PER_REQUEST = 10


def _columns(df: Any, on: Any) -> tuple[list[str], str]:
    if on is None or (not isinstance(on, str) and not list(on)):
        raise LinkInputError("on= is required: the column (or list of columns) holding each row's text")
    columns = [on] if isinstance(on, str) else [str(c) for c in on]
    row_texts(df.head(0), columns)  # checks the frame and the columns (closest name on a typo)
    return columns, on if isinstance(on, str) else "-".join(columns)


def _new_columns(df: pd.DataFrame, names: Sequence[str], function: str) -> None:
    for name in names:
        if name in df.columns:
            raise ColumnError(f"{function} would overwrite column {name!r}; rename it or pass output_column=")


def _records(df: pd.DataFrame, columns: list[str], texts: list[str]) -> list[str | None]:
    """Each row's record as JSON for the LLM (None for an empty row: nothing to send)."""
    import json

    out: list[str | None] = []
    for row, text in zip(df[columns].itertuples(index=False, name=None), texts):
        if not text:
            out.append(None)
            continue
        values = {}
        for col, value in zip(columns, row):
            if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
                values[col] = None
            elif isinstance(value, np.generic):
                values[col] = value.item()
            elif isinstance(value, (str, int, float, bool)):
                values[col] = value
            else:
                values[col] = str(value)
        out.append(json.dumps(values, ensure_ascii=False))
    return out


def _llm_options(openai_params: Mapping[str, Any] | None, llm_options: Mapping[str, Any] | None,
                 rows_per_request: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {"batch_size": rows_per_request or DEFAULT_ROWS_PER_REQUEST, "logprobs": False}
    extra: dict[str, Any] = {}
    for key, value in dict(openai_params or {}).items():
        if key in PARAM_OPTIONS:
            options[PARAM_OPTIONS[key]] = value
        else:
            extra[key] = value
    if extra:
        options["litellm_params"] = extra
    options.update(dict(llm_options or {}))
    return options


def run_llm_task(kind: str, records: list[str | None], model: str, *, labels: Any = None, instruction: str | None = None,
                 options: Mapping[str, Any], max_cost: float | None = None, max_calls: int | None = None,
                 dry_run: bool = False, progress: bool | None = None, cache: bool = True,
                 cache_dir: str | None = None) -> tuple[list[dict | None], list[str | None], dict[str, Any]]:
    """Answer the non-empty ``records`` with the registry's ``llm`` reranker's row task; (answers, errors, report)."""
    from ltengine.config import LinkConfig
    from ltengine.engine.rerank.budget import Budget, RerankRun
    from ltengine.plugins import get_host
    from ltengine.run import RunContext

    config = LinkConfig.resolve(None, progress=progress, cache=cache, cache_dir=cache_dir)
    host = get_host()
    judge = host.registry.get("reranker", "llm").create(model=model, options=dict(options))
    task = judge.row_task(kind, labels, instruction)
    budget = Budget(max_cost, max_calls)
    report: dict[str, Any] = {}
    run = RerankRun(RunContext(config, host), budget, bool(dry_run), report)
    filled = [i for i, r in enumerate(records) if r is not None]
    answers, errors, report = task.run([records[i] for i in filled], run)
    out: list[dict | None] = [None] * len(records)
    errs: list[str | None] = ["empty record"] * len(records)
    for i, answer, error in zip(filled, answers, errors):
        out[i], errs[i] = answer, error
    report["budget"] = budget.as_dict()
    missing = sum(e is not None and e != "empty record" for e in errs)
    if missing and not dry_run:
        warnings.warn(f"{kind}_rows: {missing} of {len(records)} rows got no answer (see the error column); "
                      "what was answered is cached: rerun to ask only for the rest", LinkWarning, stacklevel=3)
    return out, errs, report


def _label_setup(labels: Any, label_map: Mapping[str, Any] | None, num_labels: int | None,
                 openai_topic: str | None, instruction: str | None) -> tuple[Any, dict | None, str | None]:
    """(labels for the model, label -> output value map or None, instruction)."""
    if labels is None and label_map is not None:
        labels = list(label_map)
    if labels is None and openai_topic is not None:
        labels, label_map = ["Yes", "No"], dict(label_map or {"Yes": 1, "No": 0})
    if labels is None and instruction is not None:
        warnings.warn("classify_rows: a custom prompt with the default Yes/No labels (LinkTransformer's default); "
                      "pass labels= or label_map=", LinkWarning, stacklevel=3)
        labels, label_map = ["Yes", "No"], {"Yes": 1, "No": 0}
    if openai_topic is not None and instruction is None:
        instruction = f"Is the text about {openai_topic}? Answer Yes or No."
    if labels is not None:
        n = len(labels)
        if num_labels is not None and n != num_labels:
            raise LinkInputError(f"num_labels={num_labels} but {n} labels were given ({list(labels)!r})")
        if label_map is not None:
            unmapped = [str(k) for k in labels if k not in label_map]
            if unmapped:
                raise LinkInputError(f"labels {unmapped!r} are not keys of label_map {dict(label_map)!r}")
    return labels, (dict(label_map) if label_map is not None else None), instruction


def _output(values: list[Any], label_map: Mapping[str, Any] | None) -> pd.Series | pd.api.extensions.ExtensionArray:
    mapped = [pd.NA if v is None else (label_map[v] if label_map is not None else v) for v in values]
    known = [v for v in mapped if v is not pd.NA]
    if known and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in known):
        return pd.array(mapped, dtype="Int64")
    return pd.array(mapped, dtype=object)


def classify_rows(
    df: pd.DataFrame,
    on: str | Sequence[str] | None = None,
    model: str | None = None,
    num_labels: int | None = None,
    label_map: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    openai_key: str | None = None,
    openai_topic: str | None = None,
    openai_prompt: str | None = None,
    openai_params: Mapping[str, Any] | None = None,
    progress_bar: bool | None = None,
    *,
    labels: Sequence[str] | Mapping[str, str] | None = None,
    instruction: str | None = None,
    output_column: str | None = None,
    gemini_key: str | None = None,
    llm_options: Mapping[str, Any] | None = None,
    max_cost: float | None = None,
    max_calls: int | None = None,
    dry_run: bool = False,
    cache: bool = True,
    cache_dir: str | None = None,
) -> pd.DataFrame:
    """Give each row one label, in a new column ``clf_preds_<on>`` (``clf_preds_a-b`` for several columns).

    ``model``: ``"llm:<litellm model>"`` (or a model name with ``openai_key``/``gemini_key``, used for
    this call only); a classifier folder from :func:`ltengine.train_clf_model`; else an encoder
    (``"fast"``, ``"accurate"``, a sentence-transformers model) for zero-shot classification.
    ``labels``: label names, or a dict name -> description (what the LLM and the zero-shot encoder
    read); ``label_map`` (LinkTransformer) maps label names to the output values (e.g.
    ``{"Protest": 1, "Riot": 2, "Neither": 0}``), and its keys are the labels when ``labels`` is not
    given.  ``openai_topic`` asks Yes/No ("is the text about <topic>?") with output 1/0;
    ``instruction`` (``openai_prompt``) is the task text.  The LLM path also adds
    ``<output column>_error`` (``<NA>`` prediction and the reason for rows without a verified answer:
    "budget", "malformed answer", "request failed: ...", "empty record"); ``llm_options`` are the
    judge's options (``api_base``, ``batch_size`` rows per request, ``concurrency``, ...),
    ``max_cost``/``max_calls`` cap spending, answers are cached on disk (``cache_dir``).
    """
    columns, key = _columns(df, on)
    out_col = output_column or f"clf_preds_{key}"
    instruction = instruction or openai_prompt
    llm_model = model[4:] if isinstance(model, str) and model.startswith("llm:") else None
    if llm_model is None and (openai_key or gemini_key):
        llm_model = model or "gpt-4o-mini"
    if model is None and llm_model is None:
        raise LinkInputError("classify_rows needs model=: 'llm:<litellm model>', a classifier folder "
                             "(lt.train_clf_model) or an encoder with labels= for zero-shot")
    texts = row_texts(df, columns)
    result = df.copy()
    if llm_model is not None:
        labels, label_map, instruction = _label_setup(labels, label_map, num_labels, openai_topic, instruction)
        if labels is None:
            raise LinkInputError("classify_rows with an LLM needs labels=, label_map= or openai_topic=")
        _new_columns(df, [out_col, f"{out_col}_error"], "classify_rows")
        options = _llm_options(openai_params, llm_options, None)
        with api_keys({"OPENAI_API_KEY": openai_key, "GEMINI_API_KEY": gemini_key}):
            answers, errors, report = run_llm_task(
                "classify", _records(df, columns, texts), llm_model, labels=labels, instruction=instruction,
                options=options, max_cost=max_cost, max_calls=max_calls, dry_run=dry_run, progress=progress_bar,
                cache=cache, cache_dir=cache_dir)
        result[out_col] = _output([None if a is None else a["label"] for a in answers], label_map)
        result[f"{out_col}_error"] = pd.array(errors, dtype=object)
        result.attrs["ltengine"] = {"classify_rows": report}
        return result
    _new_columns(df, [out_col], "classify_rows")
    filled = np.array([bool(t) for t in texts])
    if is_classifier_folder(model):
        clf = load_classifier(model)  # type: ignore[arg-type]
        names = clf.labels
        if num_labels is not None and len(names) != num_labels:
            raise LinkInputError(f"num_labels={num_labels} but the classifier in {model!r} has {len(names)} labels")
        proba = clf.predict_proba(texts, progress=progress_bar, batch_size=batch_size or 32)
        how = {"method": clf.meta["method"], "model": str(model)}
    else:
        labels, label_map, _ = _label_setup(labels, label_map, num_labels, None, None)
        if labels is None:
            raise LinkInputError(f"{model!r} is not a classifier folder; for zero-shot classification with this "
                                 "encoder pass labels= (names, or a dict name -> description)")
        names = list(labels)
        descriptions = [str(labels[n]) if isinstance(labels, Mapping) and labels[n] else str(n) for n in names]
        vectors = embed_texts(list(texts) + descriptions, model, progress=progress_bar, cache=cache, cache_dir=cache_dir)
        proba = vectors[: len(texts)] @ vectors[len(texts):].T
        how = {"method": "zero-shot", "model": str(model)}
    picks = [names[int(i)] if ok else None for i, ok in zip(np.asarray(proba).argmax(axis=1), filled)]
    if label_map is not None:
        picks = [None if p is None else label_map.get(p, p) for p in picks]
    result[out_col] = _output(picks, None)
    result.attrs["ltengine"] = {"classify_rows": {**how, "rows": len(df), "empty_rows": int((~filled).sum())}}
    return result


def transform_rows(
    df: pd.DataFrame,
    on: str | Sequence[str] | None = None,
    *,
    openai_key: str | None = None,
    model: str = "gpt-4o",
    openai_prompt: str | None = None,
    openai_params: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    output_column: str | None = None,
    progress_bar: bool | None = None,
    instruction: str | None = None,
    gemini_key: str | None = None,
    llm_options: Mapping[str, Any] | None = None,
    max_cost: float | None = None,
    max_calls: int | None = None,
    dry_run: bool = False,
    cache: bool = True,
    cache_dir: str | None = None,
) -> pd.DataFrame:
    """One LLM-rewritten value per row in a new column ``transformed_<on>`` (``output_column``);
    the input column is never overwritten, and ``<output column>_error`` says why a row has ``<NA>``.

    ``model``: a litellm model (``"llm:"`` prefix optional); ``instruction`` (``openai_prompt``):
    what to do, default LinkTransformer's "Fix spelling mistakes in each of the following strings.";
    ``batch_size``: rows per request (LinkTransformer's meaning); identical rows are sent once, and
    answers are cached on disk, so a rerun makes no request.  Other arguments as in :func:`classify_rows`.
    """
    columns, key = _columns(df, on)
    out_col = output_column or f"transformed_{key}"
    _new_columns(df, [out_col, f"{out_col}_error"], "transform_rows")
    if not isinstance(model, str) or not model.strip():
        raise LinkInputError("transform_rows needs model='llm:<litellm model>', e.g. 'llm:openai/gpt-4o-mini'")
    llm_model = model.removeprefix("llm:")
    text = instruction or openai_prompt or "Fix spelling mistakes in each of the following strings."
    texts = row_texts(df, columns)
    options = _llm_options(openai_params, llm_options, batch_size)
    with api_keys({"OPENAI_API_KEY": openai_key, "GEMINI_API_KEY": gemini_key}):
        answers, errors, report = run_llm_task(
            "transform", _records(df, columns, texts), llm_model, instruction=text, options=options,
            max_cost=max_cost, max_calls=max_calls, dry_run=dry_run, progress=progress_bar, cache=cache,
            cache_dir=cache_dir)
    result = df.copy()
    result[out_col] = pd.array([pd.NA if a is None else a["value"] for a in answers], dtype=object)
    result[f"{out_col}_error"] = pd.array(errors, dtype=object)
    result.attrs["ltengine"] = {"transform_rows": report}
    return result

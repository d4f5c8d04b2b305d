"""The core implementation of ``run_stage``: dispatch a stage to its component (trylast)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ltengine.hookspecs import hookimpl

if TYPE_CHECKING:
    from ltengine.run import RunContext

STAGES = ("block", "encode", "build", "search", "rerank")


@hookimpl(trylast=True)
def run_stage(stage: str, component: Any, payload: dict[str, Any], context: RunContext) -> Any:
    """Call the component method that implements ``stage`` with ``payload``."""
    if stage == "block":
        return component.keys(payload["records"])
    if stage == "encode":
        return component.encode(payload["texts"], role=payload["role"])
    if stage == "build":
        component.build(payload["vectors"], payload["ids"])
        return True  # non-None so firstresult stops here
    if stage == "search":
        if payload.get("threshold") is not None:
            return component.search_range(payload["vectors"], payload["ids"], payload["threshold"])
        return component.search(payload["vectors"], payload["ids"], payload["k"])
    if stage == "rerank":
        return component.score(payload["pairs"], payload["left"], payload["right"])
    raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")

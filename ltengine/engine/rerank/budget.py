"""The spending caps of a rerank run (:class:`Budget`) and what a reranker's ``attach`` receives
(:class:`RerankRun`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ltengine.config import LinkConfig
    from ltengine.run import RunContext


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

"""The run context: what the stages of one link run share (config, plugin host, timings, report).

Every stage goes through :meth:`RunContext.run`, which calls the ``run_stage`` hook (so a plugin can
wrap any stage to time, trace or cache it); :meth:`RunContext.cache` is the one place a run asks the
``make_cache`` hook for a disk cache.  Hooks receive this object as ``context``.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from ltengine.cache import Cache, NullCache
from ltengine.config import LinkConfig

if TYPE_CHECKING:
    from ltengine.registry import Registry


class StageHost(Protocol):
    """What a run needs of the plugin host (:class:`ltengine.plugins.PluginHost`): hooks and components."""

    @property
    def hook(self) -> Any: ...

    @property
    def registry(self) -> Registry: ...


_TIMINGS_LOCK = threading.Lock()


@dataclasses.dataclass
class RunContext:
    """State shared by the stages of one run: config, plugin host, timings and a report."""

    config: LinkConfig
    host: StageHost
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    report: dict[str, Any] = dataclasses.field(default_factory=dict)

    def run(self, stage: str, component: Any, **payload: Any) -> Any:
        """Run ``stage`` through the ``run_stage`` hook (so plugins can wrap it) and time it."""
        start = time.perf_counter()
        result = self.host.hook.run_stage(stage=stage, component=component, payload=payload, context=self)
        with _TIMINGS_LOCK:  # stages may run on two threads at once (hybrid: both searches)
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start
        return result

    def create(self, kind: Any, name: str, **kwargs: Any) -> Any:
        """An instance of the registered component ``name`` of ``kind``."""
        return self.host.registry.get(kind, name).create(**kwargs)

    def cache(self, namespace: str) -> Cache:
        """The disk cache for ``namespace`` (``make_cache`` hook), or a :class:`NullCache` when caching is off."""
        config = self.config
        cache = self.host.hook.make_cache(namespace=namespace, config=config) if config.cache else None
        return NullCache() if cache is None else cache  # (a cache may define __len__: no truthiness test)

    def fork(self) -> RunContext:
        """A new context for one call, starting from (deep copies of) this one's report and timings."""
        return RunContext(self.config, self.host, dict(self.timings), copy.deepcopy(self.report))

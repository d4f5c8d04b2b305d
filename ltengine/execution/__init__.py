"""Execution backends: where a link run's stages execute (``LinkConfig.executor``).

``"local"`` (the default): this process, the plain :class:`ltengine.Linker`; Ray is never imported.
``"ray"``: :class:`ltengine.execution.ray_linker.RayLinker`, encoding with Ray Data actor pools and
searching a right-hand index sharded over Ray actors (``executor_options``:
:class:`ltengine.execution.ray_session.RayOptions`).  The execution layer sits between the pandas API
above and the engine below.
"""

from __future__ import annotations

from typing import Any

from ltengine.config import LinkConfig
from ltengine.engine.linker import Linker


def create_linker(config: LinkConfig, *, host: Any = None) -> Linker:
    """A Linker for ``config`` on its executor (``config.executor``)."""
    if config.executor == "ray":
        from ltengine.execution.ray_linker import RayLinker

        return RayLinker(config, host=host)
    return Linker(config, host=host)

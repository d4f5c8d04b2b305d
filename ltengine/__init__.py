"""ltengine: link tables whose keys don't match, with transformer models.

    import ltengine as lt
    matched = lt.merge(left, right, on="name")
"""

from __future__ import annotations

from ._version import __version__
from .api import merge, merge_blocking, merge_knn, merge_range
from .components import Blocker, Encoder, Reranker, Retriever
from .config import LinkConfig
from .errors import (
    ColumnError,
    ComponentError,
    ConfigError,
    DuplicateComponentError,
    FileFormatError,
    LinkInputError,
    LTEngineError,
    ModelUnavailableError,
    PluginError,
    UnknownComponentError,
)
from .hookspecs import hookimpl
from .judge_api import merge_k_judge
from .linker import Linker, LinkWarning
from .plugins import PluginLoadWarning, get_host

__all__ = [
    "__version__",
    "merge",
    "merge_knn",
    "merge_range",
    "merge_blocking",
    "merge_k_judge",
    "Linker",
    "LinkConfig",
    "Blocker",
    "Encoder",
    "Retriever",
    "Reranker",
    "hookimpl",
    "get_host",
    "LinkWarning",
    "PluginLoadWarning",
    "LTEngineError",
    "LinkInputError",
    "ColumnError",
    "FileFormatError",
    "ConfigError",
    "ComponentError",
    "UnknownComponentError",
    "DuplicateComponentError",
    "ModelUnavailableError",
    "PluginError",
]

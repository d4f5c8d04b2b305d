"""ltengine: link tables whose keys don't match, with transformer models.

    import ltengine as lt
    matched = lt.merge(left, right, on="name")
"""

from __future__ import annotations

from ._version import __version__
from .aggregate import aggregate_rows
from .api import merge, merge_blocking, merge_knn, merge_range
from .cluster import cluster_rows, dedup_rows
from .components import Blocker, Encoder, Fuser, Reranker, Retriever
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
from .evaluate import ThresholdSuggestion, all_pair_combos_evaluate, evaluate, evaluate_pairs, suggest_threshold
from .fusion import fit_fusion
from .hookspecs import hookimpl
from .judge_api import merge_k_judge
from .linker import Linker, LinkWarning
from .names import normalize_name, normalize_names
from .plugins import PluginLoadWarning, get_host

__all__ = [
    "__version__",
    "merge",
    "merge_knn",
    "merge_range",
    "merge_blocking",
    "merge_k_judge",
    "cluster_rows",
    "dedup_rows",
    "aggregate_rows",
    "evaluate_pairs",
    "all_pair_combos_evaluate",
    "evaluate",
    "suggest_threshold",
    "ThresholdSuggestion",
    "Linker",
    "LinkConfig",
    "Blocker",
    "Encoder",
    "Retriever",
    "Reranker",
    "Fuser",
    "fit_fusion",
    "normalize_name",
    "normalize_names",
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

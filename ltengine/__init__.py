"""ltengine: link tables whose keys don't match, with transformer models.

    import ltengine as lt
    matched = lt.merge(left, right, on="name")
"""

from __future__ import annotations

from ltengine._version import __version__
from ltengine.api import aggregate_rows, merge, merge_blocking, merge_knn, merge_range
from ltengine.components import Blocker, Encoder, Fuser, Reranker, Retriever
from ltengine.config import LinkConfig
from ltengine.dedup.cluster import cluster_rows, dedup_rows
from ltengine.dedup.incremental import update_clusters
from ltengine.engine.fusion import fit_fusion
from ltengine.engine.linker import Linker
from ltengine.errors import (
    CacheWarning,
    ColumnError,
    ComponentError,
    ConfigError,
    DuplicateComponentError,
    FileFormatError,
    LinkInputError,
    LinkWarning,
    LTEngineError,
    ModelUnavailableError,
    PluginError,
    PluginLoadWarning,
    PluginSettingWarning,
    UnknownComponentError,
)
from ltengine.evaluate import ThresholdSuggestion, all_pair_combos_evaluate, evaluate, evaluate_pairs, suggest_threshold
from ltengine.evaluate.explain import explain
from ltengine.evaluate.plots import plot_scores
from ltengine.hookspecs import hookimpl
from ltengine.judge_api import merge_k_judge, merge_knn_openai, merge_knn_with_llm
from ltengine.lexical.names import normalize_name, normalize_names
from ltengine.learn.adapter import train_adapter
from ltengine.learn.labelling import label_pairs
from ltengine.learn.classifier import train_clf_model
from ltengine.learn.distil import distil_judge
from ltengine.learn.reranker import train_reranker
from ltengine.learn.train_model import train_model
from ltengine.plugins import get_host
from ltengine.rows_api import classify_rows, transform_rows

__all__ = [
    "__version__",
    "merge",
    "merge_knn",
    "merge_range",
    "merge_blocking",
    "merge_k_judge",
    "merge_knn_with_llm",
    "merge_knn_openai",
    "cluster_rows",
    "update_clusters",
    "dedup_rows",
    "aggregate_rows",
    "classify_rows",
    "transform_rows",
    "train_clf_model",
    "evaluate_pairs",
    "all_pair_combos_evaluate",
    "evaluate",
    "suggest_threshold",
    "ThresholdSuggestion",
    "explain",
    "plot_scores",
    "Linker",
    "LinkConfig",
    "Blocker",
    "Encoder",
    "Retriever",
    "Reranker",
    "Fuser",
    "fit_fusion",
    "train_adapter",
    "train_reranker",
    "train_model",
    "distil_judge",
    "label_pairs",
    "normalize_name",
    "normalize_names",
    "hookimpl",
    "get_host",
    "LinkWarning",
    "PluginLoadWarning",
    "PluginSettingWarning",
    "CacheWarning",
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

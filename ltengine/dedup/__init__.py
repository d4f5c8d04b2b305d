"""Deduplication and clustering of one table: :func:`cluster_rows` and :func:`dedup_rows`.

Layers: :mod:`~ltengine.dedup.cluster` (the public functions) > :mod:`~ltengine.dedup.graph` (the sparse kNN
graph, built with the Linker) | :mod:`~ltengine.dedup.linkage` (connected components, average linkage,
HDBSCAN on a graph).
"""

from ltengine.dedup.cluster import cluster_rows, dedup_rows

__all__ = ["cluster_rows", "dedup_rows"]

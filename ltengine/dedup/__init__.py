"""Deduplication and clustering of one table: :func:`cluster_rows` and :func:`dedup_rows`.

Layers: :mod:`~ltengine.dedup.cluster` (the public functions) > :mod:`~ltengine.dedup.graph` (the sparse kNN
graph, built with the Linker) | :mod:`~ltengine.dedup.linkage` (connected components, average linkage,
HDBSCAN on a graph); :mod:`~ltengine.dedup.incremental` (:func:`update_clusters`, new rows into existing
clusters) sits above them.
"""

from ltengine.dedup.cluster import cluster_rows, dedup_rows
from ltengine.dedup.incremental import update_clusters

__all__ = ["cluster_rows", "dedup_rows", "update_clusters"]

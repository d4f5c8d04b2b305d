"""Deduplication and clustering of one table: :func:`cluster_rows` and :func:`dedup_rows`."""

from ltengine.dedup.cluster import cluster_rows, dedup_rows

__all__ = ["cluster_rows", "dedup_rows"]

"""The Ray session of a run: ``executor_options`` validated, ``ray.init`` (local by default, or a cluster
``address``), and remote errors turned back into the error that was raised remotely."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ltengine.components import build_options
from ltengine.errors import ConfigError, LTEngineError, ModelUnavailableError


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """``LinkConfig.executor_options`` when ``executor="ray"``."""

    #: None: start (or join) a local Ray in this process; ``"ray://host:10001"`` or ``"auto"``: a cluster.
    address: str | None = None
    #: CPUs of the local Ray started here (None: all of this machine's); ignored with ``address``.
    num_cpus: int | None = None
    #: GPUs of the local Ray started here (None: those Ray detects).
    num_gpus: int | None = None
    #: Encoding actors (each loads the model once); Ray Data's ``map_batches`` actor pool size.
    encode_actors: int = 2
    #: CPUs reserved per encoding actor (Ray gives the actor as many OpenMP threads, and the encoder follows
    #: them); None: each node's CPUs shared among the encoding actors placed on it (:func:`node_share`).
    encode_cpus: float | None = None
    #: GPUs per encoding actor; None: 1 when the cluster has GPUs, else 0.
    encode_gpus: float | None = None
    #: Index shards: actors holding one FAISS index each (per block when blocking).
    shards: int = 2
    #: CPUs reserved per shard actor (0: they never keep the encoding actors from starting).
    shard_cpus: float = 0.0
    #: OpenMP threads per shard actor (FAISS build and search); None: each node's CPUs shared among the
    #: shards placed on it.  (Ray gives an actor one OpenMP thread by default.)
    shard_threads: int | None = None
    #: Reranking actors for rerankers that score each pair on its own (the cross-encoder); each loads
    #: the model once.
    rerank_actors: int = 2
    #: Candidate pairs per reranking batch.
    rerank_batch_size: int = 512
    #: CPUs reserved per reranking actor.
    rerank_cpus: float = 1.0
    #: GPUs per reranking actor; None: 1 when the cluster has GPUs, else 0.
    rerank_gpus: float | None = None
    #: CPUs reserved per request task of a reranker that calls an LLM (0: they wait on the service).
    request_cpus: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("encode_actors", self.encode_actors),
                            ("shards", self.shards), ("rerank_actors", self.rerank_actors),
                            ("rerank_batch_size", self.rerank_batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"executor_options {name} must be a positive integer; got {value!r}")
        for name, value in (("encode_cpus", self.encode_cpus), ("shard_cpus", self.shard_cpus),
                            ("rerank_cpus", self.rerank_cpus), ("request_cpus", self.request_cpus)):
            if name == "encode_cpus" and value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"executor_options {name} must be a number >= 0; got {value!r}")
        if self.shard_threads is not None and (not isinstance(self.shard_threads, int)
                                               or isinstance(self.shard_threads, bool) or self.shard_threads < 1):
            raise ConfigError(f"executor_options shard_threads must be a positive integer or None; "
                              f"got {self.shard_threads!r}")
        if self.address is not None and not isinstance(self.address, str):
            raise ConfigError(f"executor_options address must be a string such as 'ray://host:10001'; "
                              f"got {self.address!r}")


def ray_options(options: Mapping[str, Any]) -> RayOptions:
    """``executor_options`` as :class:`RayOptions`; unknown keys raise ConfigError naming the valid ones."""
    if "encode_batch_size" in options:
        raise ConfigError("executor_options encode_batch_size is no longer used: Ray encodes in the chunks the "
                          "local executor uses, so set LinkConfig encode_chunk_size (texts per encoder call) instead")
    return build_options(RayOptions, options, "executor 'ray'")


def start_ray(options: RayOptions) -> dict[str, Any]:
    """Connect to Ray (``ray.init`` unless already connected): local, no dashboard, no usage stats, or
    ``options.address``.  Returns what the run report says about the session."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ModelUnavailableError(
            "executor='ray' needs Ray Data: pip install 'ltengine[ray]' (or pip install 'ray[data]')"
        ) from None
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                  "configure_logging": True}
        if options.address:
            kwargs["address"] = options.address
        else:
            kwargs.update(num_cpus=options.num_cpus, num_gpus=options.num_gpus)
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = options.address or "a local Ray"
            raise ConfigError(f"cannot start or join Ray ({where}): {exc}") from None
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset INFO lines
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ltengine shows its own progress
    resources = ray.cluster_resources()
    return {"address": options.address or "local", "cpus": resources.get("CPU", 0.0),
            "gpus": resources.get("GPU", 0.0), "nodes": len([n for n in ray.nodes() if n.get("Alive")])}


def node_share(actors: int) -> int:
    """CPUs each of ``actors`` actors gets when they are spread evenly over the cluster's live nodes: the smallest
    node's CPUs over the actors placed on it (at least 1)."""
    import ray

    cpus = [node["Resources"].get("CPU", 1.0) for node in ray.nodes() if node.get("Alive")] or [1.0]
    per_node = -(-actors // len(cpus))
    return max(1, int(min(cpus) // per_node))


def stream_batches(dataset: Any, actors: dict[str, int]) -> Iterator[dict[str, np.ndarray]]:
    """Each numpy batch of the Ray Data ``dataset`` (with an ``actor`` column) as Ray Data finishes it, counting in
    ``actors`` the rows each actor produced.  An ltengine error raised in an actor is raised here as itself."""
    try:
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
            for actor, count in zip(*np.unique(batch["actor"].astype(str), return_counts=True)):
                actors[str(actor)] = actors.get(str(actor), 0) + int(count)
            yield batch
    except Exception as exc:  # a remote error: raise the ltengine error raised in the actor, if any
        cause = remote_cause(exc)
        if cause is exc:
            raise
        raise cause from None


def collect_batches(dataset: Any, handle: Callable[[dict[str, np.ndarray]], None]) -> tuple[dict[str, int], int]:
    """Pass each numpy batch of the Ray Data ``dataset`` (with an ``actor`` column) to ``handle``; return the rows
    each actor produced and the number of batches (see :func:`stream_batches`)."""
    actors: dict[str, int] = {}
    batches = 0
    for batch in stream_batches(dataset, actors):
        handle(batch)
        batches += 1
    return actors, batches


def ray_get(refs: Any) -> Any:
    """``ray.get(refs)``; an ltengine error raised in a task or actor is raised again here as itself."""
    import ray

    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        raise remote_cause(exc) from None


def remote_cause(exc: BaseException) -> BaseException:
    """The ltengine error inside a Ray task error (Ray Data wraps them twice), else ``exc``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, LTEngineError):
            return seen
        cause = seen.cause if isinstance(seen, _task_error()) else None
        seen = cause or seen.__cause__
    return exc


def _task_error() -> type:
    import ray

    return ray.exceptions.RayTaskError

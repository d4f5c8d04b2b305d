"""The benchmark table shared by the suite runner (:mod:`evals.suite`) and the report (:mod:`evals.report`)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Benchmarks in the order they run and appear in the report (``evals.<name>`` or a dotted module path).
BENCHMARKS: tuple[str, ...] = (
    "cldr_accuracy",
    "crosslingual_baselines",
    "febrl4_link",
    "hybrid_scripts",
    "febrl3_dedup",
    "default_chain",
    "speed_vs_linktransformer",
    "scale",
    "e5_speed",
    "faiss_auto",
    "rerank_eval",
)
#: Benchmarks too slow for the quick suite's 10-minute budget: run by ``--suite full`` (or ``--only``).
FULL_ONLY: tuple[str, ...] = ("dedup_scale",)
SUMMARY = "_suite.json"
#: Default per-benchmark time limit (seconds) of each suite; None = no limit.
TIMEOUTS: dict[str, float | None] = {"quick": 600.0, "full": None}


def module_name(name: str) -> str:
    """``"cldr_accuracy"`` -> ``"evals.cldr_accuracy"``; dotted paths are kept as they are."""
    return name if "." in name else f"evals.{name}"


def short_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]

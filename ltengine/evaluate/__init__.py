"""Scoring given pairs, and the metrics to judge links and clusters and to choose thresholds.

- :func:`evaluate_pairs`: cosine score of the two texts of each row (LinkTransformer's name).
- :func:`all_pair_combos_evaluate`: every left value against every right value, in chunks, with a
  memory estimate checked before any work.
- :func:`evaluate`: pairwise precision / recall / F1; for clusters also B-cubed and adjusted Rand;
  for links also top-1 accuracy, recall@k and MRR.  Gold is a frame of pairs or of clusters.
- :func:`suggest_threshold`: the score threshold maximising F1 (or meeting a target precision),
  with the precision/recall curve and an optional plot.

Layers: :mod:`~ltengine.evaluate.scoring` | :mod:`~ltengine.evaluate.metrics` |
:mod:`~ltengine.evaluate.thresholds` > :mod:`~ltengine.evaluate.checks` (input checks).
"""

from ltengine.evaluate.metrics import cluster_metrics, evaluate, link_metrics
from ltengine.evaluate.scoring import (
    DEFAULT_MAX_MEMORY,
    PAIR_CHUNK,
    all_pair_combos_evaluate,
    evaluate_pairs,
    parse_bytes,
)
from ltengine.evaluate.thresholds import ThresholdSuggestion, suggest_threshold

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "PAIR_CHUNK",
    "ThresholdSuggestion",
    "all_pair_combos_evaluate",
    "cluster_metrics",
    "evaluate",
    "evaluate_pairs",
    "link_metrics",
    "parse_bytes",
    "suggest_threshold",
]

"""Reranking: a chain of rerankers re-scores the retrieved candidates, cheapest first.

Specs
-----
``LinkConfig.rerank`` lists reranker specs, applied in order: ``"name"`` or ``"name:model"``
(split at the first colon), e.g. ``"cross-encoder:/models/my-ce"`` or
``"llm:openai/gpt-4o-mini"``.  Names are looked up in the registry (plugins register rerankers
through ``register_rerankers``; an unknown name lists the available ones).

Options (``LinkConfig.rerank_options``)
---------------------------------------
With one reranker, its options are given flat::

    rerank="llm:openai/gpt-4o-mini",
    rerank_options={"task": "firms; same legal entity", "batch_size": 8, "max_cost": 2.0}

With several, key each reranker's options by its name, alias or full spec (run options may stay
at the top level)::

    rerank=("cross-encoder:/models/ce", "llm:openai/gpt-4o-mini"),
    rerank_options={"cross-encoder": {"batch_size": 64},
                    "llm": {"band": (0.2, 0.9), "task": "firms"},
                    "max_cost": 2.0}

Keys of a reranker's options are its component options (see its ``Options``) plus:

- ``cascade`` (bool): send only *uncertain* pairs to this reranker.  Default: the component's
  ``cascade_default`` (True for the LLM judge, False for the cross-encoder).
- ``band`` ((low, high), both in 0..1): the uncertain band of the previous score.  Pairs above
  ``high`` are decided as matches and pairs below ``low`` as non-matches without calling this
  reranker.  The previous score is the retrieval cosine (clipped to 0..1) for the first stage,
  else the previous reranker's score.  Defaults: :data:`DEFAULT_BAND`.
- ``match_threshold`` (0..1, default 0.5): a pair this reranker scores is a match when its score
  is at least this (unless the reranker returns its own ``is_match``, as the LLM judge does).

Run options (top level, or inside a reranker's options): ``max_cost`` (dollars, for all LLM
calls of the run), ``max_calls`` (LLM requests), ``dry_run`` (estimate only, no requests) and
``keep_non_matches`` (``merge`` keeps a left row's best pair even if no reranker calls it a
match; by default ``merge`` returns only pairs whose ``is_match`` is true, or undecided with a
``judge_error``).

Output columns
--------------
``rerank_score`` (0..1: the score of the last stage that scored the pair), ``is_match``
(nullable boolean dtype ``"boolean"``, always; <NA> where the pair has no verdict), ``decided_by`` (``"retrieval"`` when the first
band decided it, else the reranker's name) and the reranker's own columns (the judge adds
``judge_confidence`` and ``judge_error``: None, or why the pair has no verdict, e.g.
``"budget"``).  Decisions (best per left row, top-k, one-to-one) sort by ``rerank_score``.

Report: ``out.attrs["ltengine"]["report"]["rerank"]`` holds, per stage, the band, how many
pairs were sent / decided above / below, and the component's own report (requests, cache hits,
tokens, cost, the dry-run estimate).

Writing a reranker: subclass :class:`ltengine.Reranker` and implement ``score``.  A reranker that
needs the run (disk cache, budget, progress, its report) overrides ``attach(run)``, called with a
:class:`RerankRun` before ``score``; it declares ``cascade_default``, ``output_columns`` and
``calls_llm`` on its class (see :class:`ltengine.Reranker`).

Modules: :mod:`.plan` (specs, options, validation, the :class:`Plan`), :mod:`.budget`
(:class:`Budget`, :class:`RerankRun`), :mod:`.chain` (:func:`apply_rerankers`).  The CLI's helpers
live in :mod:`ltengine.cli.rerank_options`.
"""

from ltengine.engine.rerank.budget import Budget, RerankRun
from ltengine.engine.rerank.chain import apply_rerankers
from ltengine.engine.rerank.plan import DEFAULT_BAND, RUN_KEYS, STAGE_KEYS, Plan, Stage, parse_spec, plan, validate

__all__ = [
    "DEFAULT_BAND", "RUN_KEYS", "STAGE_KEYS", "Budget", "Plan", "RerankRun", "Stage", "apply_rerankers",
    "parse_spec", "plan", "validate",
]

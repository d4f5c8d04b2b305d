"""The linking engine: serialise records, encode, retrieve, fuse, rerank, decide, assemble the output.

- :mod:`~ltengine.engine.text`: input checks and the serialisation of records to texts
- :mod:`~ltengine.engine.encoding`: choosing the encoder; encoding with dedup, disk cache and progress
- :mod:`~ltengine.engine.decide`: best per left row, top k, one-to-one
- :mod:`~ltengine.engine.calibration`: ``match_probability``, a mixture fitted without labels on a run's candidates
- :mod:`~ltengine.engine.output`: the columns a run adds (one registry) and the merged frame
- :mod:`~ltengine.engine.fusion`: the hybrid mode: when ``auto`` picks it, scoring candidate pairs with
  both retrievers, fusing their scores
- :mod:`~ltengine.engine.rerank`: the reranker chain (cross-encoder, LLM judge): ``plan`` (specs, options),
  ``budget`` (LLM spending caps, what ``Reranker.attach`` receives), ``chain`` (running it)
- :mod:`~ltengine.engine.adaptive`: mode ``auto``: both retrievers fused by a model fitted on the run's own candidates
- :mod:`~ltengine.engine.blocks`: the fitted right side, its blocks and their block-wise search
- :mod:`~ltengine.engine.linker`: the :class:`Linker` that runs the stages
"""

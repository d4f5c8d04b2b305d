"""The linking engine: serialise records, encode, retrieve, fuse, rerank, decide, assemble the output.

- :mod:`~ltengine.engine.text`: input checks and the serialisation of records to texts
- :mod:`~ltengine.engine.encoding`: choosing the encoder; encoding with dedup, disk cache and progress
- :mod:`~ltengine.engine.decide`: best per left row, top k, one-to-one
- :mod:`~ltengine.engine.output`: the columns a run adds (one registry) and the merged frame
- :mod:`~ltengine.engine.fusion`: hybrid (semantic + lexical) scores
- :mod:`~ltengine.engine.rerank`: the reranker chain (cross-encoder, LLM judge)
- :mod:`~ltengine.engine.linker`: the :class:`Linker` that runs the stages
"""

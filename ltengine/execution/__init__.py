"""Execution backends: where a link run's stages execute.  Today every run executes locally, in this
process (:class:`ltengine.Linker`); a distributed backend (e.g. Ray Data) belongs here, between the
pandas API above and the engine below, so that local runs never import it."""

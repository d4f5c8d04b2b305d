"""Learning from the user's labels: the home of training (fine-tuned encoders, adapters, trained
cross-encoders, distilled judges, active labelling).  Today :func:`ltengine.fit_fusion` (in
:mod:`ltengine.engine.fusion`) is the only learner; new training code goes here, above the engine:
it may use the linker to mine hard negatives and to measure, and the engine never imports it."""

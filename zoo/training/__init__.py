"""Training: ``zoo.train(...)`` and ``zoo-train``, one run as named stages.

:mod:`zoo.training.run` holds the stages; :mod:`~zoo.training.config` the
flags, :mod:`~zoo.training.recipe` the optimizer, loss and callbacks,
:mod:`~zoo.training.checkpoint` and :mod:`~zoo.training.resume` what a run
leaves and how it continues, :mod:`~zoo.training.report` the results,
:mod:`~zoo.training.interrupt` Ctrl-C, and :mod:`zoo.training.distribute` the
data-parallel plans.
"""

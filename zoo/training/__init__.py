"""Training: ``zoo.train(...)`` and ``zoo-train``, one run as named stages.

:mod:`~zoo.training.run` holds the stages and the :class:`~zoo.training.run.Run`
they hand on; :mod:`~zoo.training.config` the flags, :mod:`~zoo.training.recipe`
the defaults a model's :class:`~zoo.registry.Recipe` fills in,
:mod:`~zoo.training.compile` the optimizer, schedule and loss,
:mod:`~zoo.training.output` the output folder, :mod:`~zoo.training.checkpoint`
the epoch checkpoints and :mod:`~zoo.training.resume` how a run continues,
:mod:`~zoo.training.report` the results, :mod:`~zoo.training.interrupt`
Ctrl-C, and :mod:`zoo.training.distribute` the plan that spreads a run over
devices.
"""

from zoo.errors import ZooError


class TrainingError(ZooError):
    """Bad input or a failed run; ``exit_code`` is what the command line returns."""

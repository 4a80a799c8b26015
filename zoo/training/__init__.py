"""Training: `zoo.train(...)` and `zoo-train`, one run as named stages.

[`zoo.training.run`][] holds the stages and the [`zoo.training.run.Run`][]
they hand on; [`zoo.training.config`][] the flags, [`zoo.training.recipe`][]
the defaults a model's [`zoo.registry.Recipe`][] fills in,
[`zoo.training.compile`][] the optimizer, schedule and loss,
[`zoo.training.output_folder`][] the output folder, [`zoo.training.checkpoint`][]
the epoch checkpoints and [`zoo.training.resume`][] how a run continues,
[`zoo.training.report`][] the results, [`zoo.training.interrupt`][]
Ctrl-C, and [`zoo.training.distribute`][] the plan that spreads a run over
devices.
"""

from zoo.errors import ZooError


class TrainingError(ZooError):
    """Bad input or a failed run; `exit_code` is what the command line returns."""

"""Training as data: [`TrainConfig`][], every `zoo-train` flag as one typed field.

Each field carries its default, its type and its help in one place; the
command line is generated from the fields, so the flags, the Python keywords
and the docs cannot drift apart:

```python
from zoo.training.config import TrainConfig
config = TrainConfig(model="lenet5_modern", epochs=3, output="runs/demo")
config = TrainConfig.from_argv(["--model", "lenet5_modern", "--epochs", "3"])
```

A config is frozen and checked when it is made: a bad value raises
[`zoo.errors.ZooError`][] naming the flag. `None` in `epochs`,
`batch_size`, `learning_rate`, `optimizer`, `schedule` and `label_smoothing` means
"the model's recipe" (see [`zoo.training.recipe.resolve_recipe`][]); in `augment`, none.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass, field

from zoo.errors import ZooError
from zoo.training.distribute import STRATEGIES

__all__ = ["TrainConfig", "BACKENDS", "OPTIMIZERS", "SCHEDULES", "STRATEGIES", "build_parser"]

BACKENDS = ("jax", "tensorflow", "torch")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "warmup-cosine")
AUGMENTATIONS = ("none", "digits")  # what zoo.training.augment does
CONV_IMPLS = (
    "auto",
    "native",
    "im2col",
    "taps",
    "chunked",
)  # zoo.accel.conv.CONV_IMPLS (which imports Keras; this can't)


def option(default, help, **argparse_options):
    """A config field: its default, its help, and anything argparse needs beyond the type."""
    return field(default=default, metadata={"help": help, **argparse_options})


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs to know; the fields are `zoo-train`'s flags."""

    model: str | None = option(
        None,
        "registered model name (see `python -m zoo`); default: lenet5, or with --resume "
        "the checkpoint's",
    )
    dataset: str | None = option(
        None,
        "digits (embedded), mnist, fashion_mnist, cifar10 (Keras cache), or a path: a folder "
        "of class subfolders of images, an .npz with x_train/y_train/x_test/y_test, or a "
        "folder of MNIST IDX files; default: digits, or with --resume the checkpoint's",
    )
    backend: str | None = option(
        None, "Keras backend; default: $KERAS_BACKEND, else Keras's own", choices=BACKENDS
    )
    epochs: int | None = option(None, "total epochs (default: the model's recipe)")
    batch_size: int | None = option(None, "batch size (default: the model's recipe)")
    learning_rate: float | None = option(
        None, "learning rate, the peak of a schedule (default: the model's recipe)"
    )
    optimizer: str | None = option(
        None, "optimizer; sgd uses momentum 0.9 (default: the model's recipe)", choices=OPTIMIZERS
    )
    schedule: str | None = option(
        None,
        "learning-rate schedule: constant, or warmup-cosine (a tenth of the steps rising to "
        "the rate, then a cosine down to zero at the last epoch) (default: the model's recipe)",
        choices=SCHEDULES,
    )
    label_smoothing: float | None = option(
        None,
        "label smoothing in [0, 1): the true class's target becomes 1 - F + F/classes, every "
        "other class's F/classes (default: the model's recipe)",
    )
    augment: str | None = option(
        None,
        "random changes to the training images, new each epoch, never at evaluation: none, or "
        "digits (rotate up to 15 degrees, scale 0.9-1.1, shift up to a tenth, thicker or "
        "thinner strokes; for bright ink on a dark background, as MNIST) (default: none)",
        choices=AUGMENTATIONS,
    )
    seed: int = option(0, "random seed for weights, shuffling, splits and augmentation")
    validation_split: float | None = option(
        None,
        "fraction of the training images held out for validation, 0 for none (default: 0.1, "
        "or with --resume the checkpoint's)",
    )
    image_size: tuple[int, int] | None = option(
        None, "input height and width (default: the model's)", nargs=2, metavar=("H", "W")
    )
    classes: int | None = option(None, "number of classes (default: as the dataset names)")
    limit: int | None = option(
        None, "use only N training images (default: all, or with --resume the checkpoint's)"
    )
    output: str | None = option(None, "output folder (default: runs/MODEL-DATASET-BACKEND)")
    resume: bool = option(False, "continue from the last completed epoch; --epochs is the total")
    skip_bad_images: bool = option(
        False, "leave out image files that cannot be read (default: refuse, naming them)"
    )
    overwrite: bool = option(
        False, "start afresh in an --output folder that holds an earlier run (its files go)"
    )
    early_stopping: int | None = option(
        None, "stop after N epochs without improvement of the validation loss", metavar="N"
    )
    tensorboard: bool = option(False, "write TensorBoard logs to OUTPUT/logs")
    conv_impl: str = option(
        "auto",
        "how each Conv2D computes: native (the backend's kernel), im2col (one matrix product), "
        "taps (a sum over the kernel's taps), chunked (the kernel on 4 images at a time) or auto "
        "(per backend and layer shape, from zoo.accel.conv's measured table); the weights and "
        "the saved model are the same either way",
        metavar="{auto,native,im2col,taps,chunked}",
    )
    distribute: str | None = option(
        None,
        "train on every local device: keras.distribution.DataParallel on jax, "
        "tf.distribute.MirroredStrategy on tensorflow, DistributedDataParallel on torch (one "
        "process per device: torchrun or --processes); --batch-size is the global batch",
        choices=STRATEGIES,
    )
    virtual_cpus: int | None = option(
        None, "with --distribute: split the CPU into N devices", metavar="N"
    )
    coordinator: str | None = option(
        None, "with --distribute on jax: address of process 0", metavar="HOST:PORT"
    )
    num_processes: int | None = option(None, "with --coordinator: processes in the job")
    process_id: int | None = option(None, "with --coordinator: this process, 0..N-1")
    processes: int | None = option(
        None,
        "with --distribute on torch: start N processes on this machine (as torchrun "
        "--nproc-per-node N does)",
        metavar="N",
    )
    quiet: bool = option(False, "print only the final result")

    def __post_init__(self):
        if self.image_size is not None:  # argparse gives a list
            object.__setattr__(self, "image_size", tuple(self.image_size))
        for name in ("dataset", "output"):  # a pathlib.Path is welcome; it is kept as text
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, os.fspath(value))
        for problem in _problems(self):
            raise ZooError(problem + ".")

    @classmethod
    def from_argv(cls, argv):
        """Parse `zoo-train` arguments into a config (argparse exits 2 on a bad flag)."""
        return cls(**vars(build_parser().parse_args(argv)))

    def replace(self, **changes):
        """A copy with `changes`, checked again."""
        return dataclasses.replace(self, **changes)


def _at_least(value, minimum):
    return value is None or value >= minimum


def _problems(c):
    """Every bad value in config `c`, as messages naming the flag."""
    rate = c.learning_rate
    checks = [
        (_at_least(c.epochs, 1), f"--epochs must be at least 1, got {c.epochs}"),
        (_at_least(c.batch_size, 1), f"--batch-size must be at least 1, got {c.batch_size}"),
        (
            rate is None or (rate > 0 and math.isfinite(rate)),
            f"--learning-rate must be a positive number, got {rate}",
        ),
        (
            c.label_smoothing is None or 0 <= c.label_smoothing < 1,
            f"--label-smoothing must be in [0, 1), got {c.label_smoothing}",
        ),
        (
            c.validation_split is None or 0 <= c.validation_split < 1,
            f"--validation-split must be in [0, 1), got {c.validation_split}",
        ),
        (_at_least(c.limit, 1), f"--limit must be at least 1, got {c.limit}"),
        (0 <= c.seed < 2**32, f"--seed must be a whole number in 0..{2**32 - 1}, got {c.seed}"),
        (
            _at_least(c.early_stopping, 1),
            f"--early-stopping must be at least 1 epoch, got {c.early_stopping}",
        ),
        (_at_least(c.classes, 1), f"--classes must be at least 1, got {c.classes}"),
        (
            c.image_size is None or (len(c.image_size) == 2 and min(c.image_size) >= 1),
            f"--image-size must be two positive integers, got {c.image_size}",
        ),
        (
            c.optimizer is None or c.optimizer in OPTIMIZERS,
            f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {c.optimizer!r}",
        ),
        (
            c.schedule is None or c.schedule in SCHEDULES,
            f"--schedule must be one of {', '.join(SCHEDULES)}, got {c.schedule!r}",
        ),
        (
            c.augment is None or c.augment in AUGMENTATIONS,
            f"--augment must be one of {', '.join(AUGMENTATIONS)}, got {c.augment!r}",
        ),
        (
            c.backend is None or c.backend in BACKENDS,
            f"--backend must be one of {', '.join(BACKENDS)}, got {c.backend!r}",
        ),
        (
            c.conv_impl in CONV_IMPLS,
            f"--conv-impl must be one of {', '.join(CONV_IMPLS)}, got {c.conv_impl!r}",
        ),
    ]
    problems = [message for ok, message in checks if not ok]
    return problems + _distribute_problems(c)


def _distribute_problems(c):
    job = (c.coordinator, c.num_processes, c.process_id)
    if not c.distribute:
        flags = ("--virtual-cpus", "--processes", "--coordinator", "--num-processes")
        flags += ("--process-id",)
        values = (c.virtual_cpus, c.processes, *job)
        used = [flag for flag, value in zip(flags, values, strict=True) if value is not None]
        return [f"{used[0]} only applies with --distribute data-parallel"] if used else []
    if not _at_least(c.virtual_cpus, 1):
        return [f"--virtual-cpus must be at least 1, got {c.virtual_cpus}"]
    if not _at_least(c.processes, 1):
        return [f"--processes must be at least 1, got {c.processes}"]
    if c.processes is not None and c.backend not in (None, "torch"):
        return ["--processes starts PyTorch workers; use it with the torch backend"]
    if all(value is None for value in job):
        return []
    if None in job:
        return [
            "a multi-process job needs all of --coordinator HOST:PORT, --num-processes N "
            "and --process-id I"
        ]
    if c.num_processes < 1 or not 0 <= c.process_id < c.num_processes:
        return [
            f"--process-id must be in 0..{c.num_processes - 1} and --num-processes at least 1, "
            f"got --process-id {c.process_id} --num-processes {c.num_processes}"
        ]
    return []


def _argparse_type(annotation):
    """`"int | None"` -> `int`: the converter argparse applies to the flag's text."""
    for name, converter in (("int", int), ("float", float), ("str", str)):
        if annotation.startswith((name, f"tuple[{name}")):
            return converter
    raise TypeError(f"no argparse type for {annotation!r}")


def build_parser():
    """The `zoo-train` argument parser, generated from [`TrainConfig`][]'s fields."""
    parser = argparse.ArgumentParser(
        prog="zoo-train",
        description="Train a zoo model on a dataset with Keras, on JAX, TensorFlow or PyTorch "
        "(chosen by KERAS_BACKEND or --backend).",
    )
    for spec in dataclasses.fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        extra = dict(spec.metadata)
        help_text = extra.pop("help")
        if spec.type == "bool":
            parser.add_argument(flag, action="store_true", help=help_text)
            continue
        if spec.default is not None:
            help_text += f" (default: {spec.default})"
        parser.add_argument(
            flag, type=_argparse_type(spec.type), default=spec.default, help=help_text, **extra
        )
    return parser

"""The plans themselves: [`Plan`][] (one device) and [`DataParallelPlan`][], the base of
the per-engine plans ([`zoo.training.distribute.jax_plan`][],
[`zoo.training.distribute.tensorflow_plan`][], [`zoo.training.distribute.torch_ddp`][])."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from zoo.errors import ZooError

__all__ = ["STRATEGIES", "SUPPORTED_BACKENDS", "DataParallelPlan", "DistributeError", "Plan"]

STRATEGIES = ("data-parallel",)
SUPPORTED_BACKENDS = ("jax", "tensorflow", "torch")


class DistributeError(ZooError):
    """A distribution request this backend or machine cannot honour."""


@dataclass(frozen=True)
class Plan:
    """One process on one device: the plan of every run without `--distribute`.

    `conv_impl` is the run's `--conv-impl`, given to every model this plan
    prepares (a copy for evaluation too). The subclasses change only what
    their engine does differently.
    """

    conv_impl: str = "auto"
    process_id: int = 0
    num_processes: int = 1

    @property
    def is_chief(self):
        """Whether this process writes the run's files (only process 0 of a job does)."""
        return self.process_id == 0

    def check_batch(self, global_batch):
        """Refuse a global batch this plan cannot split; one device takes any."""

    def process_batch(self, global_batch):
        """The batch this process feeds `fit`: all of it, here."""
        return global_batch

    def scope(self):
        """Where models are built, loaded and compiled."""
        return contextlib.nullcontext()

    def shard(self, count):
        """Indices of this process's share of `count` images: all of them, here."""
        import numpy as np

        return np.arange(count)

    def training_shard(self, split):
        """This process's share of the training split: the whole split, here."""
        return split

    def validation_shard(self, split):
        """This process's share of the validation split (`None` stays `None`)."""
        return split

    def prepare(self, model):
        """Give `model` the backend's speed-ups and the run's convolutions
        ([`zoo.accel.accelerate`][])."""
        from zoo.accel import accelerate

        return accelerate(model, conv_impl=self.conv_impl)

    def evaluate_copy(self, model, compile_copy):
        """The model to evaluate and predict with: `model` itself, here.

        `compile_copy(copy)` compiles a copy as the run compiled `model`,
        for the plans that evaluate a copy.
        """
        return model

    def lost_process(self, output):
        """Around `fit`: what a lost process of the job becomes (nothing to lose, here)."""
        return contextlib.nullcontext()

    def finish(self):
        """Wait for the job's other processes before this one ends (there are none, here)."""

    def describe(self, global_batch):
        """The start-up banner's `distribute` line; `None`: no line."""
        return None

    def report(self, global_batch):
        """The entries this plan adds to `metrics.json`: none, here."""
        return {}


@dataclass(frozen=True)
class DataParallelPlan(Plan):
    """One copy of the model per device, each global batch split over them.

    `devices` are all replicas (every process's); `local_devices` this
    process's. Each device gets `global_batch / len(devices)` images of a
    global batch. Every batch must split evenly and every process take the
    same number of steps, so `shard` cuts the image count to a multiple
    of the device count (at most `len(devices) - 1` images dropped) and
    deals the rest out to the processes.
    """

    engine: str = ""
    devices: tuple = ()
    local_devices: int = 1

    def check_batch(self, global_batch):
        """Each device takes an equal part (so each process too: it holds as many devices)."""
        count = len(self.devices)
        if global_batch is not None and global_batch % count:
            raise DistributeError(
                f"--batch-size {global_batch} does not split evenly over {count} devices; "
                f"use a multiple of {count}."
            )

    def process_batch(self, global_batch):
        return global_batch // self.num_processes

    def shard(self, count):
        import numpy as np

        usable = count - count % len(self.devices)
        return np.arange(usable)[self.process_id :: self.num_processes]

    def training_shard(self, split):
        return split.subset(self.shard(len(split)))

    def describe(self, global_batch):
        count = len(self.devices)
        names = ", ".join(self.devices) if count <= 8 else f"{count}"
        processes = (
            f", {self.num_processes} processes (this is process {self.process_id})"
            if self.num_processes > 1
            else ""
        )
        return (
            f"data-parallel with {self.engine} over {count} devices ({names}){processes}; "
            f"global batch {global_batch} = {count} x {global_batch // count} per device"
        )

    def report(self, global_batch):
        return {
            "distribution": {
                "strategy": STRATEGIES[0],
                "engine": self.engine,
                "devices": len(self.devices),
                "processes": self.num_processes,
                "per_device_batch": global_batch // len(self.devices),
            }
        }

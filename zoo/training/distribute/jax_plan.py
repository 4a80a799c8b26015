"""Data parallelism on JAX: Keras's `keras.distribution.DataParallel` (JAX only).

Keras's distribution API replicates every variable on each device JAX sees
and splits each batch along its first axis; XLA inserts the cross-device
gradient mean (see Keras's guide "Distributed training with JAX"). Several
processes, on one host or several, join one job with
`keras.distribution.initialize` (a coordinator address, the process count
and this process's id); each then feeds its own shard of the data, and Keras
is told not to shard it again.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from zoo.training.distribute.plan import DataParallelPlan, DistributeError

__all__ = ["JaxPlan", "local_copy", "start"]


@dataclass(frozen=True)
class JaxPlan(DataParallelPlan):
    """`keras.distribution.DataParallel` over every device of every process of the job."""

    def validation_shard(self, split):
        """Each process validates on its share too: the metrics are averaged over devices."""
        return None if split is None else split.subset(self.shard(len(split)))

    def evaluate_copy(self, model, compile_copy):
        """A single-device copy ([`local_copy`][]), compiled and prepared as `model` was.

        A clone starts as plain Keras, without the run's `--conv-impl` or
        speed-ups: `prepare` gives them again.
        """
        copy = local_copy(model)
        compile_copy(copy)
        self.prepare(copy)
        return copy

    def finish(self):
        """Hold every process of a multi-process job here until all arrive.

        Process 0 evaluates and writes the results after training while the
        others have nothing left to do. Were they to exit at once, JAX's
        shutdown barrier would wait for process 0 on a timer (five minutes by
        default) and abort the whole job if the writing took longer, so every
        process waits here first and they all shut down together.
        """
        if self.num_processes == 1:
            return
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("zoo-train finished")


# Whether this process joined a multi-process job (see leave_at_once_if_joined).
joined_a_job = False


def leave_at_once_if_joined(exit_code):
    """After Ctrl-C, exit now with `exit_code` if this process joined a multi-process job.

    Each process stops after its own current step, so one may already wait in
    the next step's collective for a process that has stopped; JAX's exit
    handlers would then wait for it too, and Ctrl-C would leave both hanging.
    Leaving without them closes the connections, which ends the other's wait.
    The checkpoint on disk is complete either way.
    """
    if joined_a_job:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)


def start(config):
    """Join the job (`--coordinator`), check `--virtual-cpus`, and set the distribution."""
    import jax
    import keras

    if config.coordinator is not None:
        join_processes(config.coordinator, config.num_processes, config.process_id)
    if config.virtual_cpus and jax.local_device_count() != config.virtual_cpus:
        raise DistributeError(
            f"--virtual-cpus {config.virtual_cpus}: JAX started with "
            f"{jax.local_device_count()} device(s) because it was imported first; "
            "run zoo-train in a new process."
        )
    distribution = keras.distribution.DataParallel()
    # Each process already feeds its own shard (Plan.shard), so Keras must not shard again.
    distribution.auto_shard_dataset = False
    keras.distribution.set_distribution(distribution)
    return JaxPlan(
        conv_impl=config.conv_impl,
        process_id=jax.process_index(),
        num_processes=jax.process_count(),
        engine="keras.distribution.DataParallel",
        devices=tuple(f"{d.platform}:{d.id}" for d in jax.devices()),
        local_devices=jax.local_device_count(),
    )


def join_processes(coordinator, num_processes, process_id):
    """Start JAX's multi-process runtime (`keras.distribution.initialize`)."""
    import keras

    global joined_a_job
    try:
        keras.distribution.initialize(coordinator, num_processes, process_id)
        joined_a_job = True
    except Exception as error:  # the JAX runtime raises several types here
        raise DistributeError(
            f"could not join the {num_processes}-process job at {coordinator} as process "
            f"{process_id}: {error}. Start every process with the same --coordinator and "
            "--num-processes and a different --process-id, 0 first."
        ) from None


def local_copy(model):
    """A single-device copy of `model`'s network and weights, for evaluation and prediction.

    Under `DataParallel` the last, smaller batch of a test set need not
    split over the devices, and with several processes a prediction is spread
    over hosts; a plain copy on this process's first device avoids both.
    """
    import keras

    weights = model.get_weights()
    keras.distribution.set_distribution(None)
    copy = keras.models.clone_model(model)
    copy.set_weights(weights)
    return copy

"""Data-parallel training with the engines the backends ship.

``zoo-train --distribute data-parallel`` keeps one copy of the model on every
device, splits each global batch along its first axis, and averages the
gradients across devices, so every step computes the same update as one device
would with the whole batch:

- **JAX**: Keras's distribution API, ``keras.distribution.DataParallel``, over
  every device JAX sees. Several processes (several hosts, or several
  processes on one host) join with ``keras.distribution.initialize`` (a
  coordinator address, the process count and this process's id); each process
  then feeds its own shard of the data.
- **TensorFlow**: ``tf.distribute.MirroredStrategy`` over the local GPUs, or
  the local CPU devices when there is no GPU.
- **PyTorch**: Keras has no distribution API for the torch backend, but the
  model is a ``torch.nn.Module``: ``torch.distributed`` and
  ``DistributedDataParallel``, one process per device, started by ``torchrun``
  or ``zoo-train --processes N`` (see :mod:`zoo.training.distribute.torch_ddp`).

Without accelerators, ``--virtual-cpus N`` splits the CPU into N devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N`` on JAX, logical CPU
devices on TensorFlow): slower than one device, but it runs the same program
as N GPUs would, which is how the tests check it.

This module imports ``tensorflow`` or ``jax`` only inside the branch for that
backend.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from zoo.errors import ZooError

STRATEGIES = ("data-parallel",)
SUPPORTED_BACKENDS = ("jax", "tensorflow", "torch")


class DistributeError(ZooError):
    """A distribution request this backend or machine cannot honour."""


# --------------------------------------------------------------------------- before Keras


def start_devices(config, backend):
    """For ``--distribute``: virtual CPUs and the multi-process runtime, before any computation.

    ``config`` is a :class:`~zoo.training.config.TrainConfig` (its distribution fields).
    """
    check_supported(backend)
    if config.coordinator is not None and backend != "jax":
        raise DistributeError(
            "--coordinator (a multi-process job) needs the jax backend; on tensorflow, "
            "--distribute data-parallel uses this machine's devices, and on torch torchrun "
            "starts the processes (or --processes N)."
        )
    if config.processes is not None and backend != "torch":
        raise DistributeError(
            f"--processes starts PyTorch workers; on {backend}, --distribute data-parallel uses "
            "this machine's devices (and --coordinator on jax joins several processes)."
        )
    if config.virtual_cpus and backend == "tensorflow":
        split_tensorflow_cpu(config.virtual_cpus)
    if config.coordinator is not None:
        join_processes(config.coordinator, config.num_processes, config.process_id)
    if config.virtual_cpus and backend == "jax":
        import jax

        if jax.local_device_count() != config.virtual_cpus:
            raise DistributeError(
                f"--virtual-cpus {config.virtual_cpus}: JAX started with "
                f"{jax.local_device_count()} device(s) because it was imported first; "
                "run zoo-train in a new process."
            )


def check_supported(backend):
    if backend not in SUPPORTED_BACKENDS:
        raise DistributeError(
            f"--distribute data-parallel is not available on the {backend} backend: Keras offers "
            "no distribution API for it. Use KERAS_BACKEND=jax (keras.distribution.DataParallel) "
            "or KERAS_BACKEND=tensorflow (tf.distribute.MirroredStrategy)."
        )


def split_tensorflow_cpu(count):
    """Split the first physical CPU into ``count`` logical devices (before TF starts)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise DistributeError(
                "--virtual-cpus: TensorFlow has already started with "
                f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s); run zoo-train in a "
                "new process."
            ) from None


def join_processes(coordinator, num_processes, process_id):
    """Start JAX's multi-process runtime (``keras.distribution.initialize``)."""
    import keras

    try:
        keras.distribution.initialize(coordinator, num_processes, process_id)
    except Exception as error:  # the JAX runtime raises several types here
        raise DistributeError(
            f"could not join the {num_processes}-process job at {coordinator} as process "
            f"{process_id}: {error}. Start every process with the same --coordinator and "
            "--num-processes and a different --process-id, 0 first."
        ) from None


# --------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """How one training run spreads over devices.

    ``devices`` are all replicas (every process's); ``local_devices`` this
    process's. ``global_batch`` is what the user asked for: each device gets
    ``per_device`` images of it, and this process feeds ``per_process`` of
    them to ``fit``.
    """

    backend: str
    engine: str
    devices: list
    local_devices: int
    global_batch: int
    num_processes: int = 1
    process_id: int = 0
    strategy: object = field(default=None, repr=False)

    @property
    def per_device(self):
        return self.global_batch // len(self.devices)

    @property
    def per_process(self):
        return self.global_batch // self.num_processes

    @property
    def is_chief(self):
        """Only process 0 writes files."""
        return self.process_id == 0

    def scope(self):
        """Where models are built, loaded and compiled (TensorFlow's strategy scope)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self):
        names = ", ".join(self.devices) if len(self.devices) <= 8 else f"{len(self.devices)}"
        processes = (
            f", {self.num_processes} processes (this is process {self.process_id})"
            if self.num_processes > 1
            else ""
        )
        return (
            f"data-parallel with {self.engine} over {len(self.devices)} devices ({names})"
            f"{processes}; global batch {self.global_batch} = {len(self.devices)} x "
            f"{self.per_device} per device"
        )

    def shard(self, count):
        """Indices of this process's share of ``count`` training images.

        On JAX and PyTorch every batch must split evenly over the devices, and
        every process must take the same number of steps, so the count is cut
        to a multiple of the device count (at most ``len(devices) - 1`` images
        dropped). TensorFlow's strategy splits uneven batches itself.
        """
        import numpy as np

        if self.backend == "tensorflow":
            return np.arange(count)
        usable = count - count % len(self.devices)
        return np.arange(usable)[self.process_id :: self.num_processes]


def _check_batch(global_batch, device_count):
    """Each device takes an equal part (so each process too: it holds as many devices)."""
    if global_batch % device_count:
        raise DistributeError(
            f"--batch-size {global_batch} does not split evenly over {device_count} devices; "
            f"use a multiple of {device_count}."
        )


def data_parallel(global_batch):
    """Set up data parallelism for the current backend and return its :class:`Plan`.

    Call after the backend (and any virtual CPUs or multi-process runtime)
    is chosen and before the model is built.
    """
    import keras

    backend = keras.backend.backend()
    check_supported(backend)
    if backend == "jax":
        import jax

        distribution = keras.distribution.DataParallel()
        # Each process already feeds its own shard (Plan.shard), so Keras must not shard again.
        distribution.auto_shard_dataset = False
        devices = [f"{d.platform}:{d.id}" for d in jax.devices()]
        _check_batch(global_batch, len(devices))
        keras.distribution.set_distribution(distribution)
        return Plan(
            backend,
            "keras.distribution.DataParallel",
            devices,
            jax.local_device_count(),
            global_batch,
            num_processes=jax.process_count(),
            process_id=jax.process_index(),
        )
    if backend == "torch":
        from zoo.training.distribute.torch_ddp import join_process_group

        rank, world, engine = join_process_group()
        _check_batch(global_batch, world)
        return Plan(
            backend,
            f"torch DistributedDataParallel ({engine})",
            [f"process {i}" for i in range(world)],
            1,
            global_batch,
            num_processes=world,
            process_id=rank,
        )
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
        d.name for d in tf.config.list_logical_devices("CPU")
    ]
    _check_batch(global_batch, len(devices))
    strategy = tf.distribute.MirroredStrategy(devices)
    short = [name.replace("/job:localhost/replica:0/task:0", "") for name in devices]
    return Plan(
        backend,
        "tf.distribute.MirroredStrategy",
        short,
        len(devices),
        global_batch,
        strategy=strategy,
    )


def local_copy(model):
    """A single-device copy of ``model``'s network and weights, for evaluation and prediction.

    Under JAX's ``DataParallel`` the last, smaller batch of a test set need
    not split over the devices, and with several processes a prediction is
    spread over hosts; a plain copy on this process's first device avoids both.
    """
    import keras

    weights = model.get_weights()
    keras.distribution.set_distribution(None)
    copy = keras.models.clone_model(model)
    copy.set_weights(weights)
    return copy


def finish_together(plan):
    """Hold every process of a multi-process JAX job here until all arrive.

    Process 0 evaluates and writes the results after training while the
    others have nothing left to do. Were they to exit at once, JAX's
    shutdown barrier would wait for process 0 on a timer (five minutes by
    default) and abort the whole job if the writing took longer, so every
    process waits here first and they all shut down together.
    """
    if plan is None or plan.num_processes == 1:
        return
    if plan.backend == "torch":
        from zoo.training.distribute.torch_ddp import leave, wait_for_everyone

        wait_for_everyone()
        leave()
        return
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("zoo-train finished")

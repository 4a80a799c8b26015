"""How one run spreads over devices: a [`Plan`][], never `None`.

A plan answers every question whose answer depends on the devices and
processes of a run, so the stages in [`zoo.training.run`][] ask it instead
of branching on the backend: where the model is built ([`Plan.scope`][]),
which images this process feeds ([`Plan.training_shard`][]), how large a
batch it feeds ([`Plan.process_batch`][]), how the model is given its
speed-ups ([`Plan.prepare`][]), which model is evaluated
([`Plan.evaluate_copy`][]), and how the processes end together
([`Plan.finish`][]). Without `--distribute` the plan is [`Plan`][]
itself: one process, one device, each answer what plain Keras does.

`zoo-train --distribute data-parallel` keeps one copy of the model on every
device, splits each global batch along its first axis and averages the
gradients across devices, so every step computes the same update as one
device would with the whole batch (synchronous data parallelism, as in
Goyal et al., 2017, "Accurate, large minibatch SGD"), with the engine each
backend ships:

- **JAX**: Keras's `keras.distribution.DataParallel` over every device JAX
  sees, several processes joined by `keras.distribution.initialize`
  ([`zoo.training.distribute.jax_plan`][]);
- **TensorFlow**: `tf.distribute.MirroredStrategy` over the local GPUs, or
  the local CPU devices when there is none
  ([`zoo.training.distribute.tensorflow_plan`][]);
- **PyTorch**: Keras has no distribution API for the torch backend, but the
  model is a `torch.nn.Module`: `DistributedDataParallel`, one process per
  device, started by `torchrun` or `zoo-train --processes N`
  ([`zoo.training.distribute.torch_ddp`][]).

Without accelerators, `--virtual-cpus N` splits the CPU into N devices
(XLA's host device count on JAX, logical CPU devices on TensorFlow): slower
than one device, but it runs the same program as N GPUs would, which is how
the tests check it. Each backend's module is imported only on its backend.
"""

from __future__ import annotations

from zoo.training.distribute.plan import (
    STRATEGIES,
    SUPPORTED_BACKENDS,
    DataParallelPlan,
    DistributeError,
    Plan,
)

__all__ = ["STRATEGIES", "DataParallelPlan", "DistributeError", "Plan", "plan_for"]


def plan_for(config, backend):
    """The [`Plan`][] of a run: `config`'s `--distribute` on `backend`.

    For `--distribute` this starts the devices and joins the job's other
    processes, so call it once the backend is chosen and before any model is
    built. `config` is a [`zoo.training.config.TrainConfig`][]; its batch
    size, when given, is checked against the devices here (a recipe's, later).
    """
    if not config.distribute:
        return Plan(conv_impl=config.conv_impl)
    _check_supported(backend)
    _check_job_flags(config, backend)
    if backend == "jax":
        from zoo.training.distribute.jax_plan import start
    elif backend == "tensorflow":
        from zoo.training.distribute.tensorflow_plan import start
    else:
        from zoo.training.distribute.torch_ddp import start
    plan = start(config)
    plan.check_batch(config.batch_size)
    return plan


def _check_supported(backend):
    if backend not in SUPPORTED_BACKENDS:
        raise DistributeError(
            f"--distribute data-parallel is not available on the {backend} backend: Keras offers "
            "no distribution API for it. Use KERAS_BACKEND=jax (keras.distribution.DataParallel) "
            "or KERAS_BACKEND=tensorflow (tf.distribute.MirroredStrategy)."
        )


def _check_job_flags(config, backend):
    """The flags that start or join a job's processes belong to one backend each."""
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

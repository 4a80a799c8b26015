"""Data parallelism on TensorFlow: `tf.distribute.MirroredStrategy` (TensorFlow only).

The strategy keeps a mirrored copy of every variable on each local GPU (or
each logical CPU device when there is no GPU), splits every global batch over
them, itself, unevenly if it must, and combines the gradients with an all-reduce
(see TensorFlow's guide "Distributed training with Keras"). Keras builds,
loads and compiles models inside the strategy's scope; `fit` is fed the
whole global batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.training.distribute.plan import DataParallelPlan, DistributeError

__all__ = ["TensorFlowPlan", "split_cpu", "start"]


@dataclass(frozen=True)
class TensorFlowPlan(DataParallelPlan):
    """`tf.distribute.MirroredStrategy` over this machine's devices (one process)."""

    strategy: object = field(default=None, repr=False, compare=False)

    def scope(self):
        return self.strategy.scope()

    def process_batch(self, global_batch):
        """The whole global batch: the strategy splits it over the devices."""
        return global_batch

    def shard(self, count):
        """Every image: one process feeds them all, and the strategy splits uneven batches."""
        import numpy as np

        return np.arange(count)

    def training_shard(self, split):
        return split


def start(config):
    """Split the CPU for `--virtual-cpus`, then mirror over the GPUs, else the CPUs."""
    import tensorflow as tf

    if config.virtual_cpus:
        split_cpu(config.virtual_cpus)
    names = [d.name for d in tf.config.list_logical_devices("GPU")] or [
        d.name for d in tf.config.list_logical_devices("CPU")
    ]
    return TensorFlowPlan(
        conv_impl=config.conv_impl,
        engine="tf.distribute.MirroredStrategy",
        devices=tuple(name.replace("/job:localhost/replica:0/task:0", "") for name in names),
        local_devices=len(names),
        strategy=tf.distribute.MirroredStrategy(names),
    )


def split_cpu(count):
    """Split the first physical CPU into `count` logical devices (before TF starts)."""
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

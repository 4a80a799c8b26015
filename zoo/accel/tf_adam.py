"""TensorFlow only: Keras's Adam update done by TensorFlow's fused `ResourceApplyAdam` kernel.

A backend-specific speed-up, used only when Keras runs on TensorFlow. Keras's Adam
updates each weight with about a dozen separate operations (the two moments, the
bias correction, the step), each a pass over the weight and most of them a new
temporary tensor. TensorFlow's `ResourceApplyAdam` (Kingma and Ba, 2015, "Adam: a
method for stochastic optimization") does the update of one weight in one kernel,
in place; what that saves on AlexNet's 62 million weights is in BENCHMARKS.md
(`KERAS_BACKEND=tensorflow python benchmarks/speedups_ab.py --model alexnet`).

The kernel's formula is Keras's, term for term: with `t` the step,
`alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)`, `m += (g - m) * (1 - beta_1)`,
`v += (g**2 - v) * (1 - beta_2)`, `w -= m * alpha / (sqrt(v) + epsilon)`. Only the
rounding of `1 - beta` differs: Keras subtracts in double precision and rounds to float32
(0.001 for `beta_2 = 0.999`), the kernel subtracts the float32 `beta_2` from 1
(0.00099998713), so `v` can differ by about 1.3e-5 of itself and the weights by far less. The
kernel works in place on the Keras optimizer's own moment variables, so checkpoints,
`--resume` and the saved file are unchanged; only the optimizer *instance*'s
`update_step` is replaced (its class stays `keras.optimizers.Adam`). A weight of fewer
than `FUSED_MIN_SIZE` entries, a sparse gradient, or an update inside a distribution
strategy takes Keras's own update.
"""

from __future__ import annotations

import math
import types

import keras
import tensorflow as tf
from keras import ops

__all__ = ["FUSED_MIN_SIZE", "fused_update_step", "use_fused_adam"]

# Weights with fewer entries than this take Keras's update: with every weight fused, LeNet
# (its largest weight 48,000 entries) trained slower than with Keras's update, AlexNet's
# large layers faster (`speedups_ab.py --without fused-adam`, BENCHMARKS.md).
FUSED_MIN_SIZE = 2**16


def fused_update_step(optimizer, gradient, variable, learning_rate):
    """One Adam step for one `variable` (any shape) from its `gradient` (the same shape)."""
    small = math.prod(variable.shape) < FUSED_MIN_SIZE
    if small or isinstance(gradient, tf.IndexedSlices) or tf.distribute.has_strategy():
        return type(optimizer).update_step(optimizer, gradient, variable, learning_rate)
    dtype = variable.dtype
    index = optimizer._get_variable_index(variable)
    momentum, velocity = optimizer._momentums[index], optimizer._velocities[index]
    step = ops.cast(optimizer.iterations + 1, dtype)
    beta_1, beta_2 = ops.cast(optimizer.beta_1, dtype), ops.cast(optimizer.beta_2, dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle,
        m=momentum.handle,
        v=velocity.handle,
        beta1_power=ops.power(beta_1, step),
        beta2_power=ops.power(beta_2, step),
        lr=ops.cast(learning_rate, dtype),
        beta1=beta_1,
        beta2=beta_2,
        epsilon=ops.cast(optimizer.epsilon, dtype),
        grad=ops.cast(gradient, dtype),
    )


def use_fused_adam(optimizer, strategy=None, weights=None):
    """Make a Keras `Adam` (not AMSGrad, not a subclass) update through the fused kernel;
    returns whether it applies. Any other optimizer, a model trained under a distribution
    `strategy`, or one whose `weights` (when given) hold none of `FUSED_MIN_SIZE` entries
    or more, is left as it is."""
    if keras.backend.backend() != "tensorflow" or strategy is not None:
        return False
    if weights is not None and all(math.prod(w.shape) < FUSED_MIN_SIZE for w in weights):
        return False
    if type(optimizer) is not keras.optimizers.Adam or optimizer.amsgrad:
        return False
    if "update_step" not in vars(optimizer):
        optimizer.update_step = types.MethodType(fused_update_step, optimizer)
    return True

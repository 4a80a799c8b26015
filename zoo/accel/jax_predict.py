"""JAX only: the forward pass that `predict` runs, compiled for inference on a CPU.

[`zoo.accel.predict`][] hands each batch here on JAX instead of to Keras's compiled
predict step. What suits the training step slows a forward pass alone:

- **pooling.** The training step pools by reshape ([`zoo.accel.jax_pooling`][]) for
  its fast gradient. Without a gradient, Keras's own `reduce_window` pool is faster,
  so this forward pass is traced with Keras's pooling
  ([`zoo.accel.jax_pooling.keras_pooling`][]).
- **library fusions.** XLA's CPU backend hands element-wise and reduction
  fusions to its YNNPACK library by default. After LeNet-5's first convolution
  (a sum of 25 taps, [`zoo.accel.conv`][]) that library fusion keeps every tap in
  memory before pooling; with only matrix products handed to the library
  (`COMPILER_OPTIONS`, this one compilation only), XLA's own loops compute
  the convolution and the pool in one pass (BENCHMARKS.md, "Issue 32,
  2026-12-06, JAX inference").

The numbers are Keras's: the same layers and weights, only compiled another way
(tests compare them). The forward pass takes the variables' current values on
every call, so it follows training, and it changes no variable.
"""

from __future__ import annotations

import importlib.metadata

import jax
import numpy as np

from zoo.accel.jax_pooling import keras_pooling

__all__ = [
    "COMPILER_OPTIONS",
    "compiler_options",
    "forget_forward",
    "forward_function",
    "predict_on_batch",
]

# XLA's debug option, known to jaxlib 0.10 (an unknown one fails the compilation).
COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
OPTIONS_JAXLIB = ("0.10.",)
_FORWARD = "_zoo_jax_forward"  # where a model keeps its forward pass


def compiler_options():
    """`COMPILER_OPTIONS` on a CPU with a jaxlib that knows them, else `None`."""
    if jax.default_backend() != "cpu":
        return None
    try:
        version = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return None
    return dict(COMPILER_OPTIONS) if version.startswith(OPTIONS_JAXLIB) else None


def forward_function(model):
    """`forward(trainable_values, non_trainable_values, x)`: `model`'s outputs for the
    batch `x`, jitted with [`compiler_options`][]; made once per model."""
    forward = model.__dict__.get(_FORWARD)
    if forward is None:
        options = {"training": False} if model._call_has_training_arg else {}

        def outputs(trainable, non_trainable, x):
            with keras_pooling():  # read while JAX traces, for each new shape
                return model.stateless_call(trainable, non_trainable, x, **options)[0]

        forward = jax.jit(outputs, compiler_options=compiler_options())
        setattr(model, _FORWARD, forward)
    return forward


def forget_forward(model):
    """Drop `model`'s forward pass, traced with the layers as they computed then; the
    next `predict` traces them as they compute now."""
    model.__dict__.pop(_FORWARD, None)


def predict_on_batch(model, x):
    """`model.predict_on_batch(x)` for one NumPy batch `(B, ...)`: `(B, ...)` NumPy outputs."""
    if hasattr(model, "jax_state_sync"):  # inside `fit`, Keras keeps the values aside
        model.jax_state_sync()
    trainable = [variable.value for variable in model.trainable_variables]
    non_trainable = [variable.value for variable in model.non_trainable_variables]
    return np.asarray(forward_function(model)(trainable, non_trainable, x))

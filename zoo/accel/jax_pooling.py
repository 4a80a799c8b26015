"""Pooling whose gradient XLA computes quickly, used on JAX.

A backend-specific speed-up, applied only when Keras runs on JAX. Keras pools with
`lax.reduce_window`, whose gradient for a max is XLA's `select_and_scatter`; on a CPU
that gradient is slow. Two cases of `"valid"`, channels-last pooling are computed
another way:

- **windows that do not overlap** (`pool_size == strides`, LeNet's 2x2), max or average:
  a reshape, `(B, H, W, C)` to `(B, H/k, k, W/k, k, C)`, and a `max` or `mean` over the
  two `k` axes, after dropping the rows and columns past the last whole window, as
  `"valid"` pooling drops them. XLA fuses the reduction and its gradient into simple loops.
  The numbers are Keras's, except where a window holds its maximum twice: Keras's
  gradient goes to one of the tied entries, this one shares it among them. After a ReLU
  the usual tie is a window of zeros, whose gradient the ReLU then stops either way.
- **max pooling whose windows overlap** (AlexNet's 3x3 at stride 2): Keras's maximum, with
  a gradient computed from the window's shifted slices that goes where Keras's goes, ties
  included ([`zoo.accel.jax_max_pool`][]). (For LeNet's windows the reshape measured
  faster: XLA then keeps the first convolution's output instead of computing it again
  inside each later loop.)

The reshape made LeNet-5's TensorFlow training slower (BENCHMARKS.md), so all this is
for JAX only; PyTorch has [`zoo.accel.torch_pooling`][]. As with [`zoo.accel.conv`][],
only the layer *instance*'s `call` changes: the saved model is plain Keras.
"""

from __future__ import annotations

import contextlib
import threading
import types

import keras
from keras import ops

from zoo.accel.conv import on_cpu
from zoo.accel.walk import changed_layers

__all__ = ["apply_to_model", "keras_pooling", "pool_by_reshape", "use_fast_pooling"]

_REDUCTIONS = {keras.layers.MaxPooling2D: ops.max, keras.layers.AveragePooling2D: ops.mean}
_KERAS_POOLING = threading.local()  # .on: trace Keras's own pooling in this thread


@contextlib.contextmanager
def keras_pooling():
    """Inside this block the changed layers pool as Keras does (`reduce_window`): faster
    for a forward pass alone ([`zoo.accel.jax_predict`][]), slower to differentiate."""
    before = getattr(_KERAS_POOLING, "on", False)
    _KERAS_POOLING.on = True
    try:
        yield
    finally:
        _KERAS_POOLING.on = before


def pool_by_reshape(inputs, size, reduce):
    """`reduce` (`ops.max` or `ops.mean`) over non-overlapping `size` windows.

    `inputs` `(B, H, W, C)` gives `(B, H // kh, W // kw, C)`.
    """
    kh, kw = size
    height, width, channels = inputs.shape[1] // kh, inputs.shape[2] // kw, inputs.shape[3]
    whole = inputs[:, : height * kh, : width * kw, :]
    windows = ops.reshape(whole, (-1, height, kh, width, kw, channels))
    return reduce(windows, axis=(2, 4))


def _keras_pools(inputs):
    """Whether Keras's own pooling runs: sizes known only when run, or inside keras_pooling."""
    unknown = inputs.shape[1] is None or inputs.shape[2] is None
    return unknown or getattr(_KERAS_POOLING, "on", False)


def _slices_call(layer, inputs):
    if _keras_pools(inputs):
        return type(layer).call(layer, inputs)
    from zoo.accel.jax_max_pool import max_pool

    return max_pool(inputs, tuple(layer.pool_size), tuple(layer.strides))


def _reshape_call(layer, inputs):
    if _keras_pools(inputs):
        return type(layer).call(layer, inputs)
    return pool_by_reshape(inputs, layer.pool_size, _REDUCTIONS[type(layer)])


def use_fast_pooling(layer):
    """Give a `"valid"`, channels-last `MaxPooling2D` or `AveragePooling2D` whose windows
    do not overlap the reshape call, or such a `MaxPooling2D` whose windows overlap the
    slices call; returns whether either applies."""
    if type(layer) not in _REDUCTIONS:
        return False
    if layer.padding != "valid" or layer.data_format != "channels_last":
        return False
    if tuple(layer.pool_size) == tuple(layer.strides):
        layer.call = types.MethodType(_reshape_call, layer)
    elif type(layer) is keras.layers.MaxPooling2D:
        layer.call = types.MethodType(_slices_call, layer)
    else:
        return False
    return True


def apply_to_model(model):
    """Apply [`use_fast_pooling`][] to every layer of `model` that allows it, on JAX on a CPU
    (only CPUs were measured: on a GPU Keras's own pooling stays); returns the names of the
    layers changed."""
    if not on_cpu():
        return []
    return changed_layers(model, "jax", use_fast_pooling)

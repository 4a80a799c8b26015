"""Non-overlapping pooling as a reshape and a reduction, used on JAX.

A backend-specific speed-up, in `keras.ops`, applied only when Keras runs on
JAX. Keras pools with `lax.reduce_window`, whose gradient for a max is XLA's
`select_and_scatter`; on a CPU that gradient is slow. When the windows do
not overlap (`pool_size == strides`, `"valid"` padding, as in LeNet) a
pool is a reshape: `(B, H, W, C)` becomes `(B, H/k, k, W/k, k, C)` and the
window is the two `k` axes, which a plain `max` or `mean` reduces. XLA
fuses that reduction and its gradient into simple loops. Rows and columns past
the last whole window are dropped first, as `"valid"` pooling drops them.

The forward numbers are Keras's exactly. So are the gradients, except where a
window holds its maximum twice: Keras's gradient goes to one of the tied
entries, this one shares it among them. After a ReLU the usual tie is a
window of zeros, whose gradient the ReLU then stops either way.

It makes LeNet-5's JAX training faster and TensorFlow's slower (BENCHMARKS.md,
`benchmarks/speedups_ab.py`), so it is used on JAX only; PyTorch has
[`zoo.accel.torch_pooling`][]. As with [`zoo.accel.conv`][], only the layer *instance*'s
`call` changes: the saved model is plain Keras.
"""

from __future__ import annotations

import contextlib
import threading
import types

import keras
from keras import ops

from zoo.accel.walk import changed_layers

__all__ = ["apply_to_model", "keras_pooling", "pool_by_reshape", "use_reshape_pooling"]

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


def _reshape_call(layer, inputs):
    if inputs.shape[1] is None or inputs.shape[2] is None or getattr(_KERAS_POOLING, "on", False):
        return type(layer).call(layer, inputs)  # sizes known only when run, or keras_pooling
    return pool_by_reshape(inputs, layer.pool_size, _REDUCTIONS[type(layer)])


def use_reshape_pooling(layer):
    """Give a non-overlapping, `"valid"`, channels-last `MaxPooling2D` or
    `AveragePooling2D` the reshape call; returns whether it applies."""
    if type(layer) not in _REDUCTIONS:
        return False
    if layer.padding != "valid" or layer.data_format != "channels_last":
        return False
    if tuple(layer.pool_size) != tuple(layer.strides):
        return False
    layer.call = types.MethodType(_reshape_call, layer)
    return True


def apply_to_model(model):
    """Apply [`use_reshape_pooling`][] to every layer of `model` that allows it, on JAX;
    returns the names of the layers changed."""
    return changed_layers(model, "jax", use_reshape_pooling)

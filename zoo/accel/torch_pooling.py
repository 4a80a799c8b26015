"""PyTorch only: pooling on channels-last tensors without copying them first.

A backend-specific speed-up, used only when Keras runs on PyTorch. Keras's
PyTorch backend pools a `(batch, H, W, C)` tensor by first copying it into
`(batch, C, H, W)` order, pooling that, and returning a transposed *view*
of the result. Every layer after a pooling layer then reads its input in a
strided order, and the backward pass pays for the copies again.

Yet `x.permute(0, 3, 1, 2)` of a contiguous channels-last tensor already *is*
what PyTorch calls the `channels_last` memory format, and its pooling kernels
read that format directly and write their result in it; permuting back gives
a contiguous `(batch, H', W', C)` tensor. No copy is made anywhere.

The numbers are Keras's: a max pool picks the same element of each window, and
an average pool sums the same window (a test checks both, with gradients). As
with [`zoo.accel.conv`][], only the layer *instance*'s `call` is replaced: the
class stays `keras.layers.MaxPooling2D` or `AveragePooling2D` and a saved
model is plain Keras. Layers with `"same"` padding keep Keras's own code.

What it saves on LeNet-5 is measured by `benchmarks/speedups_ab.py` (BENCHMARKS.md).
"""

from __future__ import annotations

import types

import keras
import torch.nn.functional as F

from zoo.accel.walk import changed_layers

__all__ = ["apply_to_model", "use_channels_last_pooling"]

_POOLS = {keras.layers.MaxPooling2D: F.max_pool2d, keras.layers.AveragePooling2D: F.avg_pool2d}


def _channels_last_call(layer, inputs):
    """`layer`'s pooling of `inputs` `(batch, H, W, C)` without a layout copy."""
    pool = _POOLS[type(layer)]
    if inputs.device.type == "meta":  # Keras tracing shapes: its own code knows how
        return type(layer).call(layer, inputs)
    as_nchw = inputs.permute(0, 3, 1, 2)  # a view, in PyTorch's channels_last format
    pooled = pool(as_nchw, kernel_size=layer.pool_size, stride=layer.strides)
    return pooled.permute(0, 2, 3, 1)


def use_channels_last_pooling(layer):
    """Give one Keras 2-D pooling layer the copy-free call; returns whether it applies.

    Applies to `MaxPooling2D` and `AveragePooling2D` (not their subclasses)
    with `"valid"` padding on channels-last data.
    """
    if type(layer) not in _POOLS:
        return False
    if layer.padding != "valid" or layer.data_format != "channels_last":
        return False
    layer.call = types.MethodType(_channels_last_call, layer)
    return True


def apply_to_model(model):
    """Apply [`use_channels_last_pooling`][] to every layer of `model` that allows it,
    on PyTorch; returns the names of the layers changed."""
    return changed_layers(model, "torch", use_channels_last_pooling)

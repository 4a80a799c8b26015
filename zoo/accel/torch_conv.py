"""PyTorch only: a `Conv2D` whose bias is added inside the convolution kernel.

A backend-specific speed-up, used only when Keras runs on PyTorch. Keras's
`Conv2D.call` convolves, then adds the bias as a separate broadcast `add`
over the whole `(batch, H, W, filters)` output, and its gradient is a
separate reduction. With few filters that add is slow (LeNet-5 trains
faster with the bias in the kernel: `benchmarks/speedups_ab.py --each`, BENCHMARKS.md).
PyTorch's convolution kernel takes the bias as an argument and adds it while
writing its output, and computes its gradient in the same backward pass.

[`use_fused_bias`][] replaces the layer *instance*'s `call` with one that
passes the bias to `torch.nn.functional.conv2d`. The input is read in place
as PyTorch's `channels_last` memory format, exactly as Keras's own PyTorch
convolution reads it, so the outputs are Keras's exactly (a test compares
them, and the gradients within 1e-6). As with [`zoo.accel.torch_pooling`][], the
class stays `keras.layers.Conv2D` and a saved model is plain Keras. It
applies to ungrouped channels-last layers with `"valid"` padding, or
`"same"` padding at stride 1 with an odd (dilated) kernel, which pads both
sides alike; a layer
whose convolution is another implementation ([`zoo.accel.conv`][]), quantised or
with LoRA enabled runs Keras's own `call`.
"""

from __future__ import annotations

import types

import keras
import torch.nn.functional as F

from zoo.accel.walk import changed_layers

__all__ = ["apply_to_model", "convolve", "has_fused_bias", "use_fused_bias"]


def _keeps_keras_call(layer, inputs):
    """Whether this call must go through Keras's own `Conv2D.call`."""
    return (
        inputs.device.type == "meta"  # Keras tracing shapes
        or "convolution_op" in vars(layer)  # zoo.accel.conv chose im2col or taps
        or layer.lora_enabled
        or layer.quantization_mode is not None
    )


def _spans(layer):
    """How far each dilated kernel reaches beyond its first pixel, per spatial axis."""
    sizes, rates = layer.kernel_size, layer.dilation_rate
    return [rate * (size - 1) for size, rate in zip(sizes, rates, strict=True)]


def _padding(layer):
    """PyTorch's `padding` for the layer: none, or what Keras's `"same"` pads on each side."""
    if layer.padding == "valid":
        return (0, 0)
    return tuple(span // 2 for span in _spans(layer))


def _fused_bias_call(layer, inputs):
    """`layer`'s output for `inputs` `(batch, H, W, C)`: convolution, bias, activation."""
    if _keeps_keras_call(layer, inputs):
        return type(layer).call(layer, inputs)
    outputs = convolve(layer, inputs)
    return outputs if layer.activation is None else layer.activation(outputs)


def convolve(layer, inputs):
    """The convolution and bias of `layer` (a fused-bias `Conv2D`), without its activation."""
    as_nchw = inputs.permute(0, 3, 1, 2)  # a view, in PyTorch's channels_last format
    kernel = layer.kernel.value.permute(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
    bias = layer.bias.value if layer.use_bias else None
    outputs = F.conv2d(as_nchw, kernel, bias, layer.strides, _padding(layer), layer.dilation_rate)
    return outputs.permute(0, 2, 3, 1)


def has_fused_bias(layer, inputs=None):
    """Whether `layer` runs the fused-bias `call` (for `inputs`, when given)."""
    call = vars(layer).get("call")
    if getattr(call, "__func__", None) is not _fused_bias_call:
        return False
    return inputs is None or not _keeps_keras_call(layer, inputs)


def use_fused_bias(layer):
    """Give one `keras.layers.Conv2D` (not a subclass) the fused-bias `call`;
    returns whether it applies."""
    if type(layer) is not keras.layers.Conv2D:
        return False
    if layer.data_format != "channels_last" or layer.groups != 1:
        return False
    if layer.padding == "same":  # Keras pads both sides alike only for odd spans at stride 1
        if tuple(layer.strides) != (1, 1) or any(span % 2 for span in _spans(layer)):
            return False
    layer.call = types.MethodType(_fused_bias_call, layer)
    return True


def apply_to_model(model):
    """Apply [`use_fused_bias`][] to every layer of `model` that allows it, on PyTorch;
    returns the names of the layers changed."""
    return changed_layers(model, "torch", use_fused_bias)

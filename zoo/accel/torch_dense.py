"""PyTorch only: a large `Dense` layer's inference through oneDNN's matrix product.

A backend-specific speed-up, used only when Keras runs on PyTorch. Keras's
`Dense.call` multiplies with `torch.matmul`, adds the bias, then applies the
activation: three passes, and on the CPU the product is MKL's `sgemm`. On a
2-core AMD EPYC, MKL took about twice oneDNN's time
for AlexNet's classifier at batch 16, a quarter of an inference batch
(BENCHMARKS.md, "Issue 32, 2026-12-07, sixth session"). PyTorch's CPU build also ships oneDNN, whose
linear primitive (`torch.ops.mkldnn._linear_pointwise`) computes the product,
the bias and a ReLU in one call.

[`use_onednn_dense`][] replaces the layer *instance*'s `call` with one that
takes that primitive when nothing is recording gradients: Keras's `predict`
and `evaluate` on PyTorch run under `torch.no_grad()`, so those are the calls
that change, and `fit`'s forward pass and any gradient a user asks for keep
Keras's own. The sum runs in another order, so outputs differ from Keras's by
float32 rounding (a test bounds them at 1e-5 of the largest); the class stays
`keras.layers.Dense` and a saved model is plain Keras. Only kernels of at
least `MIN_ENTRIES` entries take it: on smaller ones (LeNet's) oneDNN's call
costs more than it saves. Inputs other than float32 `(batch, features)` CPU
tensors, quantised layers and LoRA run Keras's own `call`.

MKL tunes its `sgemm` for Intel's CPUs: on an Intel Xeon it ran the same
products as fast as oneDNN reading Keras's kernel, or faster (BENCHMARKS.md,
"Issue 32, 2026-12-08"). So the layers change only where
[`mkl_is_slow_here`][] says PyTorch's products go to MKL on another vendor's
CPU, and keep Keras's call everywhere else.
"""

from __future__ import annotations

import functools
import types

import keras
import torch

from zoo.accel.cpu import cpu_vendor
from zoo.accel.walk import changed_layers

__all__ = [
    "MIN_ENTRIES",
    "apply_to_model",
    "has_onednn_dense",
    "mkl_is_slow_here",
    "use_onednn_dense",
]

# Smallest kernel (inputs x units) that takes oneDNN: at 1024 x 1024 it was 1.2 to 1.5x faster
# than Keras's three passes at batch 16 and 128; at 512 x 512 and below within 20 % either way.
MIN_ENTRIES = 1 << 20


def _linear_available():
    """Whether this PyTorch build has oneDNN's linear primitive."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


@functools.cache
def mkl_is_slow_here():
    """Whether PyTorch multiplies with MKL on a CPU that is known and not Intel's
    ([`zoo.accel.cpu.cpu_vendor`][])."""
    return torch.backends.mkl.is_available() and cpu_vendor() not in ("", "GenuineIntel")


def _keeps_keras_call(layer, inputs):
    """Whether this call must go through Keras's own `Dense.call`."""
    return (
        torch.is_grad_enabled()  # fit, or a gradient the caller wants
        or not isinstance(inputs, torch.Tensor)
        or inputs.device.type != "cpu"  # also "meta": Keras tracing shapes
        or inputs.dtype != torch.float32
        or inputs.ndim != 2
        or layer.lora_enabled  # its `kernel` is then a sum, not a variable
        or layer.quantization_mode is not None
        or layer.kernel.value.dtype != torch.float32
    )


def _linear(inputs, weight, bias, post_op):
    """oneDNN's `inputs @ weight.T + bias`, then `post_op` (`"relu"` or `"none"`)."""
    return torch.ops.mkldnn._linear_pointwise(inputs, weight, bias, post_op, [], "")


def _onednn_call(layer, inputs, training=None):
    """`layer`'s output for `inputs` `(batch, features)`: product, bias, activation."""
    if _keeps_keras_call(layer, inputs):
        return type(layer).call(layer, inputs, training=training)
    fused_relu = layer.activation is keras.activations.relu
    bias = layer.bias.value if layer.use_bias else None
    weight = layer.kernel.value.t()  # (inputs, units) -> oneDNN's (units, inputs), a view
    outputs = _linear(inputs, weight, bias, "relu" if fused_relu else "none")
    if fused_relu or layer.activation is None:
        return outputs
    return layer.activation(outputs)


def has_onednn_dense(layer):
    """Whether `layer` runs the oneDNN `call` when not recording gradients."""
    call = vars(layer).get("call")
    return getattr(call, "__func__", None) is _onednn_call


def use_onednn_dense(layer):
    """Give one built `keras.layers.Dense` (not a subclass) with a kernel of at least
    `MIN_ENTRIES` entries the oneDNN `call`, where [`mkl_is_slow_here`][]; returns whether
    it applies."""
    if type(layer) is not keras.layers.Dense or not layer.built or not _linear_available():
        return False
    if not mkl_is_slow_here():
        return False
    if len(layer.kernel.shape) != 2 or layer.kernel.shape[0] * layer.kernel.shape[1] < MIN_ENTRIES:
        return False
    layer.call = types.MethodType(_onednn_call, layer)
    return True


def apply_to_model(model):
    """Apply [`use_onednn_dense`][] to every layer of `model` that allows it, on PyTorch;
    returns the names of the layers changed."""
    return changed_layers(model, "torch", use_onednn_dense)

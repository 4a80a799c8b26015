"""JAX only: a convolution computed forward by one formula and backward by another.

A backend-specific speed-up behind [`zoo.accel.conv`][]'s `"taps"` implementation, which
passes its forward formula in (so this module does not import [`zoo.accel.conv`][]).
On a CPU, XLA's convolution kernel is slow forward for a layer with one or a
few input channels (LeNet's first layer), while
[`zoo.accel.conv.conv2d_taps`][], a sum of 25 broadcast products, fuses into one
fast pass. Differentiated automatically, though, that sum is slower backward
than the native kernel's gradient (timings: `benchmarks/conv_kernels.py`,
BENCHMARKS.md). `jax.custom_vjp` lets each direction take its fast formula: the
forward pass sums the taps, the backward pass is exactly the gradient of
`keras.ops.conv`. Both compute the same convolution, so the gradients are
the true ones (the tests compare them with NumPy's within 1e-5).
"""

from __future__ import annotations

import functools

import jax
from keras import ops

__all__ = ["with_native_gradients"]


def _native(inputs, kernel, strides, padding, dilation_rate):
    return ops.conv(inputs, kernel, strides, padding, "channels_last", dilation_rate)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 3, 4, 5))
def with_native_gradients(forward, inputs, kernel, strides, padding, dilation_rate):
    """`forward(inputs, kernel, strides, padding, dilation_rate)` on the way forward, the
    native convolution's gradients on the way back. `inputs` `(B, H, W, C_in)` and
    `kernel` `(kh, kw, C_in, C_out)` give `(B, H_out, W_out, C_out)`;
    `forward` must compute the same convolution ([`zoo.accel.conv.conv2d_taps`][] does)."""
    return forward(inputs, kernel, strides, padding, dilation_rate)


def _forward(forward, inputs, kernel, strides, padding, dilation_rate):
    return forward(inputs, kernel, strides, padding, dilation_rate), (inputs, kernel)


def _backward(forward, strides, padding, dilation_rate, saved, upstream):
    inputs, kernel = saved
    _, pullback = jax.vjp(
        lambda x, w: _native(x, w, strides, padding, dilation_rate), inputs, kernel
    )
    return pullback(upstream)


with_native_gradients.defvjp(_forward, _backward)

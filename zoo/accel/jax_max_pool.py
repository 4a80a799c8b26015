"""JAX only: max pooling whose gradient is computed from shifted slices: where Keras sends it.

A backend-specific speed-up behind [`zoo.accel.jax_pooling`][], for windows that overlap
(AlexNet's 3x3 at stride 2). Keras pools with `lax.reduce_window`, and XLA differentiates
a maximum over windows with `select_and_scatter`, which is slow on a CPU: for AlexNet's
three pools, several times PyTorch's time (BENCHMARKS.md, "Issue 32, 2026-12-07, second
session"; `benchmarks/pool_impls.py`).

A `kh x kw` window at strides `(sh, sw)` visits each of its `kh * kw` offsets `(i, j)` once
for each output, so pooling compares `kh * kw` strided slices of the input,
`x[:, i::sh, j::sw, :]` cut to the output's size. [`max_pool`][] computes the maximum as
Keras does and, for the gradient, which slice holds it: the first in row-major window
order when several tie, the entry `select_and_scatter` picks. On the way back each slice's
share of the upstream gradient goes back where that slice came from, by `lax.pad` (interior
padding `stride - 1` spreads it over every `stride`-th row and column), and the shares are
summed: a few fused loops instead of a scatter. The values are Keras's, and so is where
each gradient goes, ties included; an entry inside two windows adds its two shares in
another order than `select_and_scatter`, which can change the sum's last bit (tests).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from keras import ops

__all__ = ["max_pool"]


def _output_size(shape, pool_size, strides):
    return tuple((shape[axis + 1] - pool_size[axis]) // strides[axis] + 1 for axis in (0, 1))


def _offsets(pool_size):
    return [(i, j) for i in range(pool_size[0]) for j in range(pool_size[1])]


def _slices(inputs, pool_size, strides):
    """The `kh * kw` strided slices, each `(B, H_out, W_out, C)`, in row-major window order."""
    (out_h, out_w), (sh, sw) = _output_size(inputs.shape, pool_size, strides), strides
    return [
        inputs[:, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw, :]
        for i, j in _offsets(pool_size)
    ]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool(inputs, pool_size, strides):
    """`"valid"` max pooling of channels-last `inputs` `(B, H, W, C)` with `pool_size`
    `(kh, kw)` and `strides` `(sh, sw)`: `(B, (H - kh) // sh + 1, (W - kw) // sw + 1, C)`."""
    return ops.max_pool(inputs, pool_size, strides, "valid", "channels_last")


def _forward(inputs, pool_size, strides):
    slices = _slices(inputs, pool_size, strides)
    index_type = jnp.int8 if len(slices) <= 127 else jnp.int32
    best, which = slices[0], jnp.zeros(slices[0].shape, index_type)
    for index, candidate in enumerate(slices[1:], start=1):  # a later slice wins only if larger
        which = jnp.where(candidate > best, jnp.asarray(index, index_type), which)
        best = jnp.maximum(best, candidate)
    return max_pool(inputs, pool_size, strides), (which, inputs.shape)


def _backward(pool_size, strides, saved, upstream):
    which, shape = saved
    out_h, out_w = upstream.shape[1:3]
    zero = jnp.zeros((), upstream.dtype)
    gradient = None
    for index, (i, j) in enumerate(_offsets(pool_size)):
        share = jnp.where(which == index, upstream, zero)
        rows = (i, shape[1] - i - (strides[0] * (out_h - 1) + 1), strides[0] - 1)
        cols = (j, shape[2] - j - (strides[1] * (out_w - 1) + 1), strides[1] - 1)
        placed = lax.pad(share, zero, [(0, 0, 0), rows, cols, (0, 0, 0)])
        gradient = placed if gradient is None else gradient + placed
    return (gradient,)


max_pool.defvjp(_forward, _backward)

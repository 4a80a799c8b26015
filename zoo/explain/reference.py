"""Plain NumPy reference implementations of the layers the zoo uses.

Everything is channels-last: an image batch is `(N, H, W, C)`; a single
image `(H, W, C)` is accepted too and returned without the batch axis.
Kernels are stored as Keras stores them: `(kh, kw, C_in, C_out)`.

These functions are for checking and teaching, so the sliding window stays
visible: `_windows` cuts the (padded) input into every window the
kernel visits, and each layer is one reduction over those windows. NumPy's
`sliding_window_view` makes that a view, not a copy of the input.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from zoo.shapes import conv_output_size, pair, resolve_padding

__all__ = [
    "conv2d",
    "avg_pool2d",
    "max_pool2d",
    "global_avg_pool2d",
    "global_max_pool2d",
    "adaptive_avg_pool2d",
    "dense",
    "dropout",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "local_response_norm",
]


def _as_batch(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return x[None], True
    if x.ndim == 4:
        return x, False
    raise ValueError(f"expected (H, W, C) or (N, H, W, C), got an array of shape {x.shape}.")


def _pad(x, padding, window, stride, dilation, fill=0.0):
    """Pad axes 1 and 2 of `x` as `padding` says (see `zoo.shapes`).

    `padding` is one setting for both axes, or `((top, bottom), (left, right))`.
    """
    per_axis = (
        padding
        if isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list))
        else (padding, padding)
    )
    pads = [
        resolve_padding(per_axis[a], x.shape[1 + a], window[a], stride[a], dilation[a])
        for a in range(2)
    ]
    return np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)], constant_values=fill)


def _windows(x, window, stride, dilation):
    """Every window the kernel visits: shape `(N, out_h, out_w, C, kh, kw)`.

    A dilated kernel of size `k` spans `d * (k - 1) + 1` pixels and reads
    every `d`-th one; the stride keeps every `s`-th window position.
    """
    span = [dilation[a] * (window[a] - 1) + 1 for a in range(2)]
    for a in range(2):  # let zoo.shapes raise its clear message if nothing fits
        conv_output_size(x.shape[1 + a], window[a], stride[a], 0, dilation[a])
    views = sliding_window_view(x, span, axis=(1, 2))
    return views[:, :: stride[0], :: stride[1], :, :: dilation[0], :: dilation[1]]


def conv2d(x, kernel, bias=None, stride=1, padding=0, dilation=1):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    Args:
        x: `(H, W, C_in)` or `(N, H, W, C_in)`.
        kernel: `(kh, kw, C_in, C_out)`; `C_out` kernels give `C_out` maps.
        bias: `(C_out,)` or None.
        stride, dilation: an int or an `(h, w)` pair.
        padding: `"valid"`, `"same"`, an int, a `(before, after)` pair,
            or `((top, bottom), (left, right))`.

    Returns:
        `(N, out_h, out_w, C_out)` (no batch axis if `x` had none). Each
        output value is the sum, over every input channel and every kernel
        tap, of input times weight, plus the bias.
    """
    x, single = _as_batch(x)
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4 or kernel.shape[2] != x.shape[-1]:
        raise ValueError(f"kernel must be (kh, kw, C_in={x.shape[-1]}, C_out), got {kernel.shape}.")
    window, stride, dilation = kernel.shape[:2], pair(stride), pair(dilation)
    x = _pad(x, padding, window, stride, dilation)
    patches = _windows(x, window, stride, dilation)  # (N, oh, ow, C_in, kh, kw)
    out = np.einsum("nhwcij,ijco->nhwo", patches, kernel)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)
    return out[0] if single else out


def _pool(x, pool_size, stride, padding, reduce):
    x, single = _as_batch(x)
    window = pair(pool_size)
    stride = pair(stride if stride is not None else pool_size)
    fill = -np.inf if reduce is np.max else np.nan
    x = _pad(x, padding, window, stride, (1, 1), fill=fill)
    patches = _windows(x, window, stride, (1, 1))
    out = reduce(patches, axis=(-2, -1))
    return out[0] if single else out


def avg_pool2d(x, pool_size=2, stride=None, padding="valid"):
    """Average of each window; padded cells (`"same"`) are left out of the mean, as in Keras."""
    return _pool(x, pool_size, stride, padding, np.nanmean)


def max_pool2d(x, pool_size=2, stride=None, padding="valid"):
    """Maximum of each window (`stride` defaults to `pool_size`)."""
    return _pool(x, pool_size, stride, padding, np.max)


def global_avg_pool2d(x):
    """Mean of each channel over all positions: `(N, H, W, C) -> (N, C)`."""
    x, single = _as_batch(x)
    out = x.mean(axis=(1, 2))
    return out[0] if single else out


def global_max_pool2d(x):
    """Maximum of each channel over all positions: `(N, H, W, C) -> (N, C)`."""
    x, single = _as_batch(x)
    out = x.max(axis=(1, 2))
    return out[0] if single else out


def adaptive_bins(in_size, out_size):
    """PyTorch's adaptive-pooling bins: `[floor(i*W/o), ceil((i+1)*W/o))` for each output i."""
    return [(i * in_size // out_size, -(-(i + 1) * in_size // out_size)) for i in range(out_size)]


def adaptive_avg_pool2d(x, output_size):
    """Average over PyTorch's adaptive bins, giving exactly `output_size` per axis."""
    x, single = _as_batch(x)
    out_h, out_w = pair(output_size)
    rows = adaptive_bins(x.shape[1], out_h)
    cols = adaptive_bins(x.shape[2], out_w)
    out = np.stack(
        [
            np.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in cols], axis=1)
            for r0, r1 in rows
        ],
        axis=1,
    )
    return out[0] if single else out


def dense(x, kernel, bias=None):
    """Fully connected layer: `x @ kernel + bias` with `kernel` of shape `(in, out)`."""
    out = np.asarray(x, dtype=np.float64) @ np.asarray(kernel, dtype=np.float64)
    return out if bias is None else out + np.asarray(bias, dtype=np.float64)


def local_response_norm(x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75):
    """Krizhevsky et al. (2012), section 3.3, across channels (last axis).

    `b[c] = a[c] / (k + alpha * sum_{j=c-r}^{c+r} a[j]^2) ** beta` with
    `n = 2r + 1 = 5`, `k = 2`, `alpha = 1e-4`, `beta = 0.75`.
    """
    x = np.asarray(x, dtype=np.float64)
    squared = np.pad(x**2, [(0, 0)] * (x.ndim - 1) + [(depth_radius, depth_radius)])
    channels = x.shape[-1]
    window_sum = sum(squared[..., j : j + channels] for j in range(2 * depth_radius + 1))
    return x / (bias + alpha * window_sum) ** beta


def dropout(x, rate, seed=None, training=True):
    """Inverted dropout: zero values with probability `rate`, scale the rest by `1/(1-rate)`.

    At inference (`training=False`) it is the identity. The scaling keeps
    the expected sum of the output equal to the sum of the input.
    """
    x = np.asarray(x, dtype=np.float64)
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate}.")
    if not training or rate == 0:
        return x
    keep = np.random.default_rng(seed).random(x.shape) >= rate
    return np.where(keep, x / (1.0 - rate), 0.0)


def relu(x):
    """`max(0, x)`."""
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


def sigmoid(x):
    """`1 / (1 + exp(-x))`, into (0, 1)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def tanh(x):
    """`(e^x - e^-x) / (e^x + e^-x)`, into (-1, 1)."""
    return np.tanh(np.asarray(x, dtype=np.float64))


def softmax(x, axis=-1):
    """`exp(z_i) / sum_j exp(z_j)` along `axis` (shifted by the max for stability)."""
    z = np.asarray(x, dtype=np.float64)
    z = np.exp(z - z.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)

"""Output-size arithmetic for convolution and pooling, in pure Python.

Nothing here imports Keras, so the formulas can be read, tested and used on
their own. The builders use [`trace_spatial_sizes`][] and
[`min_input_size`][] to validate a user's `input_shape` from the layers'
own settings rather than from a hand-written table.

The one formula behind everything (per spatial axis):

```python
out = floor((W + P_before + P_after - D * (K - 1) - 1) / S) + 1
```

where `W` is the input size, `K` the kernel (or pool) size, `S` the
stride, `D` the dilation and `P` the zero padding on each side. With a
symmetric integer padding `P` this is the familiar
`floor((W + 2P - D(K - 1) - 1) / S) + 1`.
"""

from __future__ import annotations

import math

from zoo.errors import ZooError

__all__ = [
    "conv_output_size",
    "pool_output_size",
    "pair",
    "resolve_padding",
    "same_padding",
    "trace_spatial_sizes",
    "min_input_size",
    "SpatialSizeError",
]


class SpatialSizeError(ZooError):
    """A feature map would shrink below 1 pixel (or an argument is invalid)."""


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpatialSizeError(f"{name} must be an integer >= 1, got {value!r}.")


def same_padding(size, kernel_size, stride=1, dilation=1):
    """Return the `(before, after)` zero padding Keras uses for `"same"`.

    Keras (like TensorFlow) makes the output `ceil(size / stride)` long and
    puts the odd pixel of padding, if any, *after* the input.
    """
    effective = dilation * (kernel_size - 1) + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def pair(value):
    """`(value, value)` for one setting of both axes; a tuple or list as a tuple.

    Keras and PyTorch let a layer's `kernel_size`, `strides` or
    `padding` be one number for height and width alike or one per axis.
    """
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def resolve_padding(padding, size, kernel_size, stride, dilation):
    """The `(before, after)` zero padding of one axis, in pixels.

    `padding` is `"valid"` (none), `"same"` (Keras's, see
    [`same_padding`][]), an int for both sides or a `(before, after)`
    pair. Raises [`SpatialSizeError`][] for anything else, or a negative
    amount.
    """
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return same_padding(size, kernel_size, stride, dilation)
    one = isinstance(padding, int) and not isinstance(padding, bool)
    if not one and not (isinstance(padding, (tuple, list)) and len(padding) == 2):
        raise SpatialSizeError(
            f"padding must be 'valid', 'same', an int or a (before, after) pair, got {padding!r}."
        )
    pads = pair(padding)
    if any(not isinstance(p, int) or p < 0 for p in pads):
        raise SpatialSizeError(f"padding values must be integers >= 0, got {padding!r}.")
    return pads


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Length of a convolution's output along one axis.

    `out = floor((W + P_before + P_after - D * (K - 1) - 1) / S) + 1`

    Args:
        size: input length `W` (pixels).
        kernel_size: kernel length `K`.
        stride: step `S` between windows (>= 1).
        padding: `"valid"` (no padding), `"same"` (Keras semantics: output
            `ceil(W / S)`), an int `P` added on both sides, or a
            `(before, after)` pair.
        dilation: spacing `D` between kernel taps (>= 1); the kernel then
            covers `D * (K - 1) + 1` pixels.

    Returns:
        The output length, an int >= 1.

    Raises:
        SpatialSizeError: (a `ValueError`) an argument below 1, or a kernel
            that does not fit in the padded input.

    Example: a 6-pixel row, 3-pixel kernel: `conv_output_size(6, 3) == 4`;
    with stride 2: 2; with padding 1: 6; with dilation 2: 2.
    """
    for name, value in (
        ("size", size),
        ("kernel_size", kernel_size),
        ("stride", stride),
        ("dilation", dilation),
    ):
        _check_positive(name, value)
    before, after = resolve_padding(padding, size, kernel_size, stride, dilation)
    padded = size + before + after
    effective = dilation * (kernel_size - 1) + 1
    if effective > padded:
        raise SpatialSizeError(
            f"kernel covers {effective} pixels (kernel_size={kernel_size}, "
            f"dilation={dilation}) but the padded input is only {padded} pixels "
            f"(size={size}, padding={padding!r}); the output would be empty."
        )
    return (padded - effective) // stride + 1


def pool_output_size(size, pool_size, stride=None, padding="valid"):
    """Length of a pooling layer's output along one axis.

    Pooling slides a window exactly like a convolution without dilation, so
    this is [`conv_output_size`][] with `dilation=1`. `stride` defaults
    to `pool_size` (non-overlapping windows), as in Keras.

    Example: `pool_output_size(4, 2, stride=1) == 3`; `pool_output_size(28, 2) == 14`.
    """
    if stride is None:
        stride = pool_size
    return conv_output_size(size, pool_size, stride=stride, padding=padding)


def _layer_step(layer, height, width):
    """Apply one Keras layer's spatial arithmetic; return the new (h, w).

    Layers are recognised by their attributes, not their class, so this
    module needs no Keras import: anything with a `kernel_size` is a
    convolution, anything with a `pool_size` a pooling window, anything with
    an `output_size` a fixed-size (adaptive) pooling, and anything whose
    `padding` is numbers a zero-padding layer. Other layers keep the size.
    """
    sizes = [height, width]
    padding = getattr(layer, "padding", None)
    if hasattr(layer, "kernel_size"):
        kernel, stride = pair(layer.kernel_size), pair(layer.strides)
        dilation = pair(getattr(layer, "dilation_rate", 1))
        return tuple(
            conv_output_size(sizes[a], kernel[a], stride[a], padding, dilation[a]) for a in range(2)
        )
    if hasattr(layer, "pool_size"):
        pool = pair(layer.pool_size)
        stride = pair(layer.strides or layer.pool_size)
        return tuple(pool_output_size(sizes[a], pool[a], stride[a], padding) for a in range(2))
    if hasattr(layer, "output_size"):
        return tuple(pair(layer.output_size))
    if isinstance(padding, (tuple, list)):
        pads = [pair(p) for p in padding]
        return tuple(sizes[a] + pads[a][0] + pads[a][1] for a in range(2))
    return height, width


def trace_spatial_sizes(layers, height, width):
    """Follow a feature map's (height, width) through a list of Keras layers.

    Args:
        layers: Keras layers in the order they are applied (not yet built is
            fine: only their settings are read). Tracing stops at the first
            layer that flattens or pools globally (no `data_format` axis
            arithmetic applies after it).
        height, width: input size in pixels.

    Returns:
        A list of `(layer_name, (height, width))` after each traced layer.

    Raises:
        SpatialSizeError: naming the layer where the feature map vanishes.
    """
    trace = []
    for layer in layers:
        if layer.__class__.__name__ == "Flatten" or hasattr(layer, "keepdims"):
            break
        try:
            height, width = _layer_step(layer, height, width)
        except SpatialSizeError as error:
            raise SpatialSizeError(
                f"the feature map vanishes at layer '{layer.name}' "
                f"(its input is {height}x{width}): {error}"
            ) from None
        trace.append((layer.name, (height, width)))
    return trace


def min_input_size(layers, limit=4096):
    """Smallest square input side for which every traced layer keeps >= 1 pixel.

    Found by bisection over [`trace_spatial_sizes`][]: output sizes never
    shrink when the input grows, so the valid sizes form a range `[m, inf)`.
    """

    def fits(side):
        try:
            trace_spatial_sizes(layers, side, side)
        except SpatialSizeError:
            return False
        return True

    if not fits(limit):
        raise SpatialSizeError(f"no input up to {limit}x{limit} fits these layers.")
    low, high = 1, limit
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return low

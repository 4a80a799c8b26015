"""How a `Conv2D` computes: Keras's native kernel, im2col, taps, or the kernel on chunks.

The *model* never changes, only the *implementation* of its convolutions:

```python
import zoo
zoo.set_conv_impl("im2col")          # every Conv2D built from now on
with zoo.conv_impl("native"):        # or only inside this block
    model = zoo.lenet()
zoo.accel.conv.apply_to_model(model, "auto")   # or an existing model, layer by layer
```

Keras's `Conv2D.call` computes `self.convolution_op(inputs, self.kernel)`.
[`apply_conv_impl`][] sets that attribute *on the layer instance*: the layer's
class stays `keras.layers.Conv2D`, its weights and config are untouched, so a
saved `.keras` file is a plain Keras model that loads anywhere (the zoo need
not be installed) and runs the native kernel there, with the same outputs.

`"auto"` looks the layer up in `AUTO_TABLE` (measured per backend and
per shape class) and uses native wherever the table says nothing.
"""

from __future__ import annotations

import contextlib
import functools
import types

import keras
from keras import ops

from zoo.errors import ZooError
from zoo.shapes import same_padding

__all__ = [
    "AUTO_TABLE",
    "CONV_IMPLS",
    "apply_conv_impl",
    "apply_to_model",
    "auto_choice",
    "conv2d_chunked",
    "conv2d_im2col",
    "conv2d_taps",
    "conv_impl",
    "get_conv_impl",
    "layer_conv_impl",
    "on_cpu",
    "set_conv_impl",
    "shape_class",
]

CONV_IMPLS = ("auto", "native", "im2col", "taps", "chunked")

# Where another implementation beat the native kernel on forward+backward by at least 15 %,
# per backend and shape class (see shape_class), and no whole training step measured slower
# with it; every other layer is native, and so is every layer on a GPU or TPU (only CPUs were
# measured), with `python benchmarks/conv_impls.py` (BENCHMARKS.md has the tables). JAX:
# LeNet's conv1 (5x5 on 1 channel) with taps, whose forward pass fuses into one loop and whose
# gradients are XLA's own (zoo.accel.jax_conv): 0.24x on a 2-core AVX-512 CPU, 0.32x on a
# 2-core AVX2 one. AlexNet's conv1 (11x11 stride 4 on 3 channels) chunked on the AVX2 CPU:
# 0.50x (im2col 0.52x), forward alone 0.45x to 0.76x (im2col 0.92x to 1.02x). LeNet's conv2
# with im2col was 0.71x on the AVX-512 CPU and 0.74x to 1.06x on the AVX2 one, but whole
# training epochs were no faster with it there and predict a quarter slower (`speedups_ab.py
# --variant conv2=im2col --predict`): native.
# TensorFlow and PyTorch: nothing 15 % faster than native. Rerun the script on your machine.
AUTO_TABLE = {
    "jax": {("1-4", 5, 1): "taps", ("1-4", 11, 4): "chunked"},
    "tensorflow": {},
    "torch": {},
}

# Upper bounds of the input-channel buckets of a shape class ("1-4", "5-16", "17-128", "129+").
CHANNEL_BUCKETS = (4, 16, 128)

_setting = "auto"


# --------------------------------------------------------------------------- im2col


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _pad_like_keras(x, padding, kernel_size, strides, dilation_rate):
    """Zero-pad height and width as Keras's `"valid"` (none) or `"same"` does.

    `"same"` is TensorFlow's: the output is `ceil(in / stride)` long, the
    padding `total = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)`,
    `total // 2` before the input and the rest after it.
    """
    if padding == "valid":
        return x
    pads = [
        same_padding(x.shape[1 + a], kernel_size[a], strides[a], dilation_rate[a]) for a in range(2)
    ]
    return ops.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])


def _tap_slices(inputs, kernel_shape, strides, padding, dilation_rate):
    """Pad as Keras does; return `(taps, h_out, w_out)`, one slice per kernel tap.

    Kernel tap `(i, j)` meets, at every output position `(y, x)`, the input
    pixel `(i * dh + y * sh, j * dw + x * sw)`: one strided slice of the padded
    input, `(B, H_out, W_out, C_in)`. The taps come row by row, `(0, 0),
    (0, 1), ...`, the order of the kernel's first two axes.
    """
    kh, kw = kernel_shape[:2]
    (sh, sw), (dh, dw) = _pair(strides), _pair(dilation_rate)
    x = _pad_like_keras(inputs, padding, (kh, kw), (sh, sw), (dh, dw))
    h_out = (x.shape[1] - (kh - 1) * dh - 1) // sh + 1
    w_out = (x.shape[2] - (kw - 1) * dw - 1) // sw + 1
    rows, cols = (h_out - 1) * sh + 1, (w_out - 1) * sw + 1  # what one tap's slice spans
    taps = [
        x[:, i * dh : i * dh + rows : sh, j * dw : j * dw + cols : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    return taps, h_out, w_out


def _size_unknown(inputs):
    return inputs.shape[1] is None or inputs.shape[2] is None


def conv2d_im2col(inputs, kernel, strides=(1, 1), padding="valid", dilation_rate=(1, 1)):
    """A channels-last 2-D convolution as one matrix product ("im2col").

    Shapes: `inputs` `(B, H, W, C_in)` and `kernel` `(kh, kw, C_in, C_out)`,
    as Keras stores it, give `(B, H_out, W_out, C_out)`, the same as
    `keras.ops.conv(inputs, kernel, strides, padding, dilation_rate=...)`.

    1. Pad as Keras does and cut one slice per kernel tap (`_tap_slices`).
    2. Concatenate the slices on the channel axis: the columns, `(B, H_out, W_out,
       kh * kw * C_in)`, tap by tap with the channels inside a tap, which is
       the order of the kernel reshaped to `(kh * kw * C_in, C_out)`.
    3. One matmul of the columns, as `(B * H_out * W_out, kh * kw * C_in)` rows,
       with that matrix gives every output channel; reshape back to the image.

    An unknown height or width (a model built for any image size) falls back to
    `keras.ops.conv`: the slices need their bounds in advance.
    """
    kh, kw, c_in, c_out = kernel.shape
    if _size_unknown(inputs):
        return ops.conv(inputs, kernel, strides, padding, "channels_last", dilation_rate)
    taps, h_out, w_out = _tap_slices(inputs, kernel.shape, strides, padding, dilation_rate)
    columns = ops.concatenate(taps, axis=-1) if len(taps) > 1 else taps[0]
    columns = ops.reshape(columns, (-1, kh * kw * c_in))
    out = ops.matmul(columns, ops.reshape(kernel, (kh * kw * c_in, c_out)))
    return ops.reshape(out, (-1, h_out, w_out, c_out))


def conv2d_taps(inputs, kernel, strides=(1, 1), padding="valid", dilation_rate=(1, 1)):
    """A channels-last 2-D convolution as a sum over the kernel's taps.

    `out = sum over (i, j) of tap_slice(i, j) @ kernel[i, j]`: each tap's
    slice (`_tap_slices`), `(B, H_out, W_out, C_in)`, times that tap's
    `(C_in, C_out)` weights. Same shapes and result as [`conv2d_im2col`][].
    With one input channel (LeNet's first layer) every term is a broadcast
    product, and XLA fuses all `kh * kw` of them into one pass over the image
    instead of a convolution kernel built for many channels.
    """
    c_in = kernel.shape[2]
    if _size_unknown(inputs):
        return ops.conv(inputs, kernel, strides, padding, "channels_last", dilation_rate)
    taps, _, _ = _tap_slices(inputs, kernel.shape, strides, padding, dilation_rate)
    kw = kernel.shape[1]
    out = None
    for index, tap in enumerate(taps):
        weights = kernel[index // kw, index % kw]  # (C_in, C_out)
        term = tap * weights[0] if c_in == 1 else ops.matmul(tap, weights)
        out = term if out is None else out + term
    return out


CHUNK = 4  # images per chunk in conv2d_chunked


def conv2d_chunked(inputs, kernel, strides=(1, 1), padding="valid", dilation_rate=(1, 1)):
    """The native convolution run on `CHUNK` images at a time, the outputs concatenated.

    Same shapes and numbers as `keras.ops.conv` (each image is convolved on its own
    either way). On a CPU, XLA ran AlexNet's first layer (11x11 at stride 4 on 3
    channels) on one core for a batch of 16, and twice as fast per image on chunks of
    4, which it also runs side by side (BENCHMARKS.md). A batch no larger than a chunk, or
    whose size is not a number until run (`None`, or a symbol while a model is exported),
    is convolved whole.
    """
    arguments = (strides, padding, "channels_last", dilation_rate)
    batch = inputs.shape[0]
    if not isinstance(batch, int) or batch <= CHUNK:
        return ops.conv(inputs, kernel, *arguments)
    chunks = [inputs[start : start + CHUNK] for start in range(0, batch, CHUNK)]
    return ops.concatenate([ops.conv(chunk, kernel, *arguments) for chunk in chunks], axis=0)


def _chunked_op(layer, inputs, kernel):
    """`convolution_op` of a layer that runs [`conv2d_chunked`][]."""
    return conv2d_chunked(inputs, kernel, layer.strides, layer.padding, layer.dilation_rate)


def _im2col_op(layer, inputs, kernel):
    """`convolution_op` of a layer that runs im2col."""
    return conv2d_im2col(inputs, kernel, layer.strides, layer.padding, layer.dilation_rate)


def _taps_op(layer, inputs, kernel):
    """`convolution_op` of a layer that runs [`conv2d_taps`][].

    On JAX the gradients are the native kernel's ([`zoo.accel.jax_conv`][]): the sum
    of taps is fast forward, XLA's own convolution fast backward.
    """
    arguments = (layer.strides, layer.padding, layer.dilation_rate)
    if keras.backend.backend() == "jax" and not _size_unknown(inputs):
        from zoo.accel.jax_conv import with_native_gradients

        kernel = ops.convert_to_tensor(kernel)
        return with_native_gradients(conv2d_taps, inputs, kernel, *arguments)
    return conv2d_taps(inputs, kernel, *arguments)


_OPS = {"im2col": _im2col_op, "taps": _taps_op, "chunked": _chunked_op}


def _auto_op(layer, inputs, kernel):
    """`convolution_op` of a layer set to `"auto"` before it knew its input channels."""
    impl = auto_choice(keras.backend.backend(), kernel.shape[2], layer)
    if impl in _OPS:
        return _OPS[impl](layer, inputs, kernel)
    return type(layer).convolution_op(layer, inputs, kernel)


# --------------------------------------------------------------------------- choosing


def _check(name):
    if name not in CONV_IMPLS:
        choices = ", ".join(repr(c) for c in CONV_IMPLS)
        raise ZooError(f"Unknown convolution implementation {name!r}. Use one of: {choices}.")
    return name


def set_conv_impl(name):
    """Choose the implementation of every `Conv2D` the zoo builds from now on."""
    global _setting
    _setting = _check(name)


def get_conv_impl():
    """The current setting: `"auto"` unless [`set_conv_impl`][] changed it."""
    return _setting


@contextlib.contextmanager
def conv_impl(name):
    """`with zoo.conv_impl("im2col"): ...`: the setting inside the block only."""
    previous = get_conv_impl()
    set_conv_impl(name)
    try:
        yield
    finally:
        set_conv_impl(previous)


def shape_class(in_channels, layer):
    """`(channel bucket, kernel size, stride)` of a square, undilated, ungrouped
    channels-last `Conv2D`, e.g. `("5-16", 5, 1)`; `None` for any other layer."""
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    if kh != kw or sh != sw or tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
        return None
    low = 1
    for high in CHANNEL_BUCKETS:
        if in_channels <= high:
            return (f"{low}-{high}", kh, sh)
        low = high + 1
    return (f"{low}+", kh, sh)


@functools.cache
def on_cpu():
    """Whether Keras computes on the CPU (`AUTO_TABLE` holds CPU measurements only)."""
    if keras.backend.backend() == "torch":  # Keras lists no devices there; a tensor tells
        device = str(ops.convert_to_tensor(0.0).device)
    else:
        device = keras.distribution.list_devices()[0]
    return device.lower().startswith("cpu")


def auto_choice(backend, in_channels, layer):
    """What `"auto"` runs for `layer` on `backend`: the table's entry on a CPU, else
    native."""
    if not on_cpu():
        return "native"
    return AUTO_TABLE.get(backend, {}).get(shape_class(in_channels, layer), "native")


def _supported(layer):
    """im2col is written for ungrouped channels-last layers that keep Keras's own method."""
    return (
        layer.groups == 1
        and layer.data_format == "channels_last"
        and type(layer).convolution_op is keras.layers.Conv2D.convolution_op
    )


def apply_conv_impl(layer, name="auto"):
    """Make the `keras.layers.Conv2D` `layer` (built or not) run `name`.

    Returns what it runs: `"native"`, `"im2col"` or `"taps"`, or `"auto"` for an
    unbuilt layer under `"auto"` (it chooses when it first sees its input).
    Grouped and channels-first layers stay native. The class is not changed.
    """
    _check(name)
    if not isinstance(layer, keras.layers.Conv2D):
        raise TypeError(f"expected a keras.layers.Conv2D, got {type(layer).__name__}")
    vars(layer).pop("convolution_op", None)  # back to the class's native method
    if name == "native" or not _supported(layer):
        return "native"
    if name == "auto":
        if not layer.built:
            layer.convolution_op = types.MethodType(_auto_op, layer)
            return "auto"
        name = auto_choice(keras.backend.backend(), layer.kernel.shape[2], layer)
    if name in _OPS:
        layer.convolution_op = types.MethodType(_OPS[name], layer)
    return name


def layer_conv_impl(layer):
    """What `layer` runs now: `"native"`, `"im2col"`, `"taps"` or `"auto"` (unbuilt)."""
    op = vars(layer).get("convolution_op")
    if op is None:
        return "native"
    names = {function: name for name, function in _OPS.items()}
    return {**names, _auto_op: "auto"}.get(getattr(op, "__func__", None), "native")


def _conv_layers(layer):
    for inner in getattr(layer, "layers", ()):
        if isinstance(inner, keras.layers.Conv2D):
            yield inner
        else:
            yield from _conv_layers(inner)


def apply_to_model(model, name=None):
    """Apply `name` (default: the current setting) to every `Conv2D` in `model`,
    nested models included. Returns `{layer name: what it runs}`."""
    name = get_conv_impl() if name is None else name
    return {layer.name: apply_conv_impl(layer, name) for layer in _conv_layers(model)}

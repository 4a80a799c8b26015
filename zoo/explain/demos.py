"""Runnable demonstrations of the building blocks of a CNN.

Each function computes one worked example twice: with the real Keras layer on
the current backend, and with the plain NumPy code in [`zoo.explain.reference`][].
It returns a [`Demo`][] holding the input, the layer's settings and both
results, so a notebook can print them and a test can compare them.

All arrays are channels-last: `(batch, height, width, channels)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from zoo.explain import reference
from zoo.shapes import pair

__all__ = [
    "Demo",
    "keras_conv2d",
    "convolution",
    "padding_styles",
    "multichannel_convolution",
    "pooling",
    "global_pooling",
    "activation",
    "dropout",
    "ALL_CONVOLUTIONS",
]

CHANNELS_LAST = "channels_last"


@dataclass
class Demo:
    """One worked example: the input, the settings and the two results.

    Attributes:
        title: a one-line description.
        input: the input array (channels-last, with a batch axis).
        settings: the layer's arguments.
        keras: what the Keras layer computed on the current backend.
        reference: what the NumPy reference computed.
        extra: anything else the example shows (named arrays or numbers).
    """

    title: str
    input: np.ndarray
    settings: dict
    keras: np.ndarray
    reference: np.ndarray
    extra: dict = field(default_factory=dict)

    @property
    def max_abs_difference(self):
        """Largest absolute difference between the Keras and reference results."""
        return float(np.max(np.abs(np.asarray(self.keras) - np.asarray(self.reference))))

    def __str__(self):
        lines = [self.title, f"settings: {self.settings}", f"input shape: {self.input.shape}"]
        lines.append(f"output shape: {np.shape(self.keras)}")
        lines.append(f"max |keras - reference| = {self.max_abs_difference:.2e}")
        return "\n".join(lines)


def _numpy(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def six_by_six_image():
    """The 6x6 image holding 0..35, as a batch of one single-channel image."""
    return np.arange(36, dtype="float32").reshape(1, 6, 6, 1)


def averaging_kernel(size=3, channels=1):
    """A `size x size` kernel whose taps are all `1 / size**2`: it averages each window."""
    return np.full((size, size, channels, 1), 1.0 / size**2, dtype="float32")


def keras_conv2d(x, kernel, bias=None, stride=1, padding=0, dilation=1):
    """Run a real Keras `Conv2D` with the given kernel on `x`.

    `padding` may be `"valid"`, `"same"`, an int or a `(before,
    after)` pair. Keras's `Conv2D` only knows `"valid"` and `"same"`,
    so numeric padding is done the PyTorch way: a `ZeroPadding2D` layer
    followed by a valid convolution.
    """
    kernel = np.asarray(kernel, dtype="float32")
    layers = []
    if not isinstance(padding, str):
        pad = pair(padding)
        layers.append(keras.layers.ZeroPadding2D((pad, pad), data_format=CHANNELS_LAST))
        padding = "valid"
    conv = keras.layers.Conv2D(
        kernel.shape[-1],
        kernel.shape[:2],
        strides=stride,
        padding=padding,
        dilation_rate=dilation,
        use_bias=bias is not None,
        data_format=CHANNELS_LAST,
    )
    layers.append(conv)
    model = keras.Sequential([keras.Input(shape=np.shape(x)[1:]), *layers])
    conv.set_weights([kernel] if bias is None else [kernel, np.asarray(bias, "float32")])
    return _numpy(model(np.asarray(x, dtype="float32")))


def convolution(stride=1, padding=0, dilation=1):
    """The 6x6 image of 0..35 convolved with a 3x3 averaging kernel.

    With the defaults the output is 4x4 and its first value is
    `(0 + 1 + 2 + 6 + 7 + 8 + 12 + 13 + 14) / 9 = 7`. Stride 2 gives 2x2,
    padding 1 keeps 6x6, dilation 2 (a 5x5 footprint) gives 2x2.
    """
    x, kernel = six_by_six_image(), averaging_kernel()
    settings = {"kernel_size": 3, "stride": stride, "padding": padding, "dilation": dilation}
    return Demo(
        title=f"3x3 average over the 6x6 image 0..35 ({settings})",
        input=x,
        settings=settings,
        keras=keras_conv2d(x, kernel, stride=stride, padding=padding, dilation=dilation),
        reference=reference.conv2d(x, kernel, stride=stride, padding=padding, dilation=dilation),
        extra={"kernel": kernel[:, :, 0, 0]},
    )


ALL_CONVOLUTIONS = {
    "plain": {},
    "stride 2": {"stride": 2},
    "padding 1": {"padding": 1},
    "dilation 2": {"dilation": 2},
}


def padding_styles(size=6, kernel_size=3, stride=1, padding=1):
    """PyTorch-style integer padding next to Keras's `"same"` padding.

    Integer padding `P` adds `P` zeros on *both* sides. `"same"` adds
    just enough to make the output `ceil(size / stride)` long and puts an
    odd pixel at the end (bottom/right). They agree for an odd kernel with
    stride 1 and `P = (k - 1) / 2`; with stride 2, or an even kernel, the
    windows land elsewhere and the numbers (or even the sizes) differ.

    `keras` holds the ZeroPadding2D + valid result, `reference` the NumPy
    one; `extra["same"]` the Keras `"same"` result and
    `extra["coincide"]` whether both paddings give identical outputs.
    """
    x = np.arange(size * size, dtype="float32").reshape(1, size, size, 1)
    kernel = averaging_kernel(kernel_size)
    explicit = keras_conv2d(x, kernel, stride=stride, padding=padding)
    same = keras_conv2d(x, kernel, stride=stride, padding="same")
    coincide = explicit.shape == same.shape and bool(np.allclose(explicit, same))
    return Demo(
        title=f"padding={padding} vs 'same' (size {size}, kernel {kernel_size}, stride {stride})",
        input=x,
        settings={"kernel_size": kernel_size, "stride": stride, "padding": padding},
        keras=explicit,
        reference=reference.conv2d(x, kernel, stride=stride, padding=padding),
        extra={
            "same": same,
            "same_reference": reference.conv2d(x, kernel, stride=stride, padding="same"),
            "coincide": coincide,
        },
    )


def multichannel_convolution(filters=2, seed=0):
    """A 5x5 RGB input and `filters` random 3x3x3 kernels.

    Each output map is the sum of three single-channel convolutions (one per
    input channel) plus the bias: `extra["per_channel"][c]` holds the
    contribution of input channel `c` to every output map, and their sum
    plus the bias equals the Keras result.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, size=(1, 5, 5, 3)).astype("float32")
    kernel = rng.integers(-1, 2, size=(3, 3, 3, filters)).astype("float32")
    bias = np.arange(filters, dtype="float32")
    per_channel = [
        reference.conv2d(x[..., c : c + 1], kernel[:, :, c : c + 1, :]) for c in range(3)
    ]
    return Demo(
        title=f"3 input channels, {filters} kernels of 3x3x3",
        input=x,
        settings={"kernel_shape": kernel.shape, "bias": bias.tolist()},
        keras=keras_conv2d(x, kernel, bias),
        reference=reference.conv2d(x, kernel, bias),
        extra={"kernel": kernel, "bias": bias, "per_channel": per_channel},
    )


def pooling_input():
    """`arange(32)` as one 4x4 image with 2 channels: channel 0 holds the even numbers."""
    return np.arange(32, dtype="float32").reshape(1, 4, 4, 2)


def pooling(kind="avg", pool_size=2, strides=1, padding="valid", x=None):
    """Average or max pooling over windows of `pool_size` moved by `strides`.

    On the default input, 2x2 windows with stride 1 give a 3x3 map per channel;
    the first average is `(0 + 2 + 8 + 10) / 4 = 5` and the first maximum 10.
    """
    x = pooling_input() if x is None else np.asarray(x, dtype="float32")
    layer_class = {"avg": keras.layers.AveragePooling2D, "max": keras.layers.MaxPooling2D}[kind]
    reference_fn = {"avg": reference.avg_pool2d, "max": reference.max_pool2d}[kind]
    layer = layer_class(pool_size, strides=strides, padding=padding, data_format=CHANNELS_LAST)
    return Demo(
        title=f"{kind} pooling, pool_size={pool_size}, strides={strides}, padding={padding}",
        input=x,
        settings={"pool_size": pool_size, "strides": strides, "padding": padding},
        keras=_numpy(layer(x)),
        reference=reference_fn(x, pool_size, strides, padding),
    )


def global_pooling(kind="avg", x=None):
    """Global average or max pooling: one number per channel.

    On the default input global average gives `[15, 16]` and global max `[30, 31]`.
    """
    x = pooling_input() if x is None else np.asarray(x, dtype="float32")
    layer_class = {
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
    }[kind]
    reference_fn = {"avg": reference.global_avg_pool2d, "max": reference.global_max_pool2d}[kind]
    return Demo(
        title=f"global {kind} pooling",
        input=x,
        settings={},
        keras=_numpy(layer_class(data_format=CHANNELS_LAST)(x)),
        reference=reference_fn(x),
    )


ACTIVATION_INPUTS = {
    "relu": np.arange(-5, 6, dtype="float32"),
    "tanh": np.linspace(-3, 3, 13, dtype="float32"),
    "sigmoid": np.linspace(-6, 6, 13, dtype="float32"),
    "softmax": np.array([0.1, 0.6, 0.1, 0.2], dtype="float32"),
}


def activation(name, x=None):
    """Apply a Keras activation (`relu`, `tanh`, `sigmoid`, `softmax`).

    The default softmax input `[0.1, 0.6, 0.1, 0.2]` gives about
    `[0.2104, 0.3468, 0.2104, 0.2325]`.
    """
    if name not in ACTIVATION_INPUTS:
        raise ValueError(
            f"Unknown activation {name!r}. Use one of: {', '.join(ACTIVATION_INPUTS)}."
        )
    x = ACTIVATION_INPUTS[name] if x is None else np.asarray(x, dtype="float32")
    return Demo(
        title=f"{name} activation",
        input=x,
        settings={"activation": name},
        keras=_numpy(keras.activations.get(name)(keras.ops.convert_to_tensor(x))),
        reference=getattr(reference, name)(x),
    )


def dropout(rate=0.5, shape=(200, 200), seed=0):
    """Inverted dropout on a tensor of ones, at inference and in training.

    At inference (`training=False`) Keras's `Dropout` returns its input:
    `keras` and `reference` hold those results. In training it zeroes a
    random fraction close to `rate` and multiplies the survivors by
    `1 / (1 - rate)`, so the expected sum is unchanged; `extra` holds the
    training outputs of both implementations and their measured statistics.
    Their masks differ (each draws its own random numbers), so only the
    statistics can be compared.
    """
    x = np.ones(shape, dtype="float32")
    layer = keras.layers.Dropout(rate, seed=seed)
    trained = _numpy(layer(x, training=True))
    reference_trained = reference.dropout(x, rate, seed=seed)

    def stats(out):
        kept = out[out != 0]
        return {
            "dropped_fraction": float(np.mean(out == 0)),
            "kept_values": np.unique(np.round(kept, 5)).tolist(),
            "sum_ratio": float(out.sum() / x.sum()),
        }

    return Demo(
        title=f"dropout rate {rate}",
        input=x,
        settings={"rate": rate, "seed": seed},
        keras=_numpy(layer(x, training=False)),
        reference=reference.dropout(x, rate, training=False),
        extra={
            "training_keras": trained,
            "training_reference": reference_trained,
            "keras_stats": stats(trained),
            "reference_stats": stats(reference_trained),
        },
    )

"""Small pieces the classic networks need, written with `keras.ops` only.

Two layers (channels-last) and LeNet-5's activation, all registered as
serializable, so a saved `model.keras` that uses them loads again on any backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from zoo.shapes import pair

__all__ = [
    "AdaptiveAveragePooling2D",
    "LocalResponseNormalization",
    "adaptive_pooling_matrix",
    "scaled_tanh",
]

# LeNet-5's squashing function f(a) = A tanh(S a) (LeCun et al., 1998, sec. II-B, Appendix A)
SCALED_TANH_AMPLITUDE = 1.7159
SCALED_TANH_SLOPE = 2.0 / 3.0


def adaptive_pooling_matrix(in_size, out_size):
    """An `(out_size, in_size)` matrix whose row `i` averages PyTorch's bin `i`.

    PyTorch's `AdaptiveAvgPool2d` gives output cell `i` the mean of input
    cells `floor(i * W / o)` up to (not including) `ceil((i + 1) * W / o)`.
    Bins may overlap, and when `W < o` an input cell is repeated.
    """
    matrix = np.zeros((out_size, in_size), dtype="float32")
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def _pooling_matrix(inputs, axis, out_size):
    """[`adaptive_pooling_matrix`][] for `inputs`'s `axis`, in its dtype.

    A known size gives the constant NumPy matrix; an unknown one (a model built
    with `input_shape=(None, None, 3)`, traced by TensorFlow) builds the same
    matrix with `keras.ops` from the runtime size.
    """
    size = inputs.shape[axis]
    if size is not None:
        return ops.cast(
            ops.convert_to_tensor(adaptive_pooling_matrix(size, out_size)), inputs.dtype
        )
    size = ops.shape(inputs)[axis]
    bins = ops.arange(out_size, dtype="int32")
    cells = ops.arange(size, dtype="int32")
    start = ops.floor_divide(bins * size, out_size)
    end = ops.floor_divide((bins + 1) * size + out_size - 1, out_size)  # ceil
    inside = ops.logical_and(cells[None, :] >= start[:, None], cells[None, :] < end[:, None])
    counts = ops.cast(end - start, inputs.dtype)[:, None]
    return ops.cast(inside, inputs.dtype) / counts


@keras.saving.register_keras_serializable(package="zoo")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """Average pooling to a fixed `output_size`, with PyTorch's bin boundaries.

    Input `(batch, H, W, C)`, output `(batch, out_h, out_w, C)` for any
    `H, W >= 1`, known when the model is built or only when it runs. Each
    axis is pooled by multiplying with a constant averaging matrix (see
    [`adaptive_pooling_matrix`][]), which is exact and cheap:
    `y = P_h @ x @ P_w^T` for every channel.

    Used by the torchvision AlexNet, whose `AdaptiveAvgPool2d((6, 6))` lets
    the classifier accept any input at or above the minimum size.
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = tuple(int(s) for s in pair(output_size))

    def call(self, inputs):
        rows = _pooling_matrix(inputs, 1, self.output_size[0])
        cols = _pooling_matrix(inputs, 2, self.output_size[1])
        return ops.einsum("ih,bhwc,jw->bijc", rows, inputs, cols)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}


@keras.saving.register_keras_serializable(package="zoo")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al., 2012, sec. 3.3).

    `b[c] = a[c] / (k + alpha * sum_{j = c - r}^{c + r} a[j]^2) ** beta`,
    summing over the `n = 2r + 1` neighbouring channels that exist. The
    paper's values are `n = 5` (`depth_radius=2`), `k = 2`,
    `alpha = 1e-4` and `beta = 0.75`. No trainable parameters.
    Note that `alpha` is used as written in the paper, not divided by `n`
    as PyTorch's `LocalResponseNorm` does.

    Input and output: `(batch, H, W, C)`.
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        channels = inputs.shape[-1]
        radius = self.depth_radius
        squared = ops.pad(ops.square(inputs), [[0, 0], [0, 0], [0, 0], [radius, radius]])
        window_sum = squared[..., 0:channels]
        for offset in range(1, 2 * radius + 1):
            window_sum = window_sum + squared[..., offset : offset + channels]
        return inputs / ops.power(self.bias + self.alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


@keras.saving.register_keras_serializable(package="zoo")
def scaled_tanh(x):
    """LeNet-5's activation, `f(a) = 1.7159 * tanh(2a / 3)`, element by element.

    LeCun et al., 1998, sec. II-B and Appendix A: the amplitude and slope make
    `f(1) = 1` and `f(-1) = -1`, put the largest curvature near `a = +-1`
    and keep the gain close to 1 over the usual range of inputs; the outputs lie
    in `(-1.7159, 1.7159)`. Any shape in, the same shape out. Registered as
    `zoo>scaled_tanh`, so a layer built with `activation=scaled_tanh` saves
    and loads with `model.keras`.
    """
    return SCALED_TANH_AMPLITUDE * ops.tanh(SCALED_TANH_SLOPE * x)

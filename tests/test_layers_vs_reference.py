"""Property-based: Keras Conv2D and pooling agree with zoo.shapes and zoo.explain.reference."""

import keras
import numpy as np
import pytest
from conftest import torch_same_average_pooling_is_off
from hypothesis import assume, given
from hypothesis import strategies as st

from zoo import shapes
from zoo.explain import demos, reference

PADDINGS = st.one_of(
    st.sampled_from(["valid", "same"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
)


def _expected_size(size, kernel, stride, padding, dilation):
    try:
        return shapes.conv_output_size(size, kernel, stride, padding, dilation)
    except ValueError:
        return None


@given(
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 3),
    padding=PADDINGS,
    channels_in=st.integers(1, 3),
    channels_out=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_conv2d_shape_and_values(
    height, width, kernel, stride, dilation, padding, channels_in, channels_out, seed
):
    assume(stride == 1 or dilation == 1)  # Keras's Conv2D refuses both above 1 at once
    out_h = _expected_size(height, kernel, stride, padding, dilation)
    out_w = _expected_size(width, kernel, stride, padding, dilation)
    assume(out_h is not None and out_w is not None)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, height, width, channels_in)).astype("float32")
    w = rng.normal(size=(kernel, kernel, channels_in, channels_out)).astype("float32")
    b = rng.normal(size=channels_out).astype("float32")

    result = demos.keras_conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    expected = reference.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)

    assert result.shape == (2, out_h, out_w, channels_out)
    assert expected.shape == result.shape
    np.testing.assert_allclose(result, expected, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("kind", ["avg", "max"])
@given(
    height=st.integers(1, 10),
    width=st.integers(1, 10),
    pool=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    channels=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_pooling_shape_and_values(kind, height, width, pool, stride, padding, channels, seed):
    out_h = _expected_size(height, pool, stride, padding, 1)
    out_w = _expected_size(width, pool, stride, padding, 1)
    assume(out_h is not None and out_w is not None)
    # A known Keras torch-backend bug, shown on its own in test_demos.py.
    assume(not torch_same_average_pooling_is_off(kind, (height, width), pool, stride, padding))
    x = np.random.default_rng(seed).normal(size=(1, height, width, channels)).astype("float32")
    layer_class = keras.layers.AveragePooling2D if kind == "avg" else keras.layers.MaxPooling2D
    layer = layer_class(pool, strides=stride, padding=padding, data_format="channels_last")
    result = keras.ops.convert_to_numpy(layer(x))
    ref = reference.avg_pool2d if kind == "avg" else reference.max_pool2d
    assert result.shape == (1, out_h, out_w, channels)
    assert shapes.pool_output_size(height, pool, stride, padding) == out_h
    np.testing.assert_allclose(result, ref(x, pool, stride, padding), atol=1e-5)


def test_reference_conv2d_allows_stride_and_dilation_together():
    x = np.arange(49.0).reshape(7, 7, 1)
    out = reference.conv2d(x, np.ones((2, 2, 1, 1)), stride=2, dilation=2)
    # Footprint 3x3, windows start at 0, 2, 4: taps (r, c), (r, c+2), (r+2, c), (r+2, c+2).
    assert out.shape == (3, 3, 1)
    assert out[0, 0, 0] == 0 + 2 + 14 + 16


def test_reference_errors_name_the_problem():
    with pytest.raises(ValueError, match="kernel must be"):
        reference.conv2d(np.zeros((4, 4, 2)), np.zeros((3, 3, 1, 1)))
    with pytest.raises(ValueError, match="kernel covers 5 pixels"):
        reference.conv2d(np.zeros((4, 4, 1)), np.zeros((5, 5, 1, 1)))
    with pytest.raises(ValueError, match=r"expected \(H, W, C\) or \(N, H, W, C\)"):
        reference.max_pool2d(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        reference.dropout(np.zeros(3), 1.0)

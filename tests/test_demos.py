"""Every demo: the Keras layer on this backend equals the NumPy reference; the worked numbers."""

import numpy as np
import pytest
from conftest import torch_same_average_pooling_is_off

from zoo.explain import demos

TOL = 1e-5


@pytest.mark.parametrize("name", list(demos.ALL_CONVOLUTIONS))
def test_convolution_demos_match_reference(name):
    demo = demos.convolution(**demos.ALL_CONVOLUTIONS[name])
    assert demo.max_abs_difference <= TOL


def test_convolution_worked_numbers():
    plain = demos.convolution()
    assert plain.keras.shape == (1, 4, 4, 1)
    # (0 + 1 + 2 + 6 + 7 + 8 + 12 + 13 + 14) / 9 = 7; each step right adds 1, each step down 6.
    expected = 7 + np.arange(4)[None, :] + 6 * np.arange(4)[:, None]
    np.testing.assert_allclose(plain.reference[0, :, :, 0], expected, atol=1e-12)
    np.testing.assert_allclose(plain.keras[0, :, :, 0], expected, atol=TOL)

    strided = demos.convolution(stride=2)
    np.testing.assert_allclose(strided.keras[0, :, :, 0], [[7, 9], [19, 21]], atol=TOL)

    padded = demos.convolution(padding=1)
    assert padded.keras.shape == (1, 6, 6, 1)  # padding 1 keeps 6x6
    assert padded.keras[0, 0, 0, 0] == pytest.approx((0 + 1 + 6 + 7) / 9, abs=TOL)
    np.testing.assert_allclose(padded.keras[0, 1:5, 1:5, 0], expected, atol=TOL)

    dilated = demos.convolution(dilation=2)  # a 5x5 footprint: centres 14, 15, 20, 21
    np.testing.assert_allclose(dilated.keras[0, :, :, 0], [[14, 15], [20, 21]], atol=TOL)


def test_integer_padding_and_same_coincide_for_odd_kernel_stride_1():
    demo = demos.padding_styles(size=6, kernel_size=3, stride=1, padding=1)
    assert demo.max_abs_difference <= TOL
    assert demo.extra["coincide"]
    np.testing.assert_allclose(demo.extra["same"], demo.keras, atol=TOL)


def test_integer_padding_and_same_differ_with_stride_2():
    # Same size (3x3) but "same" pads (0, 1) while padding=1 pads (1, 1): the windows shift.
    demo = demos.padding_styles(size=6, kernel_size=3, stride=2, padding=1)
    assert demo.max_abs_difference <= TOL
    assert demo.keras.shape == demo.extra["same"].shape == (1, 3, 3, 1)
    assert not demo.extra["coincide"]
    np.testing.assert_allclose(demo.extra["same"], demo.extra["same_reference"], atol=TOL)
    assert demo.extra["same"][0, 0, 0, 0] == pytest.approx(
        (0 + 1 + 2 + 6 + 7 + 8 + 12 + 13 + 14) / 9, abs=TOL
    )
    assert demo.keras[0, 0, 0, 0] == pytest.approx((0 + 1 + 6 + 7) / 9, abs=TOL)


def test_integer_padding_and_same_differ_in_size_with_even_kernel():
    demo = demos.padding_styles(size=6, kernel_size=4, stride=1, padding=1)
    assert demo.max_abs_difference <= TOL
    assert demo.keras.shape == (1, 5, 5, 1)  # 6 + 2 - 4 + 1
    assert demo.extra["same"].shape == (1, 6, 6, 1)  # "same" pads 1 before, 2 after
    assert not demo.extra["coincide"]


def test_multichannel_output_maps_sum_over_input_channels():
    demo = demos.multichannel_convolution(filters=3)
    assert demo.keras.shape == (1, 3, 3, 3)
    assert demo.max_abs_difference <= TOL
    summed = sum(demo.extra["per_channel"]) + demo.extra["bias"]
    np.testing.assert_allclose(demo.keras, summed, atol=TOL)
    # No single channel explains the output on its own.
    for part in demo.extra["per_channel"]:
        assert not np.allclose(part + demo.extra["bias"], demo.keras)


def test_pooling_worked_numbers():
    avg = demos.pooling("avg", pool_size=2, strides=1)
    mx = demos.pooling("max", pool_size=2, strides=1)
    assert avg.keras.shape == mx.keras.shape == (1, 3, 3, 2)
    # The input holds 8*row + 2*col + channel. A 2x2 window starting at (i, j) covers offsets
    # 0, 2, 8 and 10 from its corner: their largest is +10, their mean +5.
    rows, cols = np.mgrid[0:3, 0:3]
    for channel in (0, 1):
        corner = 8 * rows + 2 * cols + channel
        np.testing.assert_array_equal(avg.keras[0, :, :, channel], corner + 5)
        np.testing.assert_array_equal(mx.keras[0, :, :, channel], corner + 10)
    assert avg.max_abs_difference <= TOL and mx.max_abs_difference <= TOL


def test_global_pooling_worked_numbers():
    avg, mx = demos.global_pooling("avg"), demos.global_pooling("max")
    np.testing.assert_array_equal(avg.keras, [[15, 16]])
    np.testing.assert_array_equal(mx.keras, [[30, 31]])
    assert avg.max_abs_difference <= TOL and mx.max_abs_difference <= TOL


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize(
    "pool_size, strides, padding", [(2, 2, "valid"), (3, 2, "same"), (2, 1, "same")]
)
def test_pooling_variants_match_reference(kind, pool_size, strides, padding):
    x = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype("float32")
    demo = demos.pooling(kind, pool_size, strides, padding, x=x)
    off = torch_same_average_pooling_is_off(kind, (7, 6), pool_size, strides, padding)
    if off and demo.max_abs_difference > TOL:
        pytest.xfail("Keras torch backend: asymmetric 'same' average pooling replicates edges")
    assert demo.max_abs_difference <= TOL


def test_activations():
    relu = demos.activation("relu")
    np.testing.assert_array_equal(relu.keras, [0] * 6 + list(range(1, 6)))  # input -5..5
    softmax = demos.activation("softmax")
    np.testing.assert_allclose(softmax.keras, [0.2104, 0.3468, 0.2104, 0.2325], atol=5e-5)
    assert softmax.keras.sum() == pytest.approx(1.0, abs=1e-6)
    tanh, sigmoid = demos.activation("tanh"), demos.activation("sigmoid")
    assert np.all(np.abs(tanh.keras) < 1) and tanh.keras[6] == 0
    assert np.all((sigmoid.keras > 0) & (sigmoid.keras < 1)) and sigmoid.keras[6] == 0.5
    for demo in (relu, softmax, tanh, sigmoid):
        assert demo.max_abs_difference <= TOL


def test_unknown_activation_is_named():
    with pytest.raises(
        ValueError, match="Unknown activation 'gelu2'.*relu, tanh, sigmoid, softmax"
    ):
        demos.activation("gelu2")


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_dropout_identity_at_inference_and_scaled_in_training(rate):
    demo = demos.dropout(rate=rate, shape=(200, 200), seed=3)
    np.testing.assert_array_equal(demo.keras, demo.input)  # inference: identity
    np.testing.assert_array_equal(demo.reference, demo.input)
    for stats in (demo.extra["keras_stats"], demo.extra["reference_stats"]):
        # 40,000 draws: the dropped fraction's standard error is below 0.0025.
        assert stats["dropped_fraction"] == pytest.approx(rate, abs=0.01)
        assert stats["kept_values"] == [pytest.approx(1 / (1 - rate), rel=1e-5)]
        assert stats["sum_ratio"] == pytest.approx(1.0, abs=0.05)

"""Numerical truth: each backend's forward pass equals a plain NumPy forward pass."""

import keras
import numpy as np
import pytest
from conftest import assert_close_to_reference, numpy_forward, set_fixed_weights

import zoo
from zoo.explain import reference
from zoo.layers import AdaptiveAveragePooling2D, LocalResponseNormalization, adaptive_pooling_matrix


def _input(shape, batch=2, seed=7):
    return np.random.default_rng(seed).random((batch, *shape)).astype("float32")


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_lenet_matches_numpy_forward_pass(variant):
    model = zoo.lenet(variant=variant, classifier_activation=None)
    set_fixed_weights(model, seed=11)
    x = _input((28, 28, 1))
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    expected = numpy_forward(model, x)
    assert_close_to_reference(logits, expected, tol=1e-5)
    # And the probabilities of the softmax model built with the same weights.
    probs_model = zoo.lenet(variant=variant)
    probs_model.set_weights(model.get_weights())
    probs = keras.ops.convert_to_numpy(probs_model(x, training=False))
    assert_close_to_reference(probs, reference.softmax(expected), tol=1e-5)


def test_alexnet_torchvision_matches_numpy_forward_at_minimum_input():
    info = zoo.model_info("alexnet_torchvision")
    shape = info["min_input_shape"]
    assert shape == (63, 63, 3)
    model = zoo.alexnet(
        input_shape=shape, variant="torchvision", classes=10, classifier_activation=None
    )
    set_fixed_weights(model, seed=12)
    x = _input(shape)
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    assert_close_to_reference(logits, numpy_forward(model, x), tol=1e-5)


def test_alexnet_original_with_lrn_matches_numpy_forward():
    model = zoo.alexnet(
        input_shape=(67, 67, 3), classes=10, classifier_activation=None, local_response_norm=True
    )
    set_fixed_weights(model, seed=13)
    x = _input((67, 67, 3)) * 20.0  # large activations so the normalisation matters
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    assert_close_to_reference(logits, numpy_forward(model, x), tol=1e-5)


@pytest.mark.parametrize("height, width", [(1, 1), (5, 7), (6, 6), (12, 12), (13, 13), (8, 3)])
def test_adaptive_pooling_matches_numpy_reference(height, width):
    x = _input((height, width, 3), seed=height * 10 + width)
    out = keras.ops.convert_to_numpy(AdaptiveAveragePooling2D((6, 6))(x))
    assert out.shape == (2, 6, 6, 3)
    np.testing.assert_allclose(out, reference.adaptive_avg_pool2d(x, (6, 6)), atol=1e-6)


def test_adaptive_pooling_uses_pytorch_bins():
    # 13 -> 6: PyTorch's bins are [0,3) [2,5) [4,7) [6,9) [8,11) [10,13).
    matrix = adaptive_pooling_matrix(13, 6)
    starts = [int(np.argmax(row > 0)) for row in matrix]
    lengths = [int(np.count_nonzero(row)) for row in matrix]
    assert starts == [0, 2, 4, 6, 8, 10]
    assert lengths == [3, 3, 3, 3, 3, 3]
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    # Same size is the identity; 1 -> 6 repeats the single value.
    np.testing.assert_array_equal(adaptive_pooling_matrix(6, 6), np.eye(6, dtype="float32"))
    np.testing.assert_array_equal(adaptive_pooling_matrix(1, 6), np.ones((6, 1), "float32"))


def test_local_response_norm_matches_formula_on_a_small_example():
    # One pixel, 3 channels [1, 2, 3], radius 1, k=1, alpha=1, beta=1:
    # channel 0 sums 1+4, channel 1 sums 1+4+9, channel 2 sums 4+9.
    x = np.array([1.0, 2.0, 3.0], dtype="float32").reshape(1, 1, 1, 3)
    layer = LocalResponseNormalization(depth_radius=1, bias=1.0, alpha=1.0, beta=1.0)
    out = keras.ops.convert_to_numpy(layer(x)).ravel()
    np.testing.assert_allclose(out, [1 / 6, 2 / 15, 3 / 14], rtol=1e-6)
    np.testing.assert_allclose(
        out, reference.local_response_norm(x, 1, 1.0, 1.0, 1.0).ravel(), rtol=1e-6
    )

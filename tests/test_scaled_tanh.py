"""LeNet-5's scaled tanh (LeCun et al., 1998, Appendix A) and the builder's ``activation=``."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from zoo.layers import scaled_tanh


def test_scaled_tanh_matches_the_papers_formula():
    a = np.array([-4.0, -1.0, -0.3, 0.0, 0.5, 1.0, 2.5, 30.0], dtype="float32")
    got = keras.ops.convert_to_numpy(scaled_tanh(keras.ops.convert_to_tensor(a)))
    np.testing.assert_allclose(got, 1.7159 * np.tanh(2.0 * a / 3.0), rtol=1e-6, atol=1e-6)
    # The paper's reasons for A = 1.7159 and S = 2/3: f(+-1) = +-1, and the bound is A.
    np.testing.assert_allclose(got[[1, 5]], [-1.0, 1.0], atol=1e-4)
    assert got[3] == 0.0 and abs(got[-1] - 1.7159) < 1e-5


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_scaled_tanh_option_keeps_the_shapes_and_the_pooling(variant):
    model = zoo.lenet(variant=variant, activation="scaled_tanh")
    plain = zoo.lenet(variant=variant)
    assert model.count_params() == plain.count_params() == 61_706
    assert [layer.output.shape for layer in model.layers] == [
        layer.output.shape for layer in plain.layers
    ]
    for name in ("conv1", "conv2", "fc1", "fc2"):
        assert model.get_layer(name).activation is scaled_tanh, name
    assert model.get_layer("predictions").get_config()["activation"] == "softmax"
    assert type(model.get_layer("pool1")) is type(plain.get_layer("pool1"))


def test_scaled_tanh_is_what_conv1_computes():
    """conv1's output is f(the linear convolution) with the paper's f, on this backend."""
    shaped = zoo.lenet(activation="scaled_tanh", feature_extractor=True)
    linear = zoo.lenet(activation="linear", feature_extractor=True)
    linear.set_weights(shaped.get_weights())
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype="float32")
    got = keras.ops.convert_to_numpy(shaped(x)["conv1"])
    before = keras.ops.convert_to_numpy(linear(x)["conv1"])
    np.testing.assert_allclose(got, 1.7159 * np.tanh(2.0 * before / 3.0), rtol=1e-5, atol=1e-5)


def test_a_saved_scaled_tanh_model_loads_in_a_new_process(tmp_path):
    """``model.keras`` names ``zoo>scaled_tanh``; a process that only imports zoo loads it."""
    model = zoo.lenet(variant="modern", activation="scaled_tanh")
    x = np.random.default_rng(1).random((3, 28, 28, 1), dtype="float32")
    path, inputs, outputs = tmp_path / "m.keras", tmp_path / "x.npy", tmp_path / "y.npy"
    model.save(path)
    np.save(inputs, x)
    code = (
        "import zoo, keras, numpy as np\n"
        f"model = keras.saving.load_model({str(path)!r})\n"
        f"np.save({str(outputs)!r}, keras.ops.convert_to_numpy(model(np.load({str(inputs)!r}))))\n"
        "print(model.get_layer('fc1').activation.__module__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend()},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "zoo.layers"
    expected = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(np.load(outputs), expected, rtol=1e-5, atol=1e-6)


def test_activation_option_errors():
    with pytest.raises(zoo.ZooError, match="trained with sigmoid"):
        zoo.lenet(activation="scaled_tanh", weights="digits")
    with pytest.raises(zoo.ZooError, match="Unknown activation 'tanhh'"):
        zoo.lenet(activation="tanhh")
    # The variant's own activation named explicitly still takes its presets.
    assert zoo.lenet(variant="modern", activation="relu", weights="digits").count_params() == 61_706


def test_other_keras_activations_and_the_default():
    assert zoo.lenet(activation="tanh").get_layer("fc2").get_config()["activation"] == "tanh"
    relu_average = zoo.lenet(variant="classic", activation="relu")
    assert relu_average.get_layer("conv1").get_config()["activation"] == "relu"
    assert isinstance(relu_average.get_layer("pool2"), keras.layers.AveragePooling2D)
    assert zoo.lenet().get_layer("conv1").get_config()["activation"] == "sigmoid"

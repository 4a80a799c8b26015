"""PyTorch: large Dense layers' inference through oneDNN (zoo.accel.torch_dense) gives
Keras's outputs within float32 rounding, and training and gradients keep Keras's own call."""

import keras
import numpy as np
import pytest

import zoo
from zoo.accel import accelerate

BACKEND = keras.backend.backend()
pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="a PyTorch-only speed-up")


def _classifier(activation="relu", seed=0):
    """A 1024 -> 1024 -> 10 classifier: the first kernel has 2**20 entries, the second 10,240."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((1024,))
    hidden = keras.layers.Dense(1024, activation=activation, name="wide")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax", name="narrow")(hidden)
    return keras.Model(inputs, outputs)


@pytest.fixture(autouse=True)
def mkl_slow(monkeypatch):
    """Run every test as on a CPU where MKL is slow (an AMD one) unless it says otherwise."""
    from zoo.accel import torch_dense

    monkeypatch.setattr(torch_dense, "mkl_is_slow_here", lambda: True)


@pytest.fixture
def linear_calls(monkeypatch):
    """The post-operation of each call of oneDNN's linear primitive; "grad!" for a call made
    while PyTorch was recording gradients (which would lose them)."""
    import torch

    from zoo.accel import torch_dense

    calls = []
    original = torch_dense._linear

    def counted(*args):
        calls.append("grad!" if torch.is_grad_enabled() else args[-1])
        return original(*args)

    monkeypatch.setattr(torch_dense, "_linear", counted)
    return calls


def _without_onednn(model):
    for layer in model.layers:
        vars(layer).pop("call", None)  # back to Keras's Dense.call
    return model


@pytest.mark.parametrize("activation", ["relu", "tanh", None])
def test_predict_and_evaluate_match_kerass_dense(activation, linear_calls):
    x = np.random.default_rng(1).standard_normal((37, 1024)).astype("float32")
    y = np.arange(37) % 10
    model = _classifier(activation)
    assert accelerate(model).onednn_dense == ("wide",)  # the 10,240-entry one keeps Keras's
    ours = model.predict(x, batch_size=16, verbose=0)
    assert linear_calls == ["relu" if activation == "relu" else "none"] * 3  # 3 batches
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    scores = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert len(linear_calls) == 7  # 3 batches, and the one image that builds the metrics

    keras_model = _without_onednn(_classifier(activation))
    keras_model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    theirs = keras_model.predict(x, batch_size=16, verbose=0)
    keras_scores = keras_model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert len(linear_calls) == 7
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    assert scores["accuracy"] == keras_scores["accuracy"]
    assert scores["loss"] == pytest.approx(keras_scores["loss"], rel=1e-5)


def test_training_and_gradients_keep_kerass_call(linear_calls):
    import torch

    x = np.random.default_rng(2).standard_normal((32, 1024)).astype("float32")
    y = np.arange(32) % 10
    weights = []
    for onednn in (True, False):
        model = _classifier()
        if not onednn:
            _without_onednn(model)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        accelerate(model)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        weights.append(model.get_weights())
    # fit's forward passes record gradients: Keras's call (only the one-image builds of the
    # metrics and the optimizer, without gradients, may take oneDNN's)
    assert "grad!" not in linear_calls and len(linear_calls) <= 2
    linear_calls.clear()
    for ours, theirs in zip(*weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)

    inputs = torch.tensor(x[:4], requires_grad=True)
    model(inputs).sum().backward()  # e.g. a saliency map: gradients through the model
    assert linear_calls == [] and inputs.grad is not None and inputs.grad.abs().sum() > 0


def test_only_large_built_plain_dense_layers_take_it():
    from zoo.accel.torch_dense import use_onednn_dense

    class MyDense(keras.layers.Dense):
        pass

    def built(layer, features):
        layer.build((None, features))
        return layer

    assert use_onednn_dense(built(keras.layers.Dense(1024), 1024))
    assert not use_onednn_dense(built(keras.layers.Dense(1023), 1024))  # under 2**20 entries
    assert not use_onednn_dense(keras.layers.Dense(1024))  # not built: no kernel to size
    assert not use_onednn_dense(built(MyDense(1024), 1024))
    assert not use_onednn_dense(built(keras.layers.EinsumDense("ab,bc->ac", 1024), 1024))
    lenet = zoo.get_model("lenet5_modern")
    assert accelerate(lenet).onednn_dense == ()  # its largest kernel: 400 x 120


def test_inputs_it_does_not_handle_go_to_kerass_call(linear_calls):
    import torch

    layer = keras.layers.Dense(1024, activation="relu")
    layer.build((None, 1024))
    from zoo.accel.torch_dense import has_onednn_dense, use_onednn_dense

    assert use_onednn_dense(layer) and has_onednn_dense(layer)
    rng = np.random.default_rng(3)
    with torch.no_grad():
        sequence = torch.from_numpy(rng.standard_normal((2, 3, 1024)).astype("float32"))
        assert tuple(layer(sequence).shape) == (2, 3, 1024)  # 3-D: Keras's matmul
        doubles = torch.from_numpy(rng.standard_normal((2, 1024)))
        layer.call(doubles)  # not float32: Keras's
        assert linear_calls == []
        layer(torch.from_numpy(rng.standard_normal((2, 1024)).astype("float32")))
    assert linear_calls == ["relu"]

    layer.enable_lora(4)  # its kernel becomes a sum of variables: Keras's call
    with torch.no_grad():
        lora = layer(torch.from_numpy(rng.standard_normal((2, 1024)).astype("float32")))
    assert tuple(lora.shape) == (2, 1024) and linear_calls == ["relu"]

    quantised = keras.layers.Dense(1024)
    quantised.build((None, 1024))
    assert use_onednn_dense(quantised)
    quantised.quantize("int8")  # an int8 kernel: Keras's call
    with torch.no_grad():
        quantised(torch.from_numpy(rng.standard_normal((2, 1024)).astype("float32")))
    assert linear_calls == ["relu"]


def test_alexnet_banner_names_its_classifier():
    model = zoo.get_model("alexnet", input_shape=zoo.model_info("alexnet")["min_input_shape"])
    result = accelerate(model)
    assert result.onednn_dense == ("fc1", "fc2", "predictions")
    assert "oneDNN Dense at inference x3" in result.describe()


def test_on_an_intel_cpu_every_dense_keeps_kerass_call(monkeypatch, linear_calls):
    from zoo.accel import torch_dense

    monkeypatch.setattr(torch_dense, "mkl_is_slow_here", lambda: False)
    model = zoo.get_model("alexnet", input_shape=zoo.model_info("alexnet")["min_input_shape"])
    result = accelerate(model)
    assert result.onednn_dense == () and "oneDNN Dense" not in result.describe()
    model.predict(np.zeros((1, *model.input_shape[1:]), "float32"), verbose=0)
    assert linear_calls == []


@pytest.mark.parametrize(
    ("vendor", "slow"),
    [("AuthenticAMD", True), ("HygonGenuine", True), ("GenuineIntel", False), ("", False)],
)
def test_only_a_known_cpu_other_than_intels_counts_as_slow_for_mkl(vendor, slow, monkeypatch):
    import torch

    from zoo.accel import torch_dense

    monkeypatch.undo()  # the real mkl_is_slow_here, not the module's stand-in
    monkeypatch.setattr(torch_dense, "cpu_vendor", lambda: vendor)
    torch_dense.mkl_is_slow_here.cache_clear()
    try:
        assert torch_dense.mkl_is_slow_here() is (slow and torch.backends.mkl.is_available())
    finally:
        torch_dense.mkl_is_slow_here.cache_clear()

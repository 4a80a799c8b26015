"""Builders: parameter counts, shapes, options, channels-last under any global setting."""

import os

import keras
import numpy as np
import pytest

import zoo

LENET_LAYER_PARAMS = {
    "conv1": 5 * 5 * 1 * 6 + 6,  # 156
    "conv2": 5 * 5 * 6 * 16 + 16,  # 2,416
    "fc1": 400 * 120 + 120,  # 48,120
    "fc2": 120 * 84 + 84,  # 10,164
    "predictions": 84 * 10 + 10,  # 850
}

ALEXNET_LAYER_PARAMS = {
    "original": {
        "conv1": 11 * 11 * 3 * 96 + 96,
        "conv2": 5 * 5 * 96 * 256 + 256,
        "conv3": 3 * 3 * 256 * 384 + 384,
        "conv4": 3 * 3 * 384 * 384 + 384,
        "conv5": 3 * 3 * 384 * 256 + 256,
        "fc1": 6 * 6 * 256 * 4096 + 4096,
        "fc2": 4096 * 4096 + 4096,
        "predictions": 4096 * 1000 + 1000,
    },
    "torchvision": {
        "conv1": 11 * 11 * 3 * 64 + 64,
        "conv2": 5 * 5 * 64 * 192 + 192,
        "conv3": 3 * 3 * 192 * 384 + 384,
        "conv4": 3 * 3 * 384 * 256 + 256,
        "conv5": 3 * 3 * 256 * 256 + 256,
        "fc1": 6 * 6 * 256 * 4096 + 4096,
        "fc2": 4096 * 4096 + 4096,
        "predictions": 4096 * 1000 + 1000,
    },
}


def layer_params(model):
    return {layer.name: layer.count_params() for layer in model.layers if layer.count_params()}


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_lenet_parameter_counts(variant):
    model = zoo.lenet(variant=variant)
    assert model.count_params() == 61_706
    assert layer_params(model) == LENET_LAYER_PARAMS


def test_lenet_variants_differ_in_activation_and_pooling():
    classic, modern = zoo.lenet(variant="classic"), zoo.lenet(variant="modern")
    assert classic.get_layer("conv1").get_config()["activation"] == "sigmoid"
    assert modern.get_layer("conv1").get_config()["activation"] == "relu"
    assert isinstance(classic.get_layer("pool1"), keras.layers.AveragePooling2D)
    assert isinstance(modern.get_layer("pool1"), keras.layers.MaxPooling2D)


@pytest.mark.parametrize(
    "variant, input_shape, total",
    [("original", (227, 227, 3), 62_378_344), ("torchvision", (224, 224, 3), 61_100_840)],
)
def test_alexnet_parameter_counts(variant, input_shape, total):
    model = zoo.alexnet(input_shape=input_shape, variant=variant)
    assert model.count_params() == total
    assert layer_params(model) == ALEXNET_LAYER_PARAMS[variant]
    assert sum(ALEXNET_LAYER_PARAMS[variant].values()) == total


def test_alexnet_shapes_at_default_input():
    model = zoo.alexnet()
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv1"] == (55, 55, 96)
    assert shapes["pool1"] == (27, 27, 96)
    assert shapes["conv2"] == (27, 27, 256)
    assert shapes["pool2"] == (13, 13, 256)
    assert shapes["pool5"] == (6, 6, 256)
    assert shapes["flatten"] == (9216,)


@pytest.mark.parametrize(
    "size, pool5, adaptive",
    [(224, (6, 6), (6, 6)), (63, (1, 1), (6, 6)), (100, (2, 2), (6, 6)), (300, (8, 8), (6, 6))],
)
def test_alexnet_torchvision_any_input_reaches_6x6(size, pool5, adaptive):
    model = zoo.alexnet(input_shape=(size, size, 3), variant="torchvision", classes=7)
    assert tuple(model.get_layer("pool5").output.shape[1:3]) == pool5
    assert tuple(model.get_layer("adaptive_pool").output.shape[1:3]) == adaptive
    assert model.count_params() == 61_100_840 - 4096 * 1000 - 1000 + 4096 * 7 + 7


@pytest.mark.parametrize(
    "builder, shape, classes",
    [
        (zoo.lenet, (28, 28, 1), 10),
        (zoo.lenet, (32, 32, 1), 3),
        (zoo.lenet, (12, 12, 3), 5),
        (lambda **kw: zoo.alexnet(variant="original", **kw), (67, 67, 3), 4),
        (lambda **kw: zoo.alexnet(variant="torchvision", **kw), (80, 64, 1), 2),
    ],
)
def test_softmax_outputs_are_probabilities(builder, shape, classes):
    model = builder(input_shape=shape, classes=classes)
    x = np.random.default_rng(0).random((3, *shape), dtype="float32")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (3, classes)
    assert np.all(np.isfinite(y)) and np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)


def test_classifier_activation_none_gives_logits():
    logits_model = zoo.lenet(classifier_activation=None)
    probs_model = zoo.lenet()
    probs_model.set_weights(logits_model.get_weights())
    x = np.random.default_rng(1).random((4, 28, 28, 1), dtype="float32")
    logits = keras.ops.convert_to_numpy(logits_model(x))
    probs = keras.ops.convert_to_numpy(probs_model(x))
    assert np.any(logits < 0) or np.any(logits > 1)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(exp / exp.sum(axis=1, keepdims=True), probs, atol=1e-5)


@pytest.mark.parametrize(
    "builder, shape, features",
    [
        (zoo.lenet, (28, 28, 1), (5, 5, 16)),
        (zoo.alexnet, (227, 227, 3), (6, 6, 256)),
        (lambda **kw: zoo.alexnet(variant="torchvision", **kw), (224, 224, 3), (6, 6, 256)),
    ],
)
def test_feature_extractor_outputs(builder, shape, features):
    none = builder(input_shape=shape, include_top=False)
    assert tuple(none.output_shape[1:]) == features
    x = np.random.default_rng(2).random((2, *shape), dtype="float32")
    maps = keras.ops.convert_to_numpy(none(x))
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        pooled = builder(input_shape=shape, include_top=False, pooling=pooling)
        pooled.set_weights(none.get_weights())
        assert tuple(pooled.output_shape[1:]) == (features[-1],)
        out = keras.ops.convert_to_numpy(pooled(x))
        np.testing.assert_allclose(out, reduce(maps, axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert not any(isinstance(layer, keras.layers.Dense) for layer in none.layers)


def test_feature_extractor_accepts_unknown_height_and_width():
    model = zoo.lenet(input_shape=(None, None, 1), include_top=False, pooling="avg")
    for size in (12, 28, 40):
        out = model(np.zeros((1, size, size, 1), dtype="float32"))
        assert tuple(out.shape) == (1, 16)


def test_input_tensor_is_used_as_the_model_input():
    inputs = keras.Input(shape=(32, 32, 1), name="my_images")
    model = zoo.lenet(input_tensor=inputs, classes=4)
    assert model.inputs[0] is inputs
    assert tuple(model.output_shape) == (None, 4)
    # 32 -> conv1 (same) 32 -> pool1 16 -> conv2 12 -> pool2 6: 6 * 6 * 16 = 576 inputs to fc1
    assert model.get_layer("fc1").count_params() == 576 * 120 + 120


def test_input_tensor_from_a_larger_graph_keeps_the_source_input():
    images = keras.Input(shape=(28, 28, 3))
    gray = keras.layers.Conv2D(1, 1, data_format="channels_last", name="to_gray")(images)
    model = zoo.lenet(input_tensor=gray)
    assert model.inputs[0] is images
    assert "to_gray" in [layer.name for layer in model.layers]


def test_names_default_to_registry_names_and_can_be_set():
    assert zoo.lenet().name == "lenet5"
    assert zoo.lenet(variant="modern").name == "lenet5_modern"
    assert zoo.alexnet(input_shape=(67, 67, 3)).name == "alexnet"
    assert zoo.lenet(name="my_lenet").name == "my_lenet"


def test_alexnet_dropout_rate_is_used():
    model = zoo.alexnet(input_shape=(67, 67, 3), dropout=0.3)
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == [0.3, 0.3]


def test_alexnet_local_response_norm_adds_no_parameters():
    plain = zoo.alexnet(input_shape=(67, 67, 3), classes=10)
    with_lrn = zoo.alexnet(input_shape=(67, 67, 3), classes=10, local_response_norm=True)
    names = [layer.name for layer in with_lrn.layers]
    assert names.index("norm1") == names.index("conv1") + 1
    assert names.index("norm2") == names.index("conv2") + 1
    assert with_lrn.count_params() == plain.count_params()


def _build_all_layers_channels_last(builder):
    model = builder()
    for layer in model.layers:
        config = layer.get_config()
        if "data_format" in config:
            assert config["data_format"] == "channels_last", layer.name
    return model


@pytest.mark.parametrize(
    "builder",
    [
        zoo.lenet,
        lambda: zoo.lenet(variant="modern"),
        lambda: zoo.alexnet(input_shape=(67, 67, 3), local_response_norm=True),
        lambda: zoo.alexnet(input_shape=(63, 63, 3), variant="torchvision"),
    ],
)
def test_channels_first_global_setting_still_gives_channels_last_models(builder):
    reference_model = builder()
    x = np.random.default_rng(3).random((2, *reference_model.input_shape[1:]), dtype="float32")
    expected = keras.ops.convert_to_numpy(reference_model(x))

    keras.config.set_image_data_format("channels_first")
    model = _build_all_layers_channels_last(builder)
    model.set_weights(reference_model.get_weights())
    assert model.input_shape == reference_model.input_shape
    assert model.output_shape == reference_model.output_shape
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, atol=1e-6)


@pytest.mark.parametrize("order", ["import zoo\nimport keras", "import keras\nimport zoo"])
def test_saved_model_with_zoo_layers_loads_after_a_plain_import_zoo(tmp_path, order):
    """A new process that only imports zoo (never zoo.layers) loads AlexNet's own layers."""
    import subprocess
    import sys

    path = tmp_path / "alexnet.keras"
    model = zoo.get_model("alexnet_torchvision", input_shape=(64, 64, 3), classes=3)
    model.save(path)
    code = (
        "import sys\n"
        + order
        + "\nprint('keras' in sys.modules)\n"
        + f"model = keras.saving.load_model({str(path)!r})\n"
        + "print(type(model.get_layer('adaptive_pool')).__module__)\n"
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


def test_import_zoo_does_not_import_keras():
    import subprocess
    import sys

    code = "import sys, zoo; print('keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"


# --- the keras.applications / kimm contract (issue 19) --------------------------------------


def test_input_shape_none_is_the_default_size():
    assert tuple(zoo.lenet().input_shape) == (None, 28, 28, 1)
    assert tuple(zoo.lenet(input_shape=None, include_top=False).input_shape) == (
        None,
        None,
        None,
        1,
    )
    assert tuple(zoo.alexnet(include_top=False).input_shape) == (None, None, None, 3)
    assert tuple(zoo.alexnet(classes=2).input_shape) == (None, 227, 227, 3)
    assert tuple(zoo.get_model("alexnet_torchvision", classes=2).input_shape) == (
        None,
        224,
        224,
        3,
    )
    with pytest.raises(ValueError, match=r"\(224, 224, 1\) for gray images or \(224, 224, 3\)"):
        zoo.alexnet(input_shape=(224, 224))


def test_torchvision_classifier_accepts_any_size_from_the_minimum():
    model = zoo.get_model("alexnet_torchvision", input_shape=(None, None, 3), classes=3)
    assert tuple(model.output_shape) == (None, 3)
    assert tuple(model.get_layer("adaptive_pool").output.shape) == (None, 6, 6, 256)
    fixed = zoo.get_model("alexnet_torchvision", input_shape=(77, 90, 3), classes=3)
    fixed.set_weights(model.get_weights())
    x = np.random.default_rng(0).random((2, 77, 90, 3)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), fixed.predict(x, verbose=0), rtol=1e-5, atol=1e-7
    )
    with pytest.raises(ValueError, match="include_top=False"):
        zoo.alexnet(input_shape=(None, None, 3))  # the paper's classifier needs a size


@pytest.mark.parametrize("policy, compute", [("mixed_float16", "float16"),
                                             ("mixed_bfloat16", "bfloat16")])  # fmt: skip
def test_mixed_precision_predictions_are_float32(policy, compute):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = zoo.get_model("lenet5_modern")
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("conv1").compute_dtype == compute
    assert model.get_layer("fc2").compute_dtype == compute
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert keras.backend.standardize_dtype(model.outputs[0].dtype) == "float32"
    x = np.random.default_rng(1).random((3, 28, 28, 1)).astype("float32")
    out = model.predict(x, verbose=0)
    assert out.dtype == np.float32 and out.shape == (3, 10)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, atol=1e-5)


def test_feature_extractor_returns_named_feature_maps():
    model = zoo.get_model("alexnet_torchvision", include_top=False, pooling="avg",
                          input_shape=(224, 224, 3), feature_extractor=True)  # fmt: skip
    shapes = {name: tuple(t.shape[1:]) for name, t in model.output.items()}
    assert shapes == {
        "conv1": (55, 55, 64),
        "pool1": (27, 27, 64),
        "conv2": (27, 27, 192),
        "pool2": (13, 13, 192),
        "conv3": (13, 13, 384),
        "conv4": (13, 13, 256),
        "conv5": (13, 13, 256),
        "pool5": (6, 6, 256),
        "avg_pool": (256,),
    }
    paper = zoo.alexnet(include_top=False, local_response_norm=True, feature_extractor=True)
    assert sorted(paper.output) == [
        "conv1", "conv2", "conv3", "conv4", "conv5", "pool1", "pool2", "pool5"
    ]  # fmt: skip
    maps = paper(np.zeros((1, 67, 67, 3), "float32"))
    assert tuple(maps["pool5"].shape) == (1, 1, 1, 256)


def test_a_feature_extractor_names_its_maps_in_layer_order_on_every_backend():
    """``model.output`` is the order to show maps in: the returned dict's own order is the
    backend's (JAX's predict and PyTorch sort the keys)."""
    model = zoo.get_model("lenet5", feature_extractor=True)
    in_layer_order = [layer.name for layer in model.layers if layer.name in model.output]
    assert (
        list(model.output) == in_layer_order == ["conv1", "pool1", "conv2", "pool2", "predictions"]
    )
    outputs = model(np.zeros((1, 28, 28, 1), "float32"))
    assert sorted(outputs) == sorted(model.output)

"""Pretrained weights: torchvision's AlexNet on every backend, zoo-convert, presets.

The reference is torchvision's own ``AlexNet`` class, read from the torchvision
wheel that ``make install`` unpacks into build/torchvision-ref (``import
torchvision`` itself fails beside a CPU torch: its C extension is a CUDA build).
Nothing is downloaded: the state dict comes from a seeded, randomly initialised
torchvision model.
"""

import ast
import dataclasses
import importlib
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from conftest import installed

import zoo
from zoo import cli, weights
from zoo.errors import ZooError
from zoo.models import _builder
from zoo.weights import presets, torchvision

try:
    import torch
except ImportError:  # the presets and ImageNet tests below still run
    torch = None

REPO = Path(__file__).resolve().parent.parent
TORCHVISION_ALEXNET = REPO / "build" / "torchvision-ref" / "torchvision" / "models" / "alexnet.py"
needs_torch = pytest.mark.skipif(torch is None, reason="reading .pth files needs torch")
needs_torchvision_source = pytest.mark.skipif(
    torch is None or not TORCHVISION_ALEXNET.is_file(),
    reason=f"needs torch and torchvision's alexnet.py at {TORCHVISION_ALEXNET} (make install)",
)


def torchvision_alexnet_class():
    """torchvision's ``AlexNet`` class, compiled from its own source file alone."""
    source = TORCHVISION_ALEXNET.read_text(encoding="utf-8")
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AlexNet")
    namespace = {"torch": torch, "nn": torch.nn, "_log_api_usage_once": lambda module: None}
    exec(compile(ast.Module([node], []), str(TORCHVISION_ALEXNET), "exec"), namespace)
    return namespace["AlexNet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A seeded torchvision AlexNet (eval mode) and its saved state dict."""
    if not TORCHVISION_ALEXNET.is_file():
        pytest.skip(f"torchvision's alexnet.py is not at {TORCHVISION_ALEXNET} (make install)")
    torch.manual_seed(0)
    model = torchvision_alexnet_class()().eval()
    path = tmp_path_factory.mktemp("torchvision") / "alexnet.pth"
    torch.save(model.state_dict(), path)
    return model, str(path)


def torch_logits(model, images):
    """torchvision's logits for channels-last ``images``."""
    with torch.no_grad():
        return model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()


def images(height, width, count=2, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, (count, height, width, 3)).astype("float32")


def assert_close_to_scale(actual, expected):
    """Within 1e-4 of the logits' scale (their largest magnitude)."""
    actual = np.asarray(keras.ops.convert_to_numpy(actual))
    assert actual.shape == expected.shape
    scale = np.abs(expected).max()
    assert scale > 0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * scale)


@needs_torchvision_source
@pytest.mark.parametrize("height, width", [(224, 224), (256, 300), (63, 63)])
def test_torchvision_weights_give_torchvision_logits(reference, height, width):
    torch_model, path = reference
    x = images(height, width)
    model = zoo.get_model(
        "alexnet_torchvision",
        input_shape=(height, width, 3),
        classifier_activation=None,
        weights=path,
    )
    assert_close_to_scale(model.predict(x, verbose=0), torch_logits(torch_model, x))


@needs_torchvision_source
def test_any_size_model_gives_torchvision_logits(reference):
    torch_model, path = reference
    model = zoo.get_model(
        "alexnet_torchvision",
        input_shape=(None, None, 3),
        classifier_activation=None,
        weights=path,
    )
    assert tuple(model.input_shape) == (None, None, None, 3)
    for height, width in ((256, 300), (63, 63), (95, 70)):
        x = images(height, width, seed=height)
        assert_close_to_scale(model.predict(x, verbose=0), torch_logits(torch_model, x))


@needs_torchvision_source
def test_feature_extractor_loads_only_the_features(reference):
    torch_model, path = reference
    x = images(100, 120)
    model = zoo.get_model("alexnet_torchvision", include_top=False, weights=path)
    assert tuple(model.input_shape) == (None, None, None, 3)
    assert [layer.name for layer in model.layers if layer.weights] == [
        "conv1",
        "conv2",
        "conv3",
        "conv4",
        "conv5",
    ]
    with torch.no_grad():
        expected = torch_model.features(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert_close_to_scale(model.predict(x, verbose=0), expected.transpose(0, 2, 3, 1))
    kernel = model.get_layer("conv1").get_weights()[0]
    assert kernel.shape == (11, 11, 3, 64)
    torch_kernel = torch_model.features[0].weight.detach().numpy()  # (64, 3, 11, 11)
    assert kernel[4, 7, 2, 9] == torch_kernel[9, 2, 4, 7]


@needs_torchvision_source
def test_other_classes_keep_their_head_with_one_warning(reference):
    torch_model, path = reference
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = zoo.get_model("alexnet_torchvision", input_shape=(63, 63, 3), classes=5,
                              weights=path)  # fmt: skip
    messages = [str(w.message) for w in caught if "predictions" in str(w.message)]
    assert messages == [
        f"{path} has 1000 classes and the model 5: the head 'predictions' keeps its random "
        "initialisation (train it, e.g. with zoo-train)."
    ]
    fc2 = model.get_layer("fc2").get_weights()[0]
    np.testing.assert_array_equal(fc2, torch_model.classifier[4].weight.detach().numpy().T)
    assert model.get_layer("predictions").get_weights()[0].shape == (4096, 5)


def test_fc1_rows_follow_the_channels_last_flatten():
    rng = np.random.default_rng(3)
    channels, height, width, out = 3, 2, 2, 4
    weight = rng.standard_normal((out, channels * height * width)).astype("float32")
    pooled = rng.standard_normal((height, width, channels)).astype("float32")  # one image, HWC
    torch_out = weight @ pooled.transpose(2, 0, 1).reshape(-1)  # torch flattens (C, H, W)
    kernel = torchvision.torch_fc1_to_keras(weight, channels, (height, width))
    assert kernel.shape == (12, 4)
    np.testing.assert_allclose(pooled.reshape(-1) @ kernel, torch_out, rtol=1e-6)
    # Row of (h=1, w=0, c=2) in Keras = column 2*4 + 1*2 + 0 = 10 in torch.
    np.testing.assert_array_equal(kernel[1 * 6 + 0 * 3 + 2], weight[:, 10])


@needs_torchvision_source
def test_zoo_convert_round_trips_through_another_backend(reference, tmp_path, capsys):
    torch_model, path = reference
    here = keras.backend.backend()
    order = {
        "jax": ("torch", "tensorflow"),
        "tensorflow": ("jax", "torch"),
        "torch": ("tensorflow", "jax"),
    }
    other = next((b for b in order[here] if installed(b)), here)  # here: a one-backend install
    destination = tmp_path / "alexnet.weights.h5"
    command = [sys.executable, "-m", "zoo", "convert", path, str(destination)]
    environment = {**os.environ, "KERAS_BACKEND": other}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"wrote {destination}" in done.stdout
    assert sorted(os.listdir(tmp_path)) == ["alexnet.weights.h5"]  # no temporary file left

    x = images(224, 224, seed=7)
    model = zoo.get_model("alexnet_torchvision", classifier_activation=None,
                          weights=str(destination))  # fmt: skip
    assert_close_to_scale(model.predict(x, verbose=0), torch_logits(torch_model, x))

    features = zoo.get_model("alexnet_torchvision", include_top=False, weights=str(destination))
    np.testing.assert_array_equal(
        features.get_layer("conv5").get_weights()[0],
        torch_model.features[10].weight.detach().numpy().transpose(2, 3, 1, 0),
    )

    before = destination.stat().st_mtime_ns
    assert cli.zoo_convert([path, str(destination)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "already exists; pass --overwrite" in error
    assert destination.stat().st_mtime_ns == before
    assert cli.zoo_convert([path, str(destination), "--overwrite"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["alexnet.weights.h5"]


@needs_torchvision_source
def test_bad_state_dicts_name_the_layer(reference, tmp_path):
    torch_model, path = reference
    state = torch_model.state_dict()
    cases = {
        "conv2": ({**state, "features.3.weight": torch.zeros(192, 32, 5, 5)}, [
            "layer 'conv2' has weights of shapes [(5, 5, 32, 192), (192,)]",
            "needs [(5, 5, 64, 192), (192,)]",
        ]),
        "fc1": ({**state, "classifier.1.weight": torch.zeros(4096, 100)}, [
            "layer 'fc1' (classifier.1.weight) has 100 inputs", "it must have 9216",
        ]),
        "missing": ({k: v for k, v in state.items() if k != "classifier.6.bias"}, [
            "is not a torchvision AlexNet state dict: missing classifier.6.bias",
        ]),
        "dense_as_conv": ({**state, "features.0.weight": torch.zeros(64, 363)}, [
            "features.0.weight (64, 363)", "cannot be layer 'conv1' (a convolution layer)",
        ]),
    }  # fmt: skip
    for name, (bad_state, words) in cases.items():
        bad = tmp_path / f"{name}.pth"
        torch.save(bad_state, bad)
        with pytest.raises(ZooError) as error:
            zoo.get_model(  # the classifier (and its 37M-weight fc1) only where it is tested
                "alexnet_torchvision", include_top=name == "fc1", weights=str(bad)
            )
        for word in words:
            assert word in str(error.value), (name, str(error.value))


@needs_torch
def test_torch_files_and_names_are_refused_where_they_do_not_apply(tmp_path):
    listed = tmp_path / "list.pth"
    torch.save([1, 2], listed)
    with pytest.raises(ZooError, match="holds a list, not a state dict of tensors"):
        zoo.get_model("alexnet_torchvision", include_top=False, weights=str(listed))
    with pytest.raises(ZooError, match="loads only into alexnet_torchvision"):
        zoo.lenet(weights=str(listed))
    with pytest.raises(ZooError, match=r"preset name \('digits', 'mnist' for lenet5\)"):
        zoo.lenet(weights="imagenet")
    with pytest.raises(ZooError, match=r"\('imagenet' for alexnet_torchvision\).*'\.pth'"):
        zoo.get_model("alexnet_torchvision", include_top=False, weights="digits")


@needs_torch
def test_without_torch_the_error_says_to_convert_once(tmp_path, monkeypatch):
    path = tmp_path / "alexnet.pth"
    torch.save({"w": torch.zeros(1)}, path)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    with pytest.raises(ZooError) as error:
        torchvision.read_torch_state_dict(str(path))
    assert str(error.value) == (
        f"reading the PyTorch file {path} needs torch, which is not installed. Convert it once "
        f"on a machine with torch: zoo-convert {path} alexnet.weights.h5, then pass "
        "weights='alexnet.weights.h5' (it loads on every backend without torch)."
    )


@needs_torchvision_source
def test_imagenet_reads_the_torch_cache_and_never_downloads(reference, tmp_path, monkeypatch):
    torch_model, path = reference
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ZooError, match="alexnet-owt-7be5be79.pth, which is not in the PyTorch"):
        zoo.get_model("alexnet_torchvision", include_top=False, weights="imagenet")
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "alexnet-owt-7be5be79.pth").write_bytes(Path(path).read_bytes())
    model = zoo.get_model("alexnet_torchvision", include_top=False, weights="imagenet")
    np.testing.assert_array_equal(
        model.get_layer("conv5").get_weights()[1], torch_model.features[10].bias.detach().numpy()
    )


def test_registry_lists_the_weights_each_model_accepts():
    assert zoo.model_info("lenet5")["weights"] == ["digits", "mnist"]
    assert zoo.model_info("lenet5_modern")["weights"] == ["digits", "mnist"]
    assert zoo.model_info("alexnet_torchvision")["weights"] == ["imagenet"]
    assert zoo.model_info("alexnet")["weights"] == []
    for name in zoo.list_models():
        assert zoo.model_info(name)["weights"] == weights.available_weights(name)
        assert zoo.model_info(name)["classifier"] == "predictions"


# --- the shipped digits presets -------------------------------------------------------------

# The accuracies docs/guide/weights.md documents; `make weights` prints them.
DOCUMENTED_ACCURACY = {"lenet5": 0.9721, "lenet5_modern": 0.9526}


@pytest.fixture(scope="module")
def digits_test():
    from zoo.data import load_dataset, prepare_arrays

    test = load_dataset("digits").test
    return prepare_arrays(test.images, (28, 28, 1)), np.asarray(test.labels)


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_shipped_digits_preset_reaches_its_documented_accuracy(name, digits_test):
    images, labels = digits_test
    preset = presets.PRESETS[(name, "digits")]
    assert preset.test_accuracy == DOCUMENTED_ACCURACY[name]
    assert weights.sha256_of(weights.preset_path(preset)) == preset.sha256
    model = zoo.get_model(name, weights="digits")
    predicted = np.argmax(model.predict(images, verbose=0), axis=-1)
    accuracy = float(np.mean(predicted == labels))
    assert labels.shape == (359,)
    # Made on JAX; another backend may round one borderline image the other way.
    assert abs(accuracy - preset.test_accuracy) <= 1 / len(labels) + 1e-4, accuracy


def test_preset_checksum_mismatch_is_one_clear_error(monkeypatch):
    preset = presets.PRESETS[("lenet5", "digits")]
    wrong = dataclasses.replace(preset, sha256="0" * 64)
    monkeypatch.setitem(presets.PRESETS, ("lenet5", "digits"), wrong)
    with pytest.raises(ZooError) as error:
        zoo.lenet(weights="digits")
    path = weights.preset_path(preset)
    assert str(error.value) == (
        f"the 'digits' weights of lenet5 ({path}) fail their checksum: SHA-256 "
        f"{preset.sha256}, expected {'0' * 64}. The file is damaged or was replaced: "
        "reinstall the zoo, or regenerate it with `make weights`."
    )


def test_preset_features_heads_and_sizes():
    trained = zoo.get_model("lenet5_modern", weights="digits")
    for features in (
        zoo.get_model("lenet5_modern", include_top=False, weights="digits"),
        zoo.get_model(
            "lenet5_modern", include_top=False, input_shape=(40, 36, 1), weights="digits"
        ),
    ):
        for layer in ("conv1", "conv2"):
            for a, b in zip(trained.get_layer(layer).get_weights(),
                            features.get_layer(layer).get_weights(), strict=True):  # fmt: skip
                np.testing.assert_array_equal(a, b)
    assert tuple(features.input_shape) == (None, 40, 36, 1)
    with pytest.raises(ZooError) as error:  # as keras.applications refuses imagenet with 3 classes
        zoo.get_model("lenet5_modern", classes=3, weights="digits")
    assert str(error.value) == (
        "the 'digits' weights of lenet5_modern have 10 classes and this model 3: build it with "
        "classes=10, or with include_top=False and put your own head on its features."
    )
    with pytest.raises(ZooError) as error:
        zoo.get_model("lenet5", input_shape=(32, 32, 1), weights="digits")
    assert str(error.value) == (
        "the 'digits' weights of lenet5 were trained at input_shape=(28, 28, 1) and do not fit "
        "a model built at (32, 32, 1): use that input_shape (resize images to 28x28), or "
        "include_top=False for features at any size."
    )
    with pytest.raises(ZooError, match=r"trained on 1-channel images .* takes 3 channels"):
        zoo.get_model("lenet5", include_top=False, input_shape=(28, 28, 3), weights="digits")


def test_a_preset_loads_into_the_model_being_built(monkeypatch):
    """One model is assembled: the preset's file loads into it, no second model to copy from."""
    assembled = []
    assemble = _builder.assemble

    def counting(name, *args, **kwargs):
        assembled.append(name)
        return assemble(name, *args, **kwargs)

    monkeypatch.setattr(_builder, "assemble", counting)
    model = zoo.lenet(weights="digits", name="mine")
    assert assembled == ["mine"]
    reference = zoo.get_model("lenet5")
    reference.load_weights(weights.preset_path(presets.PRESETS[("lenet5", "digits")]))
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_feature_maps_of_the_preset_are_its_layers_outputs(digits_test):
    images = digits_test[0][:4]
    model = zoo.lenet(weights="digits")
    maps = zoo.lenet(weights="digits", feature_extractor=True)(images)
    assert sorted(maps) == ["conv1", "conv2", "pool1", "pool2", "predictions"]
    assert tuple(maps["pool1"].shape) == (4, 14, 14, 6)
    probe = keras.Model(model.inputs, model.get_layer("conv2").output)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(maps["conv2"]), probe.predict(images, verbose=0), atol=1e-6
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(maps["predictions"]), model.predict(images, verbose=0),
        atol=1e-6,
    )  # fmt: skip


# --- the declarations -----------------------------------------------------------------------

PRESET_FOLDER = Path(presets.__file__).parent


def test_each_preset_is_declared_once_and_its_file_agrees():
    declared = [preset for family in presets.FAMILIES for preset in family.PRESETS]
    assert len(declared) == len(presets.PRESETS)  # none shadowed by a second declaration
    assert sorted(presets.PRESETS) == [
        ("alexnet_torchvision", "imagenet"),
        ("lenet5", "digits"),
        ("lenet5", "mnist"),
        ("lenet5_modern", "digits"),
        ("lenet5_modern", "mnist"),
    ]
    for name in zoo.list_models():  # the registry's names are derived, never typed
        assert zoo.model_spec(name).weights == presets.preset_names(name)
    for model, name in presets.PRESETS:
        assert name in zoo.model_info(model)["weights"]
    shipped = {preset.file: preset for preset in declared if preset.location == "package"}
    beside = {path.name for path in PRESET_FOLDER.iterdir() if path.suffix not in (".py", "")}
    assert beside == set(shipped)  # no file without its declaration, and no second record
    for file, preset in shipped.items():
        assert re.fullmatch("[0-9a-f]{64}", preset.sha256), file
        assert weights.sha256_of(PRESET_FOLDER / file) == preset.sha256, file
        assert preset.test_accuracy is not None and preset.training["seed"] == 0
        credit = re.search(r"\((zoo(?:\.\w+)+)\)", preset.made_by).group(1)
        module, function = credit.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), function, None)), credit


def test_a_second_declaration_is_refused():
    preset = presets.PRESETS[("lenet5", "digits")]
    with pytest.raises(ZooError, match="preset 'digits' of lenet5 is declared twice"):
        presets.collect([preset, dataclasses.replace(preset, file="other.weights.h5")])
    with pytest.raises(ZooError, match="lenet5-digits.weights.h5 is the file of two presets"):
        presets.collect([preset, dataclasses.replace(preset, name="mnist")])
    layout = presets.TORCH_LAYOUTS["alexnet_torchvision"]
    with pytest.raises(ZooError, match="alexnet_torchvision's PyTorch layout is declared twice"):
        presets.collect([layout, layout])
    with pytest.raises(ZooError, match="location must be one of package, torch_hub"):
        dataclasses.replace(preset, location="web")


def test_a_new_preset_is_one_declaration(monkeypatch):
    """A preset is one more Preset beside its family, and its file (as issue 30's MNIST ones)."""
    digits = presets.PRESETS[("lenet5", "digits")]
    extra = dataclasses.replace(digits, name="extra", dataset="extra", preprocessing="digits")
    monkeypatch.setitem(presets.PRESETS, ("lenet5", "extra"), extra)
    assert weights.available_weights("lenet5") == ["digits", "extra", "mnist"]
    assert weights.available_weights("lenet5_modern") == ["digits", "mnist"]
    np.testing.assert_array_equal(
        zoo.lenet(weights="extra").get_layer("fc1").get_weights()[0],
        zoo.lenet(weights="digits").get_layer("fc1").get_weights()[0],
    )
    with pytest.raises(ZooError, match=r"preset name \('digits', 'mnist' for lenet5_modern\)"):
        zoo.get_model("lenet5_modern", weights="extra")


@needs_torch
def test_which_models_read_pytorch_files_is_looked_up_in_the_declarations(tmp_path, monkeypatch):
    path = tmp_path / "lenet.pth"
    torch.save({"w": torch.zeros(1)}, path)
    source = zoo.lenet(classes=3)
    arrays = {layer.name: layer.get_weights() for layer in source.layers if layer.weights}

    def to_keras(state, where, layers):
        assert sorted(state) == ["w"] and where == str(path)
        return {name: arrays[name] for name in layers}

    layout = presets.TorchLayout("lenet5", "test LeNet", to_keras)
    monkeypatch.setitem(presets.TORCH_LAYOUTS, "lenet5", layout)
    model = zoo.lenet(classes=3, weights=str(path))
    for a, b in zip(model.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.warns(UserWarning, match="3 classes and the model 4: the head 'predictions'"):
        zoo.lenet(classes=4, weights=str(path))
    monkeypatch.delitem(presets.TORCH_LAYOUTS, "alexnet_torchvision")
    with pytest.raises(ZooError, match=r"loads only into lenet5 \(test LeNet\), not alexnet_"):
        zoo.get_model("alexnet_torchvision", include_top=False, weights=str(path))


def test_make_weights_says_when_a_file_leaves_its_declaration(tmp_path, monkeypatch):
    """``make weights`` trains as each declaration says, and fails naming what to write there."""
    import zoo.training.run
    from zoo.training import presets as make

    def train(model, dataset, output, quiet, **training):  # stands in for 30 epochs
        assert (dataset, training["seed"], training["conv_impl"]) == ("digits", 0, "native")
        assert training.get("epochs") == (15 if model == "lenet5_modern" else None)
        return SimpleNamespace(model=zoo.get_model(model), metrics={"test_accuracy": 0.5})

    monkeypatch.setattr(zoo.training.run, "train", train)
    with pytest.raises(ZooError) as error:  # no MNIST under tmp_path: the digits presets alone
        make.make_presets(str(tmp_path), root=str(tmp_path / "repo"))
    written = sorted(os.listdir(tmp_path))
    assert written == ["lenet5-digits.weights.h5", "lenet5_modern-digits.weights.h5"]
    for file in written:
        facts = f"'digits': sha256={weights.sha256_of(tmp_path / file)!r}, test_accuracy=0.5"
        assert facts in str(error.value)


def test_the_loading_code_names_no_model_and_no_head():
    """Which model reads what, and the head's name, are looked up, never compared with."""
    names = {*zoo.list_models(), zoo.model_spec("lenet5").classifier}
    for module in (weights, importlib.import_module("zoo.training.presets")):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        found = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)} & names
        assert found == set(), (module.__name__, found)


# --- ImageNet conventions -------------------------------------------------------------------


def test_preprocess_input_torch_mode():
    pixels = np.array([[[[0, 255, 128]]]], dtype="uint8")  # one 1x1 RGB image
    expected = np.array(
        [(0 - 0.485) / 0.229, (1 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225], "float32"
    )
    out = zoo.preprocess_input(pixels, mode="torch")
    assert out.dtype == np.float32 and out.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(out[0, 0, 0], expected, rtol=1e-6)
    tensor = zoo.preprocess_input(keras.ops.convert_to_tensor(pixels), mode="torch")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tensor)[0, 0, 0], expected, rtol=1e-6)
    with pytest.raises(ZooError, match=r"channels-last RGB .* got shape \(1, 3, 4, 4\)"):
        zoo.preprocess_input(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ZooError, match="Unknown mode 'caffe'"):
        zoo.preprocess_input(pixels, mode="caffe")


def test_decode_predictions_names_the_best_classes():
    from zoo.weights.imagenet import class_names

    names = class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[:2] == ["tench", "goldfish"] and names[999] == "toilet tissue"
    scores = np.zeros((2, 1000), "float32")
    scores[0, [1, 7, 999]] = [0.5, 0.3, 0.2]
    scores[1, 281] = 1.0
    decoded = zoo.decode_predictions(scores, top=3)
    assert decoded[0] == [(1, "goldfish", 0.5), (7, "cock", pytest.approx(0.3)),
                          (999, "toilet tissue", pytest.approx(0.2))]  # fmt: skip
    assert decoded[1][0] == (281, "tabby", 1.0)
    with pytest.raises(ZooError, match=r"shape \(batch, 1000\), got \(2, 10\)"):
        zoo.decode_predictions(np.zeros((2, 10)))


def test_zoo_predict_names_imagenet_classes_and_normalises_like_torch(tmp_path, capsys):
    from PIL import Image

    from zoo.deploy import predict
    from zoo.weights.imagenet import class_names

    model = zoo.lenet(input_shape=(28, 28, 3), classes=1000)  # any 1000-class RGB model
    model_path = tmp_path / "model.keras"
    model.save(model_path)
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype="uint8")
    image = tmp_path / "image.png"
    Image.fromarray(pixels).save(image)
    expected = model.predict(zoo.preprocess_input(pixels[None], mode="torch"), verbose=0)[0]
    best = np.argsort(-expected)[:2]

    [found] = predict.classify(model, [str(image)], top=2, preprocess="torch")
    assert [index for index, _ in found] == list(best)
    np.testing.assert_allclose([p for _, p in found], expected[best], rtol=1e-5)

    argv = [str(model_path), str(image), "--top", "2", "--preprocess", "torch"]
    assert cli.zoo_predict(argv) == 0
    captured = capsys.readouterr()
    names = class_names()
    # an untrained model is unsure of everything: its first class is marked so
    lines = [f"  {expected[i]:7.4f}  {names[i]}" for i in best]
    assert captured.out.splitlines()[1:] == [lines[0] + "  (unsure)", *lines[1:]]
    assert "printing class indices" not in captured.err


def test_zoo_convert_bad_arguments_are_one_line(tmp_path, capsys):
    cases = [
        (["alexnet.pth", str(tmp_path / "out.h5")], "the destination must end in '.weights.h5'"),
        (["alexnet.onnx", str(tmp_path / "out.weights.h5")], "must be a PyTorch '.pth' or '.pt'"),
        ([str(tmp_path / "no.pth"), str(tmp_path / "out.weights.h5")], "does not exist"),
        (
            [str(tmp_path / "no.pth"), str(tmp_path / "missing" / "out.weights.h5")],
            "does not exist",
        ),
    ]
    for argv, words in cases:
        assert cli.zoo_convert(argv) == 2
        error = capsys.readouterr().err
        assert error.startswith("zoo-convert: error: ") and error.count("\n") == 1, error
        assert words in error, error
    assert os.listdir(tmp_path) == []


def test_a_whole_models_file_gives_a_feature_extractor_its_features(tmp_path):
    whole = zoo.lenet(variant="modern")
    path = tmp_path / "lenet.weights.h5"
    whole.save_weights(path)
    features = zoo.lenet(variant="modern", include_top=False, weights=str(path))
    for layer in ("conv1", "conv2"):
        for a, b in zip(whole.get_layer(layer).get_weights(),
                        features.get_layer(layer).get_weights(), strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b)
    three = zoo.lenet(classes=3)  # the features do not depend on the classes
    other = tmp_path / "three.weights.h5"
    three.save_weights(other)
    features = zoo.lenet(include_top=False, pooling="avg", weights=str(other))
    np.testing.assert_array_equal(
        features.get_layer("conv2").get_weights()[0], three.get_layer("conv2").get_weights()[0]
    )

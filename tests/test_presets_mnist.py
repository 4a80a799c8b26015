"""The MNIST presets (issue 30) and ``--augment digits``, on the backend the suite runs on.

The presets' accuracy is measured on the real MNIST t10k folder beside the repository
(``../shared/data/mnist-t10k``), held out as ``zoo-train`` holds it out: the last 2,000 images.
A checkout without that folder skips those tests, saying why.
"""

import dataclasses
import gzip
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import zoo
from zoo.data import load_dataset, prepare_arrays
from zoo.errors import ZooError
from zoo.training import checkpoint, splits
from zoo.training import presets as make
from zoo.training.config import TrainConfig
from zoo.weights import presets, sha256_of

ROOT = Path(__file__).resolve().parents[1]
MNIST_T10K = ROOT.parent / "shared/data/mnist-t10k"
needs_mnist = pytest.mark.skipif(
    not MNIST_T10K.is_dir(),
    reason=f"the MNIST t10k folder is not at {MNIST_T10K} (a checkout without ../shared)",
)
MODELS = ("lenet5", "lenet5_modern")


@pytest.fixture(scope="module")
def held_out():
    """The last 2,000 t10k images, prepared as the presets take them, and their labels."""
    test = load_dataset(str(MNIST_T10K)).test
    return prepare_arrays(test.images, (28, 28, 1)), test.labels


def read_raw(name):
    with gzip.open(MNIST_T10K / name, "rb") as handle:
        data = handle.read()
    return np.frombuffer(data, np.uint8, offset=16 if "images" in name else 8)


@needs_mnist
def test_the_held_out_images_are_the_last_2000_of_t10k(held_out):
    images, labels = held_out
    raw_images = read_raw("t10k-images-idx3-ubyte.gz").reshape(10_000, 28, 28)
    raw_labels = read_raw("t10k-labels-idx1-ubyte.gz")
    assert images.shape == (2000, 28, 28, 1)
    np.testing.assert_array_equal(labels, raw_labels[8000:])
    np.testing.assert_allclose(images[..., 0], raw_images[8000:] / 255, atol=1e-6)
    assert make.dataset_of(presets.find("lenet5_modern", "mnist")) == str(MNIST_T10K)


@needs_mnist
@pytest.mark.parametrize("name", MODELS)
def test_each_mnist_preset_scores_its_declared_accuracy(name, held_out):
    preset = presets.find(name, "mnist")
    model = zoo.get_model(name, weights="mnist")
    images, labels = held_out
    predicted = np.argmax(model.predict(images, batch_size=500, verbose=0), axis=-1)
    accuracy = float(np.mean(predicted == labels))
    assert abs(accuracy - preset.test_accuracy) <= 0.002, accuracy
    if name == "lenet5_modern":  # the target
        assert accuracy >= 0.985 and preset.test_accuracy >= 0.985


@pytest.mark.parametrize("name", MODELS)
def test_the_mnist_presets_are_declared_for_digits_people_draw(name):
    preset = presets.find(name, "mnist")
    assert preset.prepare == "digit" and preset.input_shape == (28, 28, 1)
    assert "CC BY-SA 3.0" in preset.made_by and "LeCun" in preset.made_by
    assert preset.training["augment"] == "digits" and preset.training["seed"] == 0
    assert preset.training["validation_split"] == 0  # all 8,000 train; the 2,000 test
    assert sha256_of(Path(presets.__file__).parent / preset.file) == preset.sha256
    assert "mnist" in zoo.model_info(name)["weights"]
    assert "mnist" in zoo.model_spec(name).weights


def fake_train(seen):
    def train(model, dataset, output, quiet, **training):
        seen.append((model, dataset, dict(training)))
        return SimpleNamespace(model=zoo.get_model(model), metrics={"test_accuracy": 0.5})

    return train


def test_make_weights_trains_the_mnist_presets_where_their_data_lies(tmp_path, monkeypatch):
    import zoo.training.run

    root = tmp_path / "repo"
    data = tmp_path / "shared/data/mnist-t10k"
    data.mkdir(parents=True)
    root.mkdir()
    seen = []
    monkeypatch.setattr(zoo.training.run, "train", fake_train(seen))
    with pytest.raises(ZooError, match="differ from their declarations"):
        make.make_presets(str(tmp_path), root=str(root))
    mnist = [(model, dataset) for model, dataset, training in seen if training.get("augment")]
    folder = str(data.resolve())
    assert sorted(mnist) == [("lenet5", folder), ("lenet5_modern", folder)]
    assert {"lenet5-mnist.weights.h5", "lenet5_modern-mnist.weights.h5"} <= set(
        os.listdir(tmp_path)
    )


def test_make_weights_without_the_shared_data_says_it_skips_the_mnist_presets(
    tmp_path, monkeypatch, capsys
):
    import zoo.training.run

    seen = []
    monkeypatch.setattr(zoo.training.run, "train", fake_train(seen))
    with pytest.raises(ZooError, match="differ from their declarations"):
        make.make_presets(str(tmp_path), root=str(tmp_path / "repo"))
    out = capsys.readouterr().out
    for name in MODELS:
        assert f"skipping {name} 'mnist': its dataset mnist-t10k is not at" in out
    assert {dataset for _, dataset, _ in seen} == {"digits"}
    assert sorted(os.listdir(tmp_path)) == [
        "lenet5-digits.weights.h5",
        "lenet5_modern-digits.weights.h5",
    ]


# --- --augment digits --------------------------------------------------------------------


def strokes(count=8, seed=0):
    """``count`` 28x28 images of a bright bar on black, at random places."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28, 1), "float32")
    for image, (row, col) in zip(images, rng.integers(6, 18, (count, 2)), strict=True):
        image[row : row + 8, col : col + 2] = 1.0
    return images


def test_augment_digits_changes_each_image_the_same_way_for_the_same_draws():
    images = strokes()
    first = splits.augment_digits(images, np.random.default_rng(1))
    again = splits.augment_digits(images, np.random.default_rng(1))
    other = splits.augment_digits(images, np.random.default_rng(2))
    assert first.shape == images.shape and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, images) and not np.allclose(first, other)
    assert first.min() >= 0 and first.max() <= 1 + 1e-6
    blank = np.zeros_like(images)
    np.testing.assert_array_equal(splits.augment_digits(blank, np.random.default_rng(1)), blank)


def test_augmented_batches_cover_every_image_each_epoch_and_resume_alike():
    images, labels = strokes(10), np.arange(10)
    batches = splits.augmented_batches(images, labels, 4, seed=3)
    assert len(batches) == 3
    epoch0 = [batches[i] for i in range(3)]
    np.testing.assert_array_equal(batches[1][0], epoch0[1][0])  # asked twice: the same
    assert sorted(np.concatenate([y for _, y in epoch0])) == list(range(10))
    batches.on_epoch_end()
    epoch1 = [batches[i] for i in range(3)]
    assert sorted(np.concatenate([y for _, y in epoch1])) == list(range(10))
    assert not np.array_equal(epoch0[0][0], epoch1[0][0])
    resumed = splits.augmented_batches(images, labels, 4, seed=3, first_epoch=1)
    for (x, y), (rx, ry) in zip(epoch1, [resumed[i] for i in range(3)], strict=True):
        np.testing.assert_array_equal(x, rx)
        np.testing.assert_array_equal(y, ry)


def test_augment_is_a_checked_training_option():
    assert TrainConfig(augment="digits").augment == "digits"
    assert TrainConfig.from_argv(["--augment", "digits"]).augment == "digits"
    with pytest.raises(ZooError, match="--augment must be one of none, digits, got 'blur'"):
        TrainConfig(augment="blur")


def test_an_augmented_run_trains_and_evaluates_the_plain_model(tmp_path):
    result = zoo.train(
        model="lenet5_modern",
        dataset="digits",
        epochs=1,
        limit=64,
        validation_split=0,
        augment="digits",
        output=tmp_path / "run",
        quiet=True,
    )
    plain = zoo.get_model("lenet5_modern")
    assert [layer.name for layer in result.model.layers] == [layer.name for layer in plain.layers]
    assert result.metrics["augment"] == "digits"
    test = load_dataset("digits").test
    images = prepare_arrays(test.images, (28, 28, 1))
    predicted = np.argmax(result.model.predict(images, verbose=0), axis=-1)
    # The evaluation saw the test images as they are: its accuracy is the plain model's on them.
    assert result.metrics["test_accuracy"] == pytest.approx(np.mean(predicted == test.labels))
    saved = checkpoint.load(str(tmp_path / "run"))[0]
    assert [layer.name for layer in saved.layers] == [layer.name for layer in plain.layers]


def test_a_declared_preset_without_its_data_is_looked_for_under_the_root(tmp_path):
    preset = presets.find("lenet5", "mnist")
    assert make.dataset_of(preset, root=tmp_path / "repo") is None
    digits = dataclasses.replace(preset, data_path="", dataset="digits")
    assert make.dataset_of(digits, root=tmp_path) == "digits"

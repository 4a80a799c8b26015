"""Adding a dataset and a model: one function and one registration line each, then train."""

import json

import keras
import numpy as np
import pytest

import zoo
from zoo import registry
from zoo.data import Dataset, Split, dataset, register_dataset
from zoo.registry import ModelSpec, Paper, Recipe


@pytest.fixture
def restore_registries():
    """Registrations made by a test are undone after it."""
    specs, named, kinds = dict(registry._SPECS), dict(dataset._NAMED), list(dataset._PATH_KINDS)
    yield
    registry._SPECS.clear(), registry._SPECS.update(specs)
    dataset._NAMED.clear(), dataset._NAMED.update(named)
    dataset._PATH_KINDS[:] = kinds


def stripes(count, seed):
    """12x12 images of horizontal (class 0) or vertical (class 1) stripes, with noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    rows = (np.arange(12) % 4 < 2).astype("float32")
    horizontal = np.repeat(rows[:, None], 12, axis=1)
    images = np.where(labels[:, None, None] == 0, horizontal, horizontal.T)
    images = images + rng.normal(0, 0.2, images.shape)
    return Split(np.clip(images, 0, 1)[..., None].astype("float32"), labels.astype("int64"))


def test_a_new_dataset_and_a_new_model_train_end_to_end(tmp_path, restore_registries):
    @register_dataset("toy_stripes")
    def load_stripes():
        return Dataset("toy_stripes", ["horizontal", "vertical"], stripes(240, 0), stripes(60, 1))

    @zoo.register_model(
        ModelSpec(
            "toy_cnn",
            family="Toy",
            paper=Paper("A stripe detector", "The zoo's tests", 2026),
            default_input_shape=(12, 12, 1),
            min_input_shape=(3, 3, 1),
            params=3 * 3 * 1 * 4 + 4 + 4 * 2 + 2,  # conv 3x3x1 -> 4, then dense 4 -> 2
            classes=2,
            recipe=Recipe(epochs=4, batch_size=16, learning_rate=0.02),
        )
    )
    def toy_cnn(input_shape=(12, 12, 1), classes=2, name="toy_cnn"):
        return keras.Sequential(
            [
                keras.Input(input_shape),
                keras.layers.Conv2D(4, 3, activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(classes, activation="softmax"),
            ],
            name=name,
        )

    assert "toy_stripes" in zoo.data.list_datasets()["names"]
    assert zoo.model_info("toy_cnn")["params"] == zoo.get_model("toy_cnn").count_params() == 50
    result = zoo.train(model="toy_cnn", dataset="toy_stripes", output=str(tmp_path), quiet=True)
    assert result.metrics["epochs_completed"] == 4 and result.metrics["params"] == 50
    assert result.metrics["train_images"] == 216 and result.metrics["test_images"] == 60
    assert result.metrics["test_accuracy"] >= 0.9  # stripes are easy; chance is 0.5
    names = json.loads((tmp_path / "classes.json").read_text())
    assert names == ["horizontal", "vertical"]


def test_a_new_kind_of_path_is_tried_before_nothing_matches(tmp_path, restore_registries):
    source = tmp_path / "stripes.toy"
    source.write_text("240")

    @register_dataset("toy_file", matches=lambda path: path.endswith(".toy"))
    def load_toy(path):
        count = int(open(path).read())
        return Dataset("toy", ["h", "v"], stripes(count, 0), stripes(10, 1))

    loaded = zoo.data.load_dataset(str(source), limit=100)
    assert loaded.size == {"train": 100, "test": 10} and loaded.input_shape == (12, 12, 1)
    assert zoo.data.list_datasets()["paths"][-1] == "toy_file"
    with pytest.raises(zoo.data.DataError, match="already registered"):
        register_dataset("digits")(lambda: None)

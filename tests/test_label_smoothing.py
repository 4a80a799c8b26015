"""Label smoothing in a recipe: the loss's numbers, one-hot targets, zoo-train end to end."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from zoo.data import make_inputs
from zoo.models import get_model, model_spec
from zoo.training.compile import compile_model, loss_for, wants_one_hot
from zoo.training.run import train


def smoothed_cross_entropy(labels, probabilities, smoothing):
    """NumPy: mean over the batch of -sum(target * log p), target = (1 - ε) one_hot + ε / K."""
    classes = probabilities.shape[-1]
    targets = (1 - smoothing) * np.eye(classes)[labels] + smoothing / classes
    return float(np.mean(-np.sum(targets * np.log(probabilities), axis=-1)))


def test_the_compiled_loss_is_smoothed_cross_entropy():
    """evaluate()'s loss on one-hot targets equals the NumPy formula on the model's outputs."""
    model = compile_model(
        get_model("lenet5_modern", input_shape=(28, 28, 1), classes=10),
        "adam",
        1e-3,
        label_smoothing=0.1,
    )
    assert wants_one_hot(model)
    rng = np.random.default_rng(0)
    x = rng.random((16, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, 16)
    loss, _ = model.evaluate(x, np.eye(10, dtype="float32")[labels], batch_size=16, verbose=0)
    probabilities = model.predict(x, batch_size=16, verbose=0).astype("float64")
    assert loss == pytest.approx(smoothed_cross_entropy(labels, probabilities, 0.1), rel=1e-5)


def test_no_smoothing_keeps_sparse_cross_entropy_and_integer_labels():
    assert loss_for(0.0) == "sparse_categorical_crossentropy"
    model = compile_model(get_model("lenet5_modern", classes=10), "adam", 1e-3)
    assert not wants_one_hot(model)


def test_make_inputs_gives_one_hot_rows_when_asked():
    images = np.zeros((3, 28, 28, 1), dtype="float32")
    _, plain = make_inputs(images, [2, 0, 1], (28, 28, 1), 2)
    _, rows = make_inputs(images, [2, 0, 1], (28, 28, 1), 2, one_hot=4)
    assert plain.tolist() == [2, 0, 1]
    assert rows.dtype == np.float32 and rows.tolist() == [
        [0, 0, 1, 0],
        [1, 0, 0, 0],
        [0, 1, 0, 0],
    ]


def test_lenet5_modern_recipe_smooths_and_the_classic_one_does_not():
    assert model_spec("lenet5_modern").recipe.label_smoothing == 0.1
    assert model_spec("lenet5").recipe.label_smoothing == 0.0


def test_zoo_train_with_label_smoothing_trains_reports_and_resumes(tmp_path, capsys):
    """A smoothed run learns the digits, says so in metrics.json, and --resume continues it
    with one-hot targets again (read from the checkpoint's loss, not from a flag)."""
    first = train(
        model="lenet5_modern",
        epochs=3,
        batch_size=16,
        label_smoothing=0.2,
        limit=600,
        output=str(tmp_path),
        quiet=True,
    )
    assert first.metrics["label_smoothing"] == 0.2 and first.metrics["epochs_completed"] == 3
    assert first.metrics["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    capsys.readouterr()
    resumed = train(resume=True, epochs=4, output=str(tmp_path))
    banner = capsys.readouterr().out
    assert "label smoothing 0.2," in banner  # the checkpoint's, not the recipe's 0.1
    assert resumed.metrics["epochs_completed"] == 4 and resumed.metrics["label_smoothing"] == 0.2
    assert isinstance(resumed.model.loss, keras.losses.CategoricalCrossentropy)
    assert resumed.model.loss.label_smoothing == pytest.approx(0.2)
    with open(tmp_path / "metrics.json", encoding="utf-8") as handle:
        assert json.load(handle)["test_accuracy"] == resumed.metrics["test_accuracy"]


@pytest.mark.parametrize("value", ["1.0", "-0.1"])
def test_bad_label_smoothing_is_one_line(tmp_path, value):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoo",
            "train",
            "--label-smoothing",
            value,
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "--label-smoothing must be in [0, 1)" in line and value in line

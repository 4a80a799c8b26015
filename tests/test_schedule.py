"""The learning-rate schedule of a recipe: its values, how zoo-train uses it, and bad input."""

import math
import subprocess
import sys

import keras
import numpy as np
import pytest

from zoo.errors import ZooError
from zoo.models import get_model, model_spec
from zoo.training.compile import compile_model, learning_rate_schedule


def expected_rate(step, peak, total):
    """Warm-up from peak/10 over the first 10 % of steps, then half a cosine to zero."""
    warmup = int(total * 0.1)
    if step < warmup:
        return peak / 10 + (peak - peak / 10) * step / warmup
    progress = min(step - warmup, total - warmup) / (total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("total", [10, 125, 625])
def test_warmup_cosine_rises_to_the_peak_then_falls_to_zero(total):
    schedule = learning_rate_schedule(3e-3, "warmup-cosine", total)
    steps = sorted({0, 1, total // 10 - 1, total // 10, total // 2, total - 1, total, total + 50})
    got = [float(keras.ops.convert_to_numpy(schedule(step))) for step in steps]
    want = [expected_rate(step, 3e-3, total) for step in steps]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    assert got[0] == pytest.approx(3e-4, rel=1e-5)
    assert max(got) == pytest.approx(3e-3, rel=1e-5)
    assert got[-1] == pytest.approx(0.0, abs=1e-9)  # past the end it stays at zero


def test_constant_schedule_is_the_plain_rate():
    assert learning_rate_schedule(1e-3) == 1e-3
    model = compile_model(get_model("lenet5_modern"), "adam", 1e-3)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-3)


def test_bad_schedule_names_the_choices():
    with pytest.raises(ZooError, match="warmup-cosine"):
        learning_rate_schedule(1e-3, "linear", 100)
    with pytest.raises(ZooError, match="total number of steps"):
        learning_rate_schedule(1e-3, "warmup-cosine", None)


def test_compiled_optimizer_follows_the_schedule_step_by_step():
    model = compile_model(
        get_model("lenet5_modern"), "adam", 2e-3, schedule="warmup-cosine", total_steps=20
    )
    x = np.random.default_rng(0).random((8, 28, 28, 1), dtype="float32")
    y = np.arange(8) % 10
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 4 steps
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4
    rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert rate == pytest.approx(expected_rate(4, 2e-3, 20), rel=1e-5)


def test_lenet5_modern_recipe_is_the_fast_one():
    recipe = model_spec("lenet5_modern").recipe
    assert (recipe.schedule, recipe.epochs, recipe.batch_size) == ("warmup-cosine", 5, 64)
    assert model_spec("lenet5").recipe.schedule == "constant"


def test_zoo_train_spreads_the_schedule_over_the_whole_run(tmp_path):
    from zoo.training.run import train

    result = train(
        model="lenet5_modern", epochs=2, batch_size=50, limit=400, output=str(tmp_path), quiet=True
    )
    optimizer = result.model.optimizer
    # 400 images, 10 % held out: 360 train -> 8 steps an epoch, 16 in all.
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 16
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.0)
    config = keras.optimizers.serialize(optimizer)["config"]["learning_rate"]["config"]
    assert (config["warmup_steps"], config["decay_steps"]) == (1, 15)


def test_bad_schedule_flag_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "train", "--schedule", "linear", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert "--schedule" in lines[-1] and "warmup-cosine" in lines[-1]

"""A recipe's epochs follow the data's size through `min_steps`, never the backend (issue 32)."""

import math

import pytest

from zoo.models import model_spec
from zoo.training.checkpoint import CheckpointError
from zoo.training.config import TrainConfig
from zoo.training.recipe import epochs_for_data, resolve_recipe
from zoo.training.run import train


def recipe_config(model):
    return resolve_recipe(TrainConfig(model=model, dataset="digits"))


def test_small_data_gets_enough_epochs_for_the_minimum_steps():
    config = recipe_config("lenet5_modern")
    assert (config.epochs, config.batch_size) == (5, 64)
    stretched, note = epochs_for_data(config, 1294)  # the digits' training split
    assert stretched.epochs == 20  # 21 steps an epoch: 20 x 21 = 420 >= 400 > 19 x 21
    assert stretched.epochs * math.ceil(1294 / 64) >= model_spec("lenet5_modern").recipe.min_steps
    assert "20, not the recipe's 5" in note and "400 steps" in note and "--epochs" in note
    assert stretched.replace(epochs=5) == config  # nothing else changes


def test_large_data_and_recipes_without_a_minimum_keep_their_epochs():
    config = recipe_config("lenet5_modern")
    assert epochs_for_data(config, 7200) == (config, "")  # MNIST t10k's split: 113 steps x 5
    classic = recipe_config("lenet5")  # min_steps 0
    assert epochs_for_data(classic, 10) == (classic, "")


def test_a_run_says_why_it_trains_longer_and_an_epochs_flag_wins(tmp_path, capsys):
    metrics = train(model="lenet5_modern", limit=600, output=str(tmp_path / "a")).metrics
    steps_per_epoch = math.ceil(metrics["train_images"] / 64)
    expected = math.ceil(400 / steps_per_epoch)
    assert expected > 5 and metrics["epochs_completed"] == expected
    banner = capsys.readouterr().out
    assert f"epochs      {expected}, not the recipe's 5" in banner
    metrics = train(model="lenet5_modern", limit=600, epochs=2, output=str(tmp_path / "b"))
    assert metrics.metrics["epochs_completed"] == 2
    assert "not the recipe's" not in capsys.readouterr().out


def test_resume_keeps_the_epochs_the_run_started_with(tmp_path):
    options = dict(model="lenet5_modern", limit=600, output=str(tmp_path), quiet=True)
    train(epochs=2, **options)
    with pytest.raises(CheckpointError, match="2 epochs are already done"):
        train(resume=True, **options)  # not stretched to the minimum: nothing is left to train

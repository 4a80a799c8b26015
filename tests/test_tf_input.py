"""TensorFlow: `fit` and `evaluate` on arrays read Keras's own pipeline with autotuning off
(zoo.accel.tf_input), with Keras's numbers exactly."""

import math
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from zoo.accel import applied

TENSORFLOW = keras.backend.backend() == "tensorflow"
RNG = np.random.default_rng(0)
X = RNG.random((150, 28, 28, 1), dtype="float32")  # 150 = 4 x 32 + 22: a partial last batch
Y = RNG.integers(0, 10, 150)
VX, VY = X[:45], Y[:45]


def compiled(seed=3):
    keras.utils.set_random_seed(seed)
    model = zoo.get_model("lenet5_modern")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_other_backends_keep_kerass_fit():
    model = compiled()
    if TENSORFLOW:
        assert applied(model).fit_input == "lean"
        assert "without tf.data autotuning" in applied(model).describe()
        assert "fit" in vars(model) and "evaluate" in vars(model)
    else:  # fit is only wrapped for its callbacks (zoo.accel.batch_hooks)
        assert applied(model).fit_input == "keras"
        assert "evaluate" not in vars(model)


needs_tensorflow = pytest.mark.skipif(not TENSORFLOW, reason="a TensorFlow input pipeline")


@needs_tensorflow
def test_the_dataset_declares_its_length_turns_autotuning_off_and_reshuffles_every_pass():
    from zoo.accel.tf_input import array_dataset

    dataset = array_dataset(X, Y, 32, shuffle=True, seed=5, passes=3)
    assert int(dataset.cardinality()) == 3 * math.ceil(150 / 32)
    assert dataset.options().autotune.enabled is False
    batches = [batch_y.numpy() for _, batch_y in dataset]
    assert [len(batch) for batch in batches] == [32, 32, 32, 32, 22] * 3
    orders = [np.concatenate(batches[i : i + 5]) for i in (0, 5, 10)]
    assert all(sorted(order) == sorted(Y) for order in orders)
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    twice = [np.concatenate([b.numpy() for _, b in dataset]) for _ in range(2)]
    np.testing.assert_array_equal(twice[0], twice[1])  # a function of seed and pass alone
    resumed = array_dataset(X, Y, 32, shuffle=True, seed=5, first_pass=1, passes=2)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for _, b in resumed]), twice[0][150:])
    in_order = array_dataset(X, Y, 32, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for _, b in in_order]), Y)


@needs_tensorflow
def test_the_dataset_functions_are_traced_without_autograph_rewriting_them(monkeypatch):
    from tensorflow.python.autograph.impl import api  # where AutoGraph converts a function

    from zoo.accel.tf_input import array_dataset

    converted, convert = [], api._convert_actual

    def spy(entity, *rest):
        converted.append(entity)
        return convert(entity, *rest)

    monkeypatch.setattr(api, "_convert_actual", spy)
    dataset = array_dataset(X, Y, 32, shuffle=True, seed=5, passes=2)
    assert converted == []  # each rewrite of a function's source cost tens of milliseconds
    assert sum(len(batch_y) for _, batch_y in dataset) == 300
    import tensorflow as tf

    tf.data.Dataset.range(3).map(lambda n: n + 1)  # the spy does see a plain map's function
    assert len(converted) == 1


@needs_tensorflow
def test_fit_traces_its_training_step_once_where_kerass_own_fit_traces_it_twice():
    def traces_of_one_fit(fit):
        model = compiled()
        step, traces = model.train_step, []
        model.train_step = lambda data: traces.append(1) or step(data)
        fit(model, X, Y, batch_size=32, epochs=1, verbose=0)
        assert model.optimizer.built and model._compile_metrics.built
        return len(traces)

    # Keras creates the optimizer's and the metrics' variables inside its first trace, and
    # tf.function traces a function that created variables a second time.
    assert traces_of_one_fit(keras.Model.fit) == 2
    assert traces_of_one_fit(lambda model, *a, **k: model.fit(*a, **k)) == 1


@needs_tensorflow
def test_unshuffled_fit_and_evaluate_give_kerass_weights_history_and_scores():
    lean, plain = compiled(), compiled()
    options = dict(batch_size=32, epochs=2, verbose=0, validation_data=(VX, VY), shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "shuffle ignored" or "ran out of data" warning
        lean_history = lean.fit(X, Y, **options).history
    plain_history = keras.Model.fit(plain, X, Y, **options).history
    assert lean_history == plain_history and len(lean_history["val_loss"]) == 2
    for mine, theirs in zip(lean.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    scores = lean.evaluate(VX, VY, batch_size=16, verbose=0, return_dict=True)
    assert scores == keras.Model.evaluate(plain, VX, VY, batch_size=16, verbose=0, return_dict=True)


@needs_tensorflow
def test_a_seeded_shuffled_fit_repeats_exactly_and_learns():
    runs = []
    for _ in range(2):
        model = compiled(seed=11)
        history = model.fit(X, Y, batch_size=32, epochs=4, verbose=0).history
        runs.append((history, model.get_weights()))
    assert runs[0][0] == runs[1][0] and history["loss"][-1] < history["loss"][0]
    for mine, again in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(mine, again)


@needs_tensorflow
def test_a_fit_resumed_at_an_epoch_continues_exactly_as_one_fit(capsys):
    whole, split = compiled(seed=4), compiled(seed=4)
    whole.fit(X, Y, batch_size=32, epochs=3, verbose=0)
    split.fit(X, Y, batch_size=32, epochs=1, verbose=0)
    keras.utils.set_random_seed(4)  # as a resumed zoo-train run seeds itself again
    split.fit(X, Y, batch_size=32, epochs=3, initial_epoch=1, verbose=2)
    shown = capsys.readouterr().out
    assert "Epoch 2/3" in shown and "Epoch 3/3" in shown and "5/5" in shown
    for mine, theirs in zip(whole.get_weights(), split.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


@needs_tensorflow
def test_positional_arguments_and_keras_only_options_still_work(monkeypatch):
    from zoo.accel import tf_input

    model = compiled()
    history = model.fit(X, Y, 50, 2, 0)  # batch_size, epochs, verbose by position
    assert len(history.history["loss"]) == 2
    built = []
    monkeypatch.setattr(tf_input, "array_dataset", lambda *a, **k: built.append(a) or None)
    model.fit(X, Y, batch_size=50, epochs=1, verbose=0, validation_split=0.2)
    model.fit(X, Y, batch_size=50, verbose=0, sample_weight=np.ones(150, "float32"))
    model.fit(keras.ops.convert_to_tensor(X), Y, batch_size=50, verbose=0)  # a tensor
    model.evaluate(X, Y, verbose=0, steps=2)
    assert built == []  # every one of these went to Keras's own fit or evaluate


@needs_tensorflow
def test_the_ab_benchmark_prints_both_sides_and_their_ratio():
    script = Path(__file__).parent.parent / "benchmarks" / "tf_input_ab.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rounds", "2", "--images", "512"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("Keras's fit: ") and lines[1].startswith("lean input: ")
    assert all(line.count("rounds: ") == 1 and line.count(", ") >= 1 for line in lines[:2])
    assert float(lines[2].removeprefix("ratio of the medians: ")) > 0

"""Every backend: `fit` skips the per-batch callback calls nobody listens to
(zoo.accel.batch_hooks), and trains, reports and calls back exactly as Keras's `fit`."""

import keras
import numpy as np
import pytest

import zoo
from zoo.accel import accelerate, applied, batch_hooks

RNG = np.random.default_rng(0)
X = RNG.random((150, 28, 28, 1), dtype="float32")  # 150 = 4 x 32 + 22: a partial last batch
Y = RNG.integers(0, 10, 150)
VALIDATION = (X[:45], Y[:45])


def compiled(seed=3):
    keras.utils.set_random_seed(seed)
    model = zoo.get_model("lenet5_modern")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    accelerate(model)  # as zoo-train does after compile
    return model


class Recorder(keras.callbacks.Callback):
    """What a callback sees: its params, and every hook it overrides, with the logs."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_begin(self, logs=None):
        self.seen.append(("params", dict(self.params)))

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(("train", batch, sorted(logs)))

    def on_test_batch_end(self, batch, logs=None):
        self.seen.append(("test", batch, sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(("epoch", epoch, {k: round(v, 6) for k, v in logs.items()}))


class LegacyBatchEnd(keras.callbacks.Callback):
    """A callback written for the old name: Keras forwards `on_train_batch_end` to it."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def on_batch_end(self, batch, logs=None):
        self.batches.append(batch)


class EpochsOnly(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)


def _fit(model, keras_own, callbacks, **options):
    fit = (lambda **kw: keras.Model.fit(model, **kw)) if keras_own else model.fit
    arguments = dict(x=X, y=Y, epochs=2, verbose=0, shuffle=False, validation_data=VALIDATION)
    return fit(**{**arguments, **options}, callbacks=callbacks)


def test_accelerate_gives_every_backend_the_quiet_fit_once():
    model = compiled()
    assert applied(model).batch_hooks == "when heard"
    assert "batch callbacks only when heard" in applied(model).describe()
    wrapped = model.fit
    accelerate(model)  # again, as zoo-train does after compile: not wrapped twice
    assert model.fit is wrapped


def test_weights_history_and_epoch_callbacks_are_kerass_when_no_one_listens_to_batches():
    quiet, own = compiled(), compiled()
    watchers = EpochsOnly(), EpochsOnly()
    got = _fit(quiet, False, [watchers[0]]).history
    want = _fit(own, True, [watchers[1]]).history
    assert got == want
    assert watchers[0].epochs == watchers[1].epochs == [0, 1]
    for a, b in zip(quiet.weights, own.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.mark.parametrize("batch_size", [None, 64])
def test_a_listening_callback_hears_every_batch_with_kerass_params_and_logs(batch_size):
    quiet, own = compiled(), compiled()
    heard = [(Recorder(), LegacyBatchEnd()) for _ in range(2)]
    _fit(quiet, False, list(heard[0]), batch_size=batch_size)
    _fit(own, True, list(heard[1]), batch_size=batch_size)
    assert heard[0][0].seen == heard[1][0].seen
    steps = -(-150 // (batch_size or 32))
    assert heard[0][0].seen[0] == ("params", {"verbose": 0, "epochs": 2, "steps": steps})
    assert heard[0][1].batches == heard[1][1].batches == list(range(steps)) * 2


def test_a_hook_nobody_overrides_is_not_called_and_one_somebody_does_is():
    class BeginsOnly(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            pass

    hooks = batch_hooks.BatchHooksWhenHeard([EpochsOnly(), BeginsOnly()], add_history=True)
    heard = {hook: hooks.heard(hook) for hook in batch_hooks.HOOKS}
    assert heard == {
        "on_train_batch_begin": True,
        "on_train_batch_end": False,
        "on_test_batch_begin": False,
        "on_test_batch_end": False,
    }
    lambdas = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None)
    assert batch_hooks.listens(lambdas, "on_train_batch_end")  # replaced on the instance
    assert not batch_hooks.listens(lambdas, "on_test_batch_end")


class _Counted(batch_hooks.BatchHooksWhenHeard):
    made = 0

    def __init__(self, *args, **kwargs):
        type(self).made += 1
        super().__init__(*args, **kwargs)


class _Batches(keras.utils.PyDataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return X[index * 32 : (index + 1) * 32], Y[index * 32 : (index + 1) * 32]


@pytest.mark.parametrize(
    "options, quiet",
    [
        ({}, True),
        ({"verbose": 2}, False),  # its progress bar listens to every batch
        ({"validation_split": 0.2, "validation_data": None}, False),
        ({"steps_per_epoch": 2}, False),
        ({"x": _Batches(), "y": None}, False),
    ],
    ids=["plain", "verbose", "validation-split", "steps-per-epoch", "py-dataset"],
)
def test_only_the_plain_case_takes_the_quiet_path(options, quiet, monkeypatch, capsys):
    monkeypatch.setattr(batch_hooks, "BatchHooksWhenHeard", _Counted)
    _Counted.made = 0
    model = compiled()
    history = _fit(model, False, [EpochsOnly()], **options)
    assert _Counted.made == (1 if quiet else 0)
    assert len(history.history["loss"]) == 2
    capsys.readouterr()  # verbose=2 prints its progress lines

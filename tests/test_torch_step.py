"""The PyTorch training step that calls the layers directly (zoo.accel.torch_step) trains exactly as
Keras's own step does: same weights, same history, from the same seed."""

import keras
import numpy as np
import pytest

import zoo
from zoo.training.compile import compile_model

BACKEND = keras.backend.backend()
pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="a PyTorch-only speed-up")


def _fit(name, lean, label_smoothing=0.0, epochs=2, validation=False):
    """Weights and history after ``fit`` on 48 random images, with the zoo's step or Keras's."""
    shape = zoo.model_info(name)["min_input_shape"]
    keras.utils.set_random_seed(0)
    model = zoo.get_model(name, input_shape=shape, classes=10)
    compile_model(model, "adam", 1e-3, label_smoothing=label_smoothing)
    assert ("train_step" in vars(model)) is True  # the zoo's builder gave it the lean step
    if not lean:
        del vars(model)["train_step"]  # back to the class's: Keras's own step
    rng = np.random.default_rng(1)
    x = rng.random((48, *shape), dtype=np.float32)
    y = rng.integers(0, 10, 48)
    if label_smoothing:
        y = np.eye(10, dtype="float32")[y]
    history = model.fit(
        x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=True,
        validation_data=(x[:16], y[:16]) if validation else None,
    )  # fmt: skip
    return model.get_weights(), history.history


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern", "alexnet"])
def test_lean_step_trains_exactly_like_kerass_step(name):
    # AlexNet has dropout: the lean step must pass training=True to it, and draw the same masks.
    lean_weights, lean_history = _fit(name, lean=True)
    keras_weights, keras_history = _fit(name, lean=False)
    assert lean_history == keras_history
    start = _fit(name, lean=True, epochs=0)[0]
    assert max(np.abs(w - s).max() for w, s in zip(keras_weights, start, strict=True)) > 1e-4
    for lean, kept in zip(lean_weights, keras_weights, strict=True):
        np.testing.assert_array_equal(lean, kept)


def test_lean_step_with_label_smoothing_and_validation():
    lean_weights, lean_history = _fit("lenet5_modern", True, label_smoothing=0.1, validation=True)
    keras_weights, keras_history = _fit("lenet5_modern", False, 0.1, validation=True)
    assert set(lean_history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert lean_history == keras_history
    for lean, kept in zip(lean_weights, keras_weights, strict=True):
        np.testing.assert_array_equal(lean, kept)


def test_graph_forward_gives_the_models_outputs_with_and_without_training():
    import torch

    from zoo.accel.torch_step import graph_forward

    model = zoo.get_model("alexnet", input_shape=zoo.model_info("alexnet")["min_input_shape"])
    x = torch.rand(3, *model.input_shape[1:])
    np.testing.assert_array_equal(graph_forward(model, x).detach(), model(x).detach())
    torch.manual_seed(5)
    want = model(x, training=True).detach()
    torch.manual_seed(5)
    got = graph_forward(model, x, training=True).detach()
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, model(x, training=False).detach())  # dropout was on
    float64 = graph_forward(model, x.double())  # cast to the input's float32, as Keras does
    assert float64.dtype == torch.float32


def test_models_the_lean_step_cannot_run_exactly_keep_kerass_step():
    from zoo.accel.torch_step import supports_graph_forward, use_lean_step

    def functional(*layers):
        inputs = keras.Input((8, 8, 3))
        x = inputs
        for layer in layers:
            x = layer(x)
        return keras.Model(inputs, x)

    class MyDense(keras.layers.Dense):
        pass

    plain = functional(keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(2))
    assert supports_graph_forward(plain)
    assert not supports_graph_forward(functional(keras.layers.Flatten(), MyDense(2)))
    regularised = keras.layers.Dense(2, activity_regularizer="l2")
    assert not supports_graph_forward(functional(keras.layers.Flatten(), regularised))
    mixed = keras.layers.Dense(2, dtype="mixed_float16")
    assert not supports_graph_forward(functional(keras.layers.Flatten(), mixed))
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert not use_lean_step(sequential) and "train_step" not in vars(sequential)
    assert use_lean_step(plain) and "train_step" in vars(plain)

    class OwnStep(keras.Model):  # a user's class with its own training step keeps it
        def train_step(self, data):
            return super().train_step(data)

    inputs = keras.Input((8, 8, 3))
    own = OwnStep(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    assert supports_graph_forward(own) and not use_lean_step(own)
    assert "train_step" not in vars(own)


def test_a_saved_model_is_plain_keras_and_a_resumed_one_gets_the_step_again(tmp_path):
    from zoo.training import checkpoint
    from zoo.training.config import TrainConfig
    from zoo.training.distribute import Plan
    from zoo.training.recipe import resolve_names
    from zoo.training.run import Run, build_or_resume, complete_config, train
    from zoo.training.splits import load_data

    output = tmp_path / "run"
    arguments = dict(model="lenet5_modern", limit=200, batch_size=32, quiet=True)
    train(**arguments, epochs=1, output=str(output))
    loaded = keras.saving.load_model(output / "model.keras")
    assert "train_step" not in vars(loaded)  # nothing of the zoo's is saved
    model, _, _ = checkpoint.load(output)
    assert "train_step" not in vars(model)
    config = TrainConfig(**arguments, epochs=2, output=str(output), resume=True)
    config = complete_config(resolve_names(config, "torch"))  # as zoo-train does
    run = Run(config, "torch", Plan(), output=str(output), data=load_data(config))
    resumed, state, _ = build_or_resume(run)
    assert state["epochs_completed"] == 1 and "train_step" in vars(resumed)


def test_evaluate_and_predict_give_kerass_numbers():
    model = zoo.get_model("lenet5_modern", classes=10)
    compile_model(model, "adam", 1e-3)
    assert {"train_step", "test_step", "predict_step"} <= set(vars(model))
    rng = np.random.default_rng(4)
    x, y = rng.random((40, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 40)
    before = model.get_weights()
    lean = model.evaluate(x, y, batch_size=16, verbose=0), model.predict(x, verbose=0)
    listed = model.predict([x], verbose=0)  # a one-array list, as Keras accepts it
    fitted = model.fit([x], y, batch_size=16, epochs=1, verbose=0)  # and fit takes it too
    assert np.isfinite(fitted.history["loss"][0])
    model.set_weights(before)
    for step in ("train_step", "test_step", "predict_step"):
        del vars(model)[step]
    kept = model.evaluate(x, y, batch_size=16, verbose=0), model.predict(x, verbose=0)
    assert lean[0] == kept[0]  # [loss, accuracy]
    assert lean[1].shape == (40, 10)
    np.testing.assert_array_equal(lean[1], kept[1])
    np.testing.assert_array_equal(listed, kept[1])

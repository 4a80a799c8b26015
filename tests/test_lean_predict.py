"""`predict` on an array skips Keras's input pipeline, with Keras's numbers (zoo.accel.predict)."""

import keras
import numpy as np
import pytest

import zoo
from zoo.accel import applied

RNG = np.random.default_rng(0)


def keras_predict(model, x, **options):
    return type(model).predict(model, x, **options)


@pytest.fixture(scope="module")
def lenet():
    return zoo.get_model("lenet5_modern")


def test_an_array_gives_kerass_numbers_with_a_partial_last_batch(lenet):
    assert applied(lenet).predict == "lean" and "lean predict" in applied(lenet).describe()
    x = RNG.random((70, 28, 28, 1), dtype="float32")  # 32 + 32 + 6 at the default batch size
    lean = lenet.predict(x, verbose=0)
    assert lean.shape == (70, 10) and lean.dtype == np.float32
    np.testing.assert_allclose(lean, keras_predict(lenet, x, verbose=0), rtol=1e-5, atol=1e-6)
    by_5 = lenet.predict(x, batch_size=5, verbose=0)
    np.testing.assert_allclose(by_5, lean, rtol=1e-5, atol=1e-6)


def test_the_progress_bar_shows_one_step_per_batch(lenet, capsys):
    lenet.predict(RNG.random((20, 28, 28, 1), dtype="float32"), batch_size=8)
    assert "3/3" in capsys.readouterr().out
    lenet.predict(RNG.random((20, 28, 28, 1), dtype="float32"), batch_size=8, verbose=0)
    assert capsys.readouterr().out == ""


def test_other_inputs_and_options_take_kerass_own_predict(lenet, monkeypatch):
    calls = []
    keras_class_predict = type(lenet).predict
    monkeypatch.setattr(
        type(lenet), "predict", lambda *a, **k: calls.append(k) or keras_class_predict(*a, **k)
    )
    x = RNG.random((8, 28, 28, 1), dtype="float32")
    lenet.predict(x, verbose=0)
    assert calls == []  # the lean path
    seen = []

    class Count(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            seen.append(batch)

    lenet.predict(x, batch_size=4, verbose=0, callbacks=[Count()])
    assert seen == [0, 1]  # a callback is honoured, through Keras
    lenet.predict(x, batch_size=4, verbose=0, steps=1)
    lenet.predict(keras.ops.convert_to_tensor(x), verbose=0)  # a backend tensor
    assert len(calls) == 3


def test_predictions_follow_training_and_a_saved_model_is_plain(tmp_path):
    model = zoo.get_model("lenet5_modern")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    x = RNG.random((64, 28, 28, 1), dtype="float32")
    before = model.predict(x, verbose=0)
    model.fit(x, RNG.integers(0, 10, 64), epochs=1, batch_size=32, verbose=0)
    after = model.predict(x, verbose=0)
    assert np.abs(after - before).max() > 1e-4  # the new weights, not stale ones
    np.testing.assert_allclose(after, keras_predict(model, x, verbose=0), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert "predict" not in vars(loaded)  # Keras's own method: the file holds no zoo code
    np.testing.assert_allclose(loaded.predict(x, verbose=0), after, rtol=1e-5, atol=1e-6)


def test_a_model_with_several_outputs_keeps_kerass_predict():
    features = zoo.get_model("lenet5_modern", feature_extractor=True)
    assert applied(features).predict == "keras"
    out = features.predict(RNG.random((3, 28, 28, 1), dtype="float32"), verbose=0)
    assert isinstance(out, dict) and len(out) > 1


def test_a_subclassed_model_is_accelerated_and_keeps_kerass_predict():
    class Doubler(keras.Model):  # no `inputs` or `outputs` until Keras traces it
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, inputs):
            return 2 * self.dense(inputs)

    model = Doubler()
    model(np.zeros((1, 4), "float32"))
    assert zoo.accel.accelerate(model).predict == "keras"
    x = RNG.standard_normal((9, 4)).astype("float32")
    expected = keras_predict(model, x, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)
    if keras.backend.backend() == "jax":  # its call takes no `training`: none is passed
        from zoo.accel import jax_predict

        np.testing.assert_allclose(jax_predict.predict_on_batch(model, x), expected, rtol=1e-6)

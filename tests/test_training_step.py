"""One optimiser step per registered model: the loss is finite and every weight moves."""

import numpy as np
import pytest

import zoo


@pytest.mark.parametrize("name", zoo.list_models())
def test_one_fit_step_changes_every_weight(name):
    shape = zoo.model_info(name)["min_input_shape"]
    model = zoo.get_model(name, input_shape=shape, classes=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((8, *shape), dtype="float32")
    y = rng.integers(0, 4, size=8)
    before = [w.copy() for w in model.get_weights()]

    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)

    loss = history.history["loss"][0]
    assert np.isfinite(loss) and loss > 0
    after = model.get_weights()
    changed = [not np.array_equal(b, a) for b, a in zip(before, after, strict=True)]
    assert all(changed), f"{changed.count(False)} weight tensors did not change"


def test_the_batch_methods_take_numpy_arrays_like_any_keras_model():
    """train_on_batch / test_on_batch / predict_on_batch with NumPy, as a user calls them.

    On PyTorch the zoo's lean step once passed NumPy straight to the layers and crashed
    (``'str' object has no attribute 'type'``); Keras's own step converts first.
    """
    model = zoo.lenet(variant="modern")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((8, 28, 28, 1), dtype="float32")
    y = rng.integers(0, 10, size=8)
    loss, accuracy = model.train_on_batch(x, y)
    assert np.isfinite(loss) and 0 <= accuracy <= 1
    assert np.isfinite(model.test_on_batch(x, y)[0])
    probabilities = model.predict_on_batch(x)
    np.testing.assert_allclose(np.sum(probabilities, axis=1), 1, rtol=1e-5)

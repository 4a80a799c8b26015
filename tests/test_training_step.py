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

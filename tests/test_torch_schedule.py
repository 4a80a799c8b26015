"""PyTorch: Keras's `CosineDecay` rate computed as plain numbers (zoo.accel.torch_schedule)
is Keras's to the last bit, and training with it leaves Keras's weights."""

import keras
import numpy as np
import pytest

import zoo
from zoo.accel import accelerate, applied
from zoo.training.compile import compile_model, learning_rate_schedule

TORCH = keras.backend.backend() == "torch"
on_torch = pytest.mark.skipif(not TORCH, reason="a PyTorch-only speed-up")
CosineDecay = keras.optimizers.schedules.CosineDecay

SCHEDULES = {
    "zoo warmup-cosine, 40 steps": (learning_rate_schedule(3e-3, "warmup-cosine", 40), 40),
    "zoo warmup-cosine, 625 steps": (learning_rate_schedule(3e-3, "warmup-cosine", 625), 625),
    "zoo warmup-cosine, 1 step": (learning_rate_schedule(1e-2, "warmup-cosine", 1), 1),
    "no warm-up, alpha 0.2": (CosineDecay(0.01, decay_steps=37, alpha=0.2), 37),
    "warm-up down to a lower target": (
        CosineDecay(0.05, decay_steps=90, warmup_target=0.01, warmup_steps=11, alpha=0.1),
        101,
    ),
}


@on_torch
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_the_rate_is_kerass_at_every_step_and_past_the_end(name):
    from zoo.accel.torch_schedule import cosine_decay_rate

    schedule, steps = SCHEDULES[name]
    for step in range(steps + 5):
        want = keras.ops.convert_to_numpy(schedule(step))
        got = cosine_decay_rate(schedule, step)
        assert got.dtype == want.dtype == np.float32
        assert got == want, (step, got, want)  # the same float32, bit for bit


def _trained(plain, epochs=2):
    rng = np.random.default_rng(1)
    x = rng.random((96, 28, 28, 1), dtype="float32")
    y = rng.integers(0, 10, 96)
    keras.utils.set_random_seed(0)
    model = zoo.get_model("lenet5_modern")
    compile_model(model, "adam", 3e-3, schedule="warmup-cosine", total_steps=6 * epochs)
    accelerate(model)
    if not plain:
        del vars(model.optimizer)["_get_current_learning_rate"]  # back to Keras's own
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)
    return model


@on_torch
def test_accelerate_gives_it_and_training_leaves_kerass_weights_exactly():
    plain, kerass = _trained(plain=True), _trained(plain=False)
    assert applied(plain).schedule == "plain"
    assert "cosine schedule in plain numbers" in applied(plain).describe()
    assert int(plain.optimizer.iterations.value) == 12  # past warm-up and through the decay
    for mine, theirs in zip(plain.get_weights(), kerass.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    rate = plain.optimizer.learning_rate
    assert keras.backend.standardize_dtype(rate.dtype) == "float32"
    assert float(rate) == float(keras.ops.convert_to_numpy(plain.optimizer._learning_rate(12)))


@on_torch
def test_a_constant_rate_or_another_schedule_is_kerass_own():
    model = compile_model(zoo.get_model("lenet5_modern"), "adam", 1e-3)
    assert accelerate(model).schedule == "keras"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model.compile(keras.optimizers.SGD(decay), "sparse_categorical_crossentropy")
    assert accelerate(model).schedule == "keras"
    model.optimizer.iterations.assign(10)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)


def test_other_backends_keep_kerass_schedule():
    model = compile_model(zoo.get_model("lenet5_modern"), "adam", 1e-3, "warmup-cosine", 50)
    result = accelerate(model)
    assert result.schedule == ("plain" if TORCH else "keras")
    assert ("_get_current_learning_rate" in vars(model.optimizer)) == TORCH

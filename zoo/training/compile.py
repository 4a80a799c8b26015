"""How `zoo-train` compiles a model: optimizer, learning-rate schedule, loss, metric.

[`compile_model`][] is shared by `zoo-train` and the benchmarks, so both
train the same thing. [`check_training_memory`][] refuses a model too large
to train before it runs out of memory.
"""

from __future__ import annotations

from zoo.errors import ZooError
from zoo.training.config import SCHEDULES

__all__ = [
    "check_training_memory",
    "compile_model",
    "learning_rate_schedule",
    "loss_for",
    "one_hot_classes",
    "wants_one_hot",
]

WARMUP_FRACTION = 0.1  # of all steps, from a tenth of the peak rate up to the peak


def learning_rate_schedule(peak, schedule="constant", total_steps=None):
    """The optimizer's learning rate: `peak` throughout, or warm-up then cosine decay.

    `"warmup-cosine"` rises linearly from `peak / 10` to `peak` over the
    first tenth of `total_steps` (the warm-up of Goyal et al., 2017, "Accurate,
    large minibatch SGD") and then follows half a cosine down to zero at the
    last step (Loshchilov & Hutter, 2017, "SGDR"). It is Keras's own
    `CosineDecay`, so a saved model's optimizer loads without the zoo.
    """
    import keras

    if schedule == "constant":
        return peak
    if schedule != "warmup-cosine":
        raise ZooError(f"unknown learning-rate schedule {schedule!r}; choose one of {SCHEDULES}.")
    if not total_steps or total_steps < 1:
        raise ZooError("the warmup-cosine schedule needs the run's total number of steps.")
    warmup = int(total_steps * WARMUP_FRACTION)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 10,
        decay_steps=max(total_steps - warmup, 1),
        warmup_target=peak,
        warmup_steps=warmup,
    )


def loss_for(label_smoothing=0.0):
    """Cross-entropy for integer labels, or with `label_smoothing` > 0 for one-hot ones.

    Keras's sparse cross-entropy has no label smoothing, so a smoothed run
    uses `CategoricalCrossentropy(label_smoothing=...)` and is fed one-hot
    targets ([`wants_one_hot`][]). Both are Keras's own classes: a saved
    model loads and compiles without the zoo.
    """
    import keras

    if not label_smoothing:
        return "sparse_categorical_crossentropy"
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def wants_one_hot(model):
    """Whether `model`'s compiled loss takes one-hot targets (a smoothed run, new or resumed)."""
    import keras

    return isinstance(getattr(model, "loss", None), keras.losses.CategoricalCrossentropy)


def one_hot_classes(model):
    """The class count when `model`'s loss takes one-hot targets (label smoothing), else None."""
    return int(model.output_shape[-1]) if wants_one_hot(model) else None


def compile_model(
    model,
    optimizer,
    learning_rate,
    schedule="constant",
    total_steps=None,
    label_smoothing=0.0,
    **compile_options,
):
    """Compile `model` as `zoo-train` trains it; returns the model.

    `optimizer` is one of `zoo.training.config.OPTIMIZERS` (`sgd` with
    momentum 0.9) at the rate [`learning_rate_schedule`][] gives; the loss is
    cross-entropy ([`loss_for`][]: one-hot targets when `label_smoothing`
    is above 0) and the metric accuracy. `compile_options` go on to
    `model.compile` (the benchmark tries `jit_compile` and
    `steps_per_execution` through them). The model stays as Keras compiles it: the
    caller gives it the backend's speed-ups ([`zoo.accel.accelerate`][]) afterwards.
    """
    import keras

    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": lambda rate: keras.optimizers.SGD(rate, momentum=0.9),
    }
    rate = learning_rate_schedule(learning_rate, schedule, total_steps)
    model.compile(
        optimizer=optimizers[optimizer](rate),
        loss=loss_for(label_smoothing),
        metrics=["accuracy"],
        **compile_options,
    )
    return model


def check_training_memory(model, batch):
    """Refuse a model too large to train here (`--image-size 3000 3000`), before it runs out.

    Training holds each weight four times (the weight, its gradient, and up
    to two optimizer moments) and each layer's output twice per image of a
    batch (forward, and its gradient), all float32.
    """
    import numpy as np

    from zoo.data.images import check_memory

    outputs = sum(int(np.prod(layer.output.shape[1:])) for layer in model.layers)
    need = 4 * (4 * model.count_params() + 2 * batch * outputs)
    height, width = model.input_shape[1:3]
    check_memory(
        need,
        f"training {model.name} at {height}x{width} with batch {batch}",
        "lower --image-size or --batch-size.",
    )

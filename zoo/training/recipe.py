"""How a model is trained: its recipe's defaults, the compiled optimizer and loss, callbacks.

Each model's :class:`~zoo.registry.Recipe` fills the flags a user leaves out;
:func:`compile_model` is shared by ``zoo-train`` and the benchmark.
"""

from __future__ import annotations

import os

from zoo.errors import ZooError
from zoo.training.config import SCHEDULES

__all__ = [
    "resolve_names",
    "resolve_recipe",
    "compile_model",
    "learning_rate_schedule",
    "loss_for",
    "wants_one_hot",
    "optional_callbacks",
    "check_training_memory",
]

DEFAULT_MODEL, DEFAULT_DATASET = "lenet5", "digits"
VALIDATION_SPLIT = 0.1  # of the training images, unless --validation-split says otherwise


def resolve_names(config, backend):
    """Fill in the model, dataset and output folder.

    On ``--resume`` only the output folder: the model, dataset and recipe come
    from its checkpoint (:func:`zoo.training.resume.settings`), read once the run holds
    the folder.
    """
    model, dataset = config.model or DEFAULT_MODEL, config.dataset or DEFAULT_DATASET
    name = os.path.basename(os.path.normpath(dataset))
    output = config.output or os.path.join("runs", f"{model}-{name}-{backend}")
    if config.resume:
        return config.replace(output=output)
    return config.replace(model=model, dataset=dataset, output=output)


def resolve_recipe(config):
    """Fill the flags left at ``None`` from the model's recipe (unknown model: one error)."""
    from zoo.models import model_spec

    recipe = {**vars(model_spec(config.model).recipe), "validation_split": VALIDATION_SPLIT}
    return config.replace(**{k: v for k, v in recipe.items() if getattr(config, k) is None})


WARMUP_FRACTION = 0.1  # of all steps, from a tenth of the peak rate up to the peak


def learning_rate_schedule(peak, schedule="constant", total_steps=None):
    """The optimizer's learning rate: ``peak`` throughout, or warm-up then cosine decay.

    ``"warmup-cosine"`` rises linearly from ``peak / 10`` to ``peak`` over the
    first tenth of ``total_steps`` (the warm-up of Goyal et al., 2017, "Accurate,
    large minibatch SGD") and then follows half a cosine down to zero at the
    last step (Loshchilov & Hutter, 2017, "SGDR"). It is Keras's own
    ``CosineDecay``, so a saved model's optimizer loads without the zoo.
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
    """Cross-entropy for integer labels, or with ``label_smoothing`` > 0 for one-hot ones.

    Keras's sparse cross-entropy has no label smoothing, so a smoothed run
    uses ``CategoricalCrossentropy(label_smoothing=...)`` and is fed one-hot
    targets (:func:`wants_one_hot`). Both are Keras's own classes: a saved
    model loads and compiles without the zoo.
    """
    import keras

    if not label_smoothing:
        return "sparse_categorical_crossentropy"
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def wants_one_hot(model):
    """Whether ``model``'s compiled loss takes one-hot targets (a smoothed run, new or resumed)."""
    import keras

    return isinstance(getattr(model, "loss", None), keras.losses.CategoricalCrossentropy)


def compile_model(
    model,
    optimizer,
    learning_rate,
    schedule="constant",
    total_steps=None,
    label_smoothing=0.0,
    **compile_options,
):
    """Compile ``model`` as ``zoo-train`` trains it; returns the model.

    ``optimizer`` is one of :data:`zoo.training.config.OPTIMIZERS` (``sgd`` with
    momentum 0.9) at the rate :func:`learning_rate_schedule` gives; the loss is
    cross-entropy (:func:`loss_for`: one-hot targets when ``label_smoothing``
    is above 0) and the metric accuracy. ``compile_options`` go on to
    ``model.compile`` (the benchmark tries ``jit_compile`` and
    ``steps_per_execution`` through them). The model stays as Keras compiles it: the
    caller gives it the backend's speed-ups (:func:`zoo.accel.accelerate`) afterwards.
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


def optional_callbacks(config, output, has_validation=True, writes=True):
    """Early stopping and TensorBoard, when asked for (TensorBoard only where ``writes``)."""
    import keras

    callbacks = []
    if config.early_stopping:
        monitor = "val_loss" if has_validation else "loss"
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=config.early_stopping, restore_best_weights=True
            )
        )
    if config.tensorboard and writes:
        try:
            import tensorboard  # noqa: F401
            import tensorflow  # noqa: F401  (TensorBoard's writer needs it on every backend)
        except ImportError:
            raise ZooError(
                "--tensorboard needs TensorFlow and TensorBoard installed "
                "(pip install 'zoo[tensorboard]')."
            ) from None
        callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(output, "logs")))
    return callbacks


def check_training_memory(model, batch):
    """Refuse a model too large to train here (``--image-size 3000 3000``), before it runs out.

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

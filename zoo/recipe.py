"""How a model is trained: its recipe's defaults, the compiled optimizer and loss, callbacks.

Each model's :class:`~zoo.registry.Recipe` fills the flags a user leaves out;
:func:`compile_model` is shared by ``zoo-train`` and the benchmark.
"""

from __future__ import annotations

import os

from zoo.errors import ZooError

__all__ = ["resolve_recipe", "compile_model", "optional_callbacks"]


def resolve_recipe(config):
    """Fill the flags left at ``None`` from the model's recipe (unknown model: one error)."""
    from zoo.models import model_spec

    recipe = vars(model_spec(config.model).recipe)
    return config.replace(**{k: v for k, v in recipe.items() if getattr(config, k) is None})


def compile_model(model, optimizer, learning_rate, **compile_options):
    """Compile ``model`` as ``zoo-train`` trains it; returns the model.

    ``optimizer`` is one of :data:`zoo.config.OPTIMIZERS` (``sgd`` with
    momentum 0.9); the loss is sparse categorical cross-entropy and the metric
    accuracy. ``compile_options`` go on to ``model.compile`` (the benchmark
    tries ``jit_compile`` and ``steps_per_execution`` through them).
    """
    import keras

    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": lambda rate: keras.optimizers.SGD(rate, momentum=0.9),
    }
    model.compile(
        optimizer=optimizers[optimizer](learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        **compile_options,
    )
    return model


def optional_callbacks(config, output):
    """Early stopping and TensorBoard, when asked for."""
    import keras

    callbacks = []
    if config.early_stopping:
        monitor = "val_loss" if config.validation_split > 0 else "loss"
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=config.early_stopping, restore_best_weights=True
            )
        )
    if config.tensorboard:
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

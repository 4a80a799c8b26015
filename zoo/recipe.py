"""How a model is trained: its recipe's defaults, the compiled optimizer and loss, callbacks.

Each model's :class:`~zoo.registry.Recipe` fills the flags a user leaves out;
:func:`compile_model` is shared by ``zoo-train`` and the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import sys

from zoo import checkpoint
from zoo.errors import ZooError

__all__ = [
    "resolve_names",
    "resolve_recipe",
    "tensorflow_left_alone",
    "compile_model",
    "optional_callbacks",
]

DEFAULT_MODEL, DEFAULT_DATASET = "lenet5", "digits"


def resolve_names(config, backend):
    """Fill in the model, dataset and output folder; on ``--resume``, from the checkpoint.

    A ``--model`` or ``--dataset`` that differs from what the checkpoint was
    trained with is refused: resuming would train one thing and label it another.
    """
    model, dataset = config.model or DEFAULT_MODEL, config.dataset or DEFAULT_DATASET
    name = os.path.basename(os.path.normpath(dataset))
    output = config.output or os.path.join("runs", f"{model}-{name}-{backend}")
    if not config.resume:
        return config.replace(model=model, dataset=dataset, output=output)
    state, _, _ = checkpoint.read_state(output)
    checkpoint.check_same_run(state, config, output)
    return config.replace(model=state["model"], dataset=state["dataset"], output=output)


def resolve_recipe(config):
    """Fill the flags left at ``None`` from the model's recipe (unknown model: one error)."""
    from zoo.models import model_spec

    recipe = vars(model_spec(config.model).recipe)
    return config.replace(**{k: v for k, v in recipe.items() if getattr(config, k) is None})


@contextlib.contextmanager
def tensorflow_left_alone(backend):
    """While training on JAX or PyTorch, keep Keras from importing TensorFlow just to check for it.

    Keras imports TensorFlow whenever it is installed, to seed it
    (``keras.utils.set_random_seed``) and to look for its shapes when saving a
    model: about 4 s and 500 MB more for a JAX or PyTorch run. Inside this
    block Keras is told that TensorFlow is absent, unless it is the backend or
    already imported; the flag is restored afterwards. This reaches into
    Keras's ``module_utils``; if that ever changes, nothing is done.
    """
    try:
        from keras.src.utils.module_utils import tensorflow as lazy_tensorflow

        saved = lazy_tensorflow._available
    except (ImportError, AttributeError):
        yield
        return
    if backend != "tensorflow" and "tensorflow" not in sys.modules:
        lazy_tensorflow._available = False
    try:
        yield
    finally:
        lazy_tensorflow._available = saved


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

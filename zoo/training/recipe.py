"""How a model is trained: its recipe's defaults, the compiled optimizer and loss, callbacks.

Each model's :class:`~zoo.registry.Recipe` fills the flags a user leaves out;
:func:`compile_model` is shared by ``zoo-train`` and the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import sys

from zoo.errors import ZooError
from zoo.training.config import SCHEDULES

__all__ = [
    "resolve_names",
    "resolve_recipe",
    "tensorflow_left_alone",
    "import_keras_lean",
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


# Imported by ``import keras`` whenever installed, for features a training run never uses: JAX
# for Keras's Orbax checkpoint callback, scikit-learn for its estimator wrappers, matplotlib for
# its image gallery. On PyTorch they add about 200 MB (BENCHMARKS.md, "Lean runs").
KERAS_EXTRAS = ("jax", "sklearn", "matplotlib")


# XLA's CPU compiler with its older loop emitters instead of the MLIR fusion emitters: compiling
# LeNet's training step then takes about 150 MiB less at its peak (the convolutions written in
# keras.ops, zoo.accel.conv, make
# fusions the new emitters spend much memory on), and trains as fast.
# Measured on jaxlib 0.10 only (BENCHMARKS.md, "Lean runs"); XLA aborts on a flag it does not
# know, so other versions keep their defaults.
LEAN_XLA_FLAG = "--xla_cpu_use_fusion_emitters=false"
LEAN_XLA_JAXLIB = ("0.10.",)


def use_lean_xla_flags():
    """In a process the zoo owns, on JAX: add :data:`LEAN_XLA_FLAG` to ``XLA_FLAGS``.

    XLA reads ``XLA_FLAGS`` when JAX starts its CPU client, so this must come
    before JAX computes anything. Returns whether the flag is now set. A user's
    own choice of the flag in ``XLA_FLAGS`` is kept.
    """
    import importlib.metadata

    flags = os.environ.get("XLA_FLAGS", "")
    name = LEAN_XLA_FLAG.split("=")[0]
    if name in flags:
        return LEAN_XLA_FLAG in flags.split()
    try:
        version = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return False
    if not version.startswith(LEAN_XLA_JAXLIB):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {LEAN_XLA_FLAG}".strip()
    return True


def import_keras_lean():
    """Import Keras in a process the zoo owns without the packages of :data:`KERAS_EXTRAS`.

    Only for ``zoo-train`` and the benchmark's runs, never a user's session:
    while Keras imports, each of those packages except the backend
    (``KERAS_BACKEND``; when it is unset JAX is left alone) is marked absent
    in ``sys.modules``, and unmarked at once afterwards, so the run can still
    import it itself (matplotlib for its plots, scikit-learn for the digits).
    What Keras built without them (``keras.wrappers``, the image gallery) is
    unusable in that process. Returns ``keras``; nothing is hidden when Keras
    is already imported. On JAX it also sets :func:`use_lean_xla_flags`.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    backend = os.environ.get("KERAS_BACKEND", "jax")
    if backend == "jax":
        use_lean_xla_flags()
    hidden = [name for name in KERAS_EXTRAS if name != backend and name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # ``import name`` now raises ImportError, which Keras expects
    try:
        import keras
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return keras


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
    ``steps_per_execution`` through them). On PyTorch,
    :func:`zoo.models._builder.apply_backend_speedups` follows.
    """
    import keras

    optimizers = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": lambda rate: keras.optimizers.SGD(rate, momentum=0.9),
    }
    from zoo.models._builder import apply_backend_speedups

    rate = learning_rate_schedule(learning_rate, schedule, total_steps)
    model.compile(
        optimizer=optimizers[optimizer](rate),
        loss=loss_for(label_smoothing),
        metrics=["accuracy"],
        **compile_options,
    )
    return apply_backend_speedups(model)  # on PyTorch, Adam's fused update


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

"""Train any registered model on any dataset, on any Keras backend.

Command line (``zoo-train`` or ``python -m zoo train``)::

    zoo-train --model lenet5 --dataset digits --output runs/lenet5
    KERAS_BACKEND=torch zoo-train --model alexnet --dataset data/pets --image-size 128 128

From Python, with a :class:`~zoo.training.config.TrainConfig` or its fields as keywords::

    import zoo
    result = zoo.train(model="lenet5", dataset="digits", epochs=5, output="runs/demo")
    result = zoo.train(zoo.TrainConfig(model="lenet5", epochs=5))
    result.metrics["test_accuracy"], result.model, result.history

:func:`run` is the whole run as named stages, each a function of plain values:
start the backend -> resolve the recipe -> load the data -> build or resume
the model -> fit -> evaluate -> write the report. It uses ``model.compile``
and ``model.fit``: Keras's trainer is the one loop that runs unchanged on JAX,
TensorFlow and PyTorch. The output folder receives, each written atomically:
``checkpoint/`` (see :mod:`zoo.training.checkpoint`) with ``model.keras``,
``history.csv`` and ``state.json`` beside it after every epoch, and at the end
``metrics.json``, ``classes.json``, ``curves.png`` and ``confusion_matrix.png``.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from zoo._io import disk_full
from zoo.accel import accelerate, runtime
from zoo.data.dataset import Split
from zoo.errors import EXIT_DIVERGED, ZooError
from zoo.training import checkpoint, interrupt, recipe, report, resume
from zoo.training.config import TrainConfig, build_parser  # noqa: F401  (build_parser: for the docs)
from zoo.training.distribute import torch_ddp as distribute_torch

__all__ = ["TrainConfig", "TrainResult", "TrainingError", "run", "train"]


class TrainingError(ZooError):
    """Bad input or a failed run; ``exit_code`` is what the command line returns."""


@dataclass(frozen=True)
class Splits:
    """The data of one run: the dataset's splits and the validation images held out of train."""

    name: str
    class_names: list
    train: Split
    validation: Split | None
    test: Split


@dataclass(frozen=True, eq=False)
class TrainResult(Mapping):
    """What a run produced. ``metrics`` is ``None`` on the helper processes of a JAX job.

    It also reads as the metrics dict (``result["test_accuracy"]``, ``"params" in result``),
    which is what ``train()`` returned before it returned this.
    """

    metrics: dict | None
    output: str
    history: dict
    model: object = field(repr=False)

    def __getitem__(self, key):
        return (self.metrics or {})[key]

    def __iter__(self):
        return iter(self.metrics or {})

    def __len__(self):
        return len(self.metrics or {})


def run(config: TrainConfig, *, own_process: bool = False) -> TrainResult:
    """Train as ``config`` says; raises :class:`~zoo.errors.ZooError` for bad input.

    ``own_process``: the process is ``zoo-train``'s alone, so Keras may be
    imported without the packages it does not need (:func:`zoo.accel.runtime.import_keras_lean`).
    """
    backend = start_backend(config, own_process)
    with runtime.tensorflow_left_alone(backend):
        start_devices(config, backend)
        return train_on(backend, config)


def train_on(backend, config):
    """The stages of :func:`run`, once the backend is running."""
    config = recipe.resolve_names(config, backend)
    plan = distribution_plan(config, backend)
    with claim_output(config, plan) as (output, replacing):
        if config.resume:
            config = resume.settings(config)
        config = recipe.resolve_recipe(config)
        data = load_data(config)
        model, state, history = build_or_resume(config, data, output, plan)
        say = (lambda *a: None) if config.quiet else print
        say(report.describe(config, model, data, backend, state["epochs_completed"], plan, output))
        if state["epochs_completed"] < config.epochs:
            seconds = fit(model, config, data, output, state, history, plan, replacing)
        else:  # stopped after its last epoch, before its report: finish the report
            say(f"all {config.epochs} epochs are trained; writing the report they are missing")
            if not plan or plan.is_chief:
                checkpoint.publish(output, state, history)
            seconds = 0.0
        if plan and not plan.is_chief:
            return finish_helper(model, output, history, plan)
        if plan and plan.backend == "jax":
            from zoo.training.distribute import local_copy

            model = compile_for(local_copy(model), config, data)
            accelerate(model, conv_impl=config.conv_impl)  # a clone starts plain
        evaluation = evaluate(model, data, config.batch_size)
        metrics = write_report(
            config, model, data, evaluation, history, state, seconds, output, plan
        )
    print(
        f"test accuracy {metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f}) after "
        f"{metrics['epochs_completed']} epochs on {backend}; artifacts in {output}"
    )
    return TrainResult(metrics, output, history, model)


# --------------------------------------------------------------------------- stages


def start_backend(config, own_process=False):
    """Choose the Keras backend (and JAX's virtual CPUs); returns the backend's name."""
    if config.backend is not None:
        runtime.choose_backend(config.backend)
    if config.distribute and config.virtual_cpus and "jax" not in sys.modules:
        runtime.request_virtual_cpus(config.virtual_cpus)  # read by XLA when JAX starts
    if own_process:
        return runtime.import_keras_lean().backend.backend()
    import keras

    return keras.backend.backend()


def start_devices(config, backend):
    """For ``--distribute``: TensorFlow's virtual CPUs, JAX's multi-process runtime."""
    if config.distribute:
        from zoo.training import distribute

        distribute.start_devices(config, backend)


def distribution_plan(config, backend):
    """The data-parallel plan for ``--distribute``, else ``None``."""
    if not config.distribute:
        return None
    from zoo.training.distribute import data_parallel

    return data_parallel(config.batch_size)


@contextlib.contextmanager
def claim_output(config, plan=None):
    """Hold the output folder for this run: yields ``(path, files this run replaces)``.

    The folder is created and checked writable, then held (a second run into
    it is refused, :func:`zoo.training.checkpoint.hold`) and cleared of a killed run's
    temporaries. A fresh run into a folder that holds an earlier run is
    refused, unless ``--overwrite``: then that run's files (only the zoo's,
    :func:`zoo.training.checkpoint.run_files`) are replaced by this run's first
    checkpoint, never before, so bad data or a bad flag found later loses
    nothing. A folder with no completed epoch holds no run: what the zoo left
    there is replaced the same way. In a multi-process run only the chief
    (process 0) holds and checks the folder: the others may share it.
    """
    output = config.output
    if plan and not plan.is_chief:
        os.makedirs(output, exist_ok=True)
        yield os.path.abspath(output), []
        return
    if config.resume and not os.path.isdir(output):
        checkpoint.read_state(output)  # raises: nothing to resume (and nothing is created)
    _make_writable(output)
    with checkpoint.hold(output):
        checkpoint.clean_stale(output)
        earlier = [] if config.resume else checkpoint.earlier_run(output)
        if earlier and not config.overwrite:
            raise TrainingError(
                f"{output} already holds a run ({', '.join(earlier)}); pass --resume to "
                "continue it, --overwrite to replace it, or choose another --output."
            )
        yield os.path.abspath(output), ([] if config.resume else checkpoint.run_files(output))


def _make_writable(output):
    try:
        os.makedirs(output, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=output, prefix=f".{checkpoint.WRITE_TEST}.")
        probe.close()
    except OSError as error:
        raise TrainingError(
            f"cannot write to output folder {output}: {error.strerror or error}. "
            "Choose a writable folder with --output."
        ) from None


def load_data(config):
    """Read the dataset and hold out the validation split (a seeded random choice)."""
    import numpy as np

    from zoo.data import load_dataset, rare_class_warnings

    data = load_dataset(
        config.dataset,
        limit=config.limit,
        skip_bad_images=config.skip_bad_images,
        seed=config.seed,
    )
    count, fraction = len(data.train), config.validation_split
    held = int(round(count * fraction))
    if held >= count and fraction > 0:
        raise TrainingError(f"--validation-split {fraction} leaves no training images.")
    order = np.random.default_rng(config.seed).permutation(count)
    validation = data.train.subset(np.sort(order[:held])) if held else None
    train_split = data.train.subset(np.sort(order[held:]))
    for warning in rare_class_warnings(data.train.labels, data.class_names, fraction):
        print(f"warning: {warning}", file=sys.stderr)
    return Splits(config.dataset, list(data.class_names), train_split, validation, data.test)


def build_or_resume(config, data, output, plan):
    """A new compiled model, or the latest checkpoint's: ``(model, state, history)``.

    The state records what :mod:`zoo.training.resume` checks and restores: the
    model, the dataset and its fingerprint, the recipe.
    """
    import keras

    from zoo.data import check_label_range
    from zoo.models import get_model, model_spec

    keras.utils.set_random_seed(config.seed)
    identity = resume.data_identity(data, config.dataset)
    scope = plan.scope() if plan else contextlib.nullcontext()
    with scope:
        if config.resume:
            model, state, history = checkpoint.load(output)
            resume.check_same_data(state, identity, output)
            resume.check_epochs_left(config, state["epochs_completed"], output)
            resume.recompile(model, lambda m: compile_for(m, config, data))
            checkpoint.check_same_model(model, config, output)
        else:
            default = model_spec(config.model).default_input_shape
            height, width = config.image_size or default[:2]
            classes = config.classes or len(data.class_names)
            model = get_model(
                config.model, input_shape=(height, width, default[2]), classes=classes
            )
            recipe.check_training_memory(model, config.batch_size)
            compile_for(model, config, data)
            state, history = {"epochs_completed": 0}, {}
    # After compile (fused Adam) and on a resumed model too; with DDP, process 0's weights
    # everywhere and gradients averaged. The banner says what it applied.
    accelerate(
        model, conv_impl=config.conv_impl, data_parallel=bool(plan and plan.backend == "torch")
    )
    classes = int(model.output_shape[-1])
    splits = {"training": data.train, "validation": data.validation, "test": data.test}
    for split, labels in ((name, s.labels) for name, s in splits.items() if s is not None):
        check_label_range(labels, classes, split)
    state = {
        **state,
        "model": config.model,
        "dataset": config.dataset,
        "backend": keras.backend.backend(),
        "seed": config.seed,
        "recipe": resume.recipe_of(config),
        **identity,
    }
    return model, state, history


def compile_for(model, config, data):
    """Compile ``model`` with the run's optimizer and learning-rate schedule.

    The schedule spans the whole run, ``--epochs`` of full batches of the
    training split, so a warm-up-cosine rate reaches zero at the last epoch.
    """
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    return recipe.compile_model(
        model,
        config.optimizer,
        config.learning_rate,
        schedule=config.schedule,
        total_steps=steps_per_epoch * config.epochs,
        label_smoothing=config.label_smoothing,
    )


def one_hot_classes(model):
    """The class count when ``model``'s loss takes one-hot targets (label smoothing), else None."""
    return int(model.output_shape[-1]) if recipe.wants_one_hot(model) else None


def fit(model, config, data, output, state, history, plan, replacing=()):
    """Train from the state's epoch to ``config.epochs``; returns the seconds it took."""
    import keras

    from zoo.data import make_inputs

    shape, batch = tuple(model.input_shape[1:]), config.batch_size
    train_split, validation = data.train, data.validation
    if plan:  # each process feeds its share of every global batch
        train_split = train_split.subset(plan.shard(len(train_split)))
        if plan.backend == "jax":  # on torch every process validates on the whole split
            validation = validation and validation.subset(plan.shard(len(validation)))
        batch = plan.per_process if plan.backend != "tensorflow" else batch
    one_hot = one_hot_classes(model)
    x, y = make_inputs(*train_split, shape, batch, shuffle=True, seed=config.seed, one_hot=one_hot)
    validation_data = None
    if validation is not None:
        vx, vy = make_inputs(*validation, shape, batch, one_hot=one_hot)
        validation_data = vx if vy is None else (vx, vy)
    writes = not plan or plan.is_chief
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        checkpoint.epoch_callback(output, history, state, writes, replacing),
    ]
    callbacks += recipe.optional_callbacks(config, output, validation_data is not None, writes)
    start = time.perf_counter()
    with interrupt.stop_between_steps() as ctrl_c, distribute_torch.lost_process(plan, output):
        losses = model.fit(
            x,
            y,
            epochs=config.epochs,
            initial_epoch=state["epochs_completed"],
            validation_data=validation_data,
            shuffle=y is not None,
            callbacks=callbacks + ([interrupt.interrupt_callback(ctrl_c)] if ctrl_c else []),
            verbose=0 if config.quiet else (1 if sys.stdout.isatty() else 2),
            **({} if y is None else {"batch_size": batch}),
        ).history.get("loss", [])
    seconds = time.perf_counter() - start
    if not losses or not all(math.isfinite(loss) for loss in losses):
        raise TrainingError(
            f"training diverged: the loss became NaN or infinite in epoch "
            f"{state['epochs_completed'] + len(losses)}. The last good checkpoint is in "
            f"{output}. Lower --learning-rate and train again.",
            exit_code=EXIT_DIVERGED,
        )
    if config.early_stopping:  # the best weights, restored: not the last checkpoint's
        checkpoint.save_final(model, output, writes)
    return seconds


def evaluate(model, data, batch):
    """Test loss, accuracy and the predicted class of every test image."""
    import numpy as np

    from zoo.data import make_inputs

    shape, one_hot = tuple(model.input_shape[1:]), one_hot_classes(model)
    x, y = make_inputs(*data.test, shape, batch, one_hot=one_hot)
    kwargs = {} if y is None else {"batch_size": batch}
    loss, accuracy = model.evaluate(x, y, verbose=0, **kwargs)
    predictions = np.argmax(model.predict(x, verbose=0, **kwargs), axis=-1)
    return {"test_loss": float(loss), "test_accuracy": float(accuracy), "predictions": predictions}


def write_report(config, model, data, evaluation, history, state, seconds, output, plan):
    """metrics.json, classes.json and the two pictures; returns the metrics."""
    metrics = report.metrics(config, model, data, evaluation, history, state, seconds, plan)
    try:
        report.write(output, metrics, data, evaluation, history)
    except Exception as error:  # a full disk, a class name a plot cannot draw...
        problem = "the disk is full" if disk_full(error) else error
        raise TrainingError(
            f"could not write the report in {output} ({problem}); the trained model is safe "
            f"in {output}/checkpoint, and --resume writes the report once that is fixed."
        ) from error
    if plan:
        from zoo.training.distribute import finish_together

        finish_together(plan)
    return metrics


def finish_helper(model, output, history, plan):
    """A helper process of a JAX or PyTorch job: report, wait for process 0, return no
    metrics."""
    from zoo.training.distribute import finish_together

    print(
        f"process {plan.process_id} done: training loss {history['loss'][-1]!r} after epoch "
        f"{len(history['loss'])}; process 0 writes the results to {output}"
    )
    finish_together(plan)
    return TrainResult(None, output, history, model)


# --------------------------------------------------------------------------- entry points


def train(config=None, **fields):
    """``zoo.train(TrainConfig(...))`` or ``zoo.train(model="lenet5", epochs=5, ...)``.

    Keywords are :class:`~zoo.training.config.TrainConfig`'s fields (the flags with
    ``_`` for ``-``). Returns a :class:`TrainResult`.
    """
    if config is not None and fields:
        raise TypeError("pass a TrainConfig or keywords, not both")
    if config is None:
        unknown = sorted(set(fields) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise TypeError(f"train() got an unknown option {unknown[0]!r}")
        config = TrainConfig(**fields)
    return run(config)

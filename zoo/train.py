"""Train any registered model on any dataset, on any Keras backend.

Command line (``zoo-train`` or ``python -m zoo.train``)::

    zoo-train --model lenet5 --dataset digits --output runs/lenet5
    KERAS_BACKEND=torch zoo-train --model alexnet --dataset data/pets --image-size 128 128

From Python::

    from zoo.train import train
    metrics = train(model="lenet5", dataset="digits", epochs=5, output="runs/demo")

It uses ``model.compile`` and ``model.fit``: Keras's trainer is the one
training loop that runs unchanged on JAX, TensorFlow and PyTorch. The output
folder receives, each written atomically:

- ``model.keras`` (saved after every epoch, with the optimizer state),
- ``history.csv`` (one row per epoch), ``state.json`` (epochs completed),
- at the end ``metrics.json``, ``classes.json``, ``curves.png`` and
  ``confusion_matrix.png``.

``--resume`` continues from the last completed epoch; ``--epochs`` is the total.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import sys
import tempfile
import time

from zoo._io import atomic_path, read_csv, save_figure, write_csv, write_json
from zoo.distribute import STRATEGIES, DistributeError, finish_together
from zoo.errors import EXIT_DIVERGED, ZooError, run_command

BACKENDS = ("jax", "tensorflow", "torch")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
DEFAULT_MODEL = "lenet5"
FALLBACK_RECIPE = {"epochs": 10, "batch_size": 32, "learning_rate": 1e-3, "optimizer": "adam"}


class TrainingError(ZooError):
    """Bad input or a failed run; ``exit_code`` is what the command line returns."""


# --------------------------------------------------------------------------- arguments


def build_parser():
    parser = argparse.ArgumentParser(
        prog="zoo-train",
        description="Train a zoo model on a dataset with Keras, on JAX, TensorFlow or PyTorch "
        "(chosen by KERAS_BACKEND or --backend).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--model", default=DEFAULT_MODEL, help="registered model name (see `python -m zoo`)")
    add(
        "--dataset",
        default="digits",
        help="digits (embedded), mnist, fashion_mnist, cifar10 (Keras cache), or a path: a folder "
        "of class subfolders of images, an .npz with x_train/y_train/x_test/y_test, or a folder "
        "of MNIST IDX files",
    )
    add(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend; default: $KERAS_BACKEND, else Keras's own default",
    )
    add(
        "--epochs",
        type=int,
        default=None,
        help="total epochs (default: the model's recipe, e.g. 30 for lenet5)",
    )
    add("--batch-size", type=int, default=None, help="batch size (default: the model's recipe)")
    add(
        "--learning-rate",
        type=float,
        default=None,
        help="learning rate (default: the model's recipe, e.g. 0.003 for lenet5)",
    )
    add(
        "--optimizer",
        choices=OPTIMIZERS,
        default=None,
        help="optimizer; sgd uses momentum 0.9 (default: the model's recipe, adam)",
    )
    add("--seed", type=int, default=0, help="random seed for weights, shuffling and splits")
    add(
        "--validation-split",
        type=float,
        default=0.1,
        help="fraction of the training images held out for validation (0 for none)",
    )
    add(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="input height and width (default: the model's default input)",
    )
    add(
        "--classes",
        type=int,
        default=None,
        help="number of classes (default: as many as the dataset names)",
    )
    add("--limit", type=int, default=None, help="use only the first N training images")
    add("--output", default=None, help="output folder (default: runs/MODEL-DATASET-BACKEND)")
    add(
        "--resume",
        action="store_true",
        help="continue from the last completed epoch in --output; --epochs is the total",
    )
    add(
        "--early-stopping",
        type=int,
        default=None,
        metavar="N",
        help="stop after N epochs without improvement of the validation loss",
    )
    add("--tensorboard", action="store_true", help="write TensorBoard logs to OUTPUT/logs")
    add(
        "--distribute",
        choices=STRATEGIES,
        default=None,
        help="train on every local device: keras.distribution.DataParallel on jax, "
        "tf.distribute.MirroredStrategy on tensorflow; --batch-size is the global batch",
    )
    add(
        "--virtual-cpus",
        type=int,
        default=None,
        metavar="N",
        help="with --distribute: split the CPU into N devices (to try data parallelism "
        "without accelerators)",
    )
    add(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help="with --distribute on jax: address of process 0 of a multi-process job",
    )
    add("--num-processes", type=int, default=None, help="with --coordinator: processes in the job")
    add("--process-id", type=int, default=None, help="with --coordinator: this process, 0..N-1")
    add("--quiet", action="store_true", help="print only the final result")
    return parser


def _choose_backend(requested):
    """Set KERAS_BACKEND before Keras is imported; refuse if Keras already runs another one."""
    if requested is None:
        return
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != requested:
            raise TrainingError(
                f"Keras is already imported with the '{current}' backend, so --backend "
                f"{requested} cannot take effect. Start a new process with "
                f"KERAS_BACKEND={requested} (or --backend {requested}) before importing Keras."
            )
    os.environ["KERAS_BACKEND"] = requested


def _check_numbers(options):
    checks = [
        (
            options.epochs is not None and options.epochs < 1,
            f"--epochs must be at least 1, got {options.epochs}",
        ),
        (
            options.batch_size is not None and options.batch_size < 1,
            f"--batch-size must be at least 1, got {options.batch_size}",
        ),
        (
            options.learning_rate is not None
            and not (options.learning_rate > 0 and math.isfinite(options.learning_rate)),
            f"--learning-rate must be a positive number, got {options.learning_rate}",
        ),
        (
            not 0 <= options.validation_split < 1,
            f"--validation-split must be in [0, 1), got {options.validation_split}",
        ),
        (
            options.limit is not None and options.limit < 1,
            f"--limit must be at least 1, got {options.limit}",
        ),
        (
            options.early_stopping is not None and options.early_stopping < 1,
            f"--early-stopping must be at least 1 epoch, got {options.early_stopping}",
        ),
        (
            options.classes is not None and options.classes < 1,
            f"--classes must be at least 1, got {options.classes}",
        ),
        (
            options.image_size is not None and min(options.image_size) < 1,
            f"--image-size must be two positive integers, got {options.image_size}",
        ),
    ]
    for failed, message in checks:
        if failed:
            raise TrainingError(message + ".")
    _check_distribute_flags(options)


def _check_distribute_flags(options):
    job = (options.coordinator, options.num_processes, options.process_id)
    if not options.distribute:
        used = [
            flag
            for flag, value in zip(
                ("--virtual-cpus", "--coordinator", "--num-processes", "--process-id"),
                (options.virtual_cpus, *job),
                strict=True,
            )
            if value is not None
        ]
        if used:
            raise TrainingError(f"{used[0]} only applies with --distribute data-parallel.")
        return
    if options.virtual_cpus is not None and options.virtual_cpus < 1:
        raise TrainingError(f"--virtual-cpus must be at least 1, got {options.virtual_cpus}.")
    if any(value is not None for value in job):
        if None in job:
            raise TrainingError(
                "a multi-process job needs all of --coordinator HOST:PORT, --num-processes N "
                "and --process-id I."
            )
        if options.num_processes < 1 or not 0 <= options.process_id < options.num_processes:
            raise TrainingError(
                f"--process-id must be in 0..{options.num_processes - 1} and --num-processes at "
                f"least 1, got --process-id {options.process_id} --num-processes "
                f"{options.num_processes}."
            )


# --------------------------------------------------------------------------- run


def _backend_version(backend):
    package = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}[backend]
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _prepare_output(options, dataset_name, backend):
    output = options.output or os.path.join(
        "runs", f"{options.model}-{os.path.basename(os.path.normpath(dataset_name))}-{backend}"
    )
    try:
        os.makedirs(output, exist_ok=True)
        probe = os.path.join(output, ".write-test")
        with open(probe, "w") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as error:
        raise TrainingError(
            f"cannot write to output folder {output}: {error.strerror or error}. "
            "Choose a writable folder with --output."
        ) from None
    return output


def _make_optimizer(name, learning_rate):
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    return {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
    }[name](learning_rate)


def compile_model(model, optimizer, learning_rate, **compile_options):
    """Compile ``model`` as ``zoo-train`` trains it; returns the model.

    ``optimizer`` is one of ``OPTIMIZERS``; the loss is sparse categorical
    cross-entropy and the metric accuracy. ``compile_options`` go on to
    ``model.compile`` (the benchmark tries ``jit_compile`` and
    ``steps_per_execution`` through them). Keras's own defaults for those
    stay: ``BENCHMARKS.md`` records that no alternative measured faster here.
    """
    model.compile(
        optimizer=_make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        **compile_options,
    )
    return model


def _resolve_recipe(options, info):
    recipe = {**FALLBACK_RECIPE, **info["recipe"]}
    for key in recipe:
        if getattr(options, key) is None:
            setattr(options, key, recipe[key])


def _validation_split(data, fraction, seed):
    """Hold out ``fraction`` of the training images (a seeded random choice) for validation."""
    import numpy as np

    count = data.train_size
    held = int(round(count * fraction))
    if fraction == 0 or held == 0:
        return data.subset_train(np.arange(count)), None
    if held >= count:
        raise TrainingError(f"--validation-split {fraction} leaves no training images.")
    order = np.random.default_rng(seed).permutation(count)
    return data.subset_train(np.sort(order[held:])), data.subset_train(np.sort(order[:held]))


def _load_checkpoint(output):
    path = os.path.join(output, "model.keras")
    state_path = os.path.join(output, "state.json")
    if not (os.path.isfile(path) and os.path.isfile(state_path)):
        raise TrainingError(
            f"--resume: no checkpoint in {output} (model.keras and state.json). "
            "Train without --resume first, or point --output at an earlier run."
        )
    import keras

    import zoo.layers  # noqa: F401  (registers the zoo's layers for loading)

    with open(state_path, encoding="utf-8") as handle:
        state = json.load(handle)
    model = keras.saving.load_model(path)
    history_path = os.path.join(output, "history.csv")
    rows = read_csv(history_path) if os.path.isfile(history_path) else []
    history = {}
    for row in rows[: state["epochs_completed"]]:
        for key, value in row.items():
            if key != "epoch":
                history.setdefault(key, []).append(float(value))
    return model, state, history


def _save_model(model, output, writes=True):
    """Write ``OUTPUT/model.keras`` atomically (weights, architecture and optimizer state).

    In a multi-process JAX job saving gathers the variables from every
    process, so every process saves; those with ``writes=False`` save to a
    scratch folder that is then deleted.
    """
    if not writes:
        with tempfile.TemporaryDirectory() as scratch:
            model.save(os.path.join(scratch, "model.keras"))
        return
    with atomic_path(os.path.join(output, "model.keras")) as temporary:
        model.save(temporary)


def _epoch_checkpoint_callback(output, history, meta, writes=True):
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        """After each epoch: save model.keras, history.csv and state.json, each atomically.

        An epoch whose loss is not finite is not saved, so the last checkpoint
        stays the last good one. ``writes=False``: see :func:`_save_model`.
        """

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            if not math.isfinite(float(logs.get("loss", float("nan")))):
                return
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            _save_model(self.model, output, writes)
            if not writes:
                return
            keys = list(history)
            rows = [
                {"epoch": i + 1, **{k: history[k][i] for k in keys}}
                for i in range(len(history[keys[0]]))
            ]
            write_csv(os.path.join(output, "history.csv"), rows, ["epoch", *keys])
            write_json(os.path.join(output, "state.json"), {**meta, "epochs_completed": epoch + 1})

    return EpochCheckpoint()


def _callbacks(options, output, history, meta, writes=True):
    """``writes`` is false on every process of a multi-process job but the first."""
    import keras

    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        _epoch_checkpoint_callback(output, history, meta, writes),
    ]
    if options.early_stopping:
        monitor = "val_loss" if options.validation_split > 0 else "loss"
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=options.early_stopping, restore_best_weights=True
            )
        )
    if options.tensorboard:
        try:
            import tensorboard  # noqa: F401
            import tensorflow  # noqa: F401  (TensorBoard's writer needs it on every backend)
        except ImportError:
            raise TrainingError(
                "--tensorboard needs TensorFlow and TensorBoard installed "
                "(pip install 'zoo[tensorboard]')."
            ) from None
        callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(output, "logs")))
    return callbacks


def _start_devices(options, backend):
    """For ``--distribute``: virtual CPUs and the multi-process runtime, before any computation."""
    from zoo import distribute

    distribute.check_supported(backend)
    if options.coordinator is not None and backend != "jax":
        raise DistributeError(
            "--coordinator (a multi-process job) needs the jax backend; on tensorflow, "
            "--distribute data-parallel uses this machine's devices."
        )
    if options.virtual_cpus and backend == "tensorflow":
        distribute.split_tensorflow_cpu(options.virtual_cpus)
    if options.coordinator is not None:
        distribute.join_processes(options.coordinator, options.num_processes, options.process_id)
    if options.virtual_cpus and backend == "jax":
        import jax

        if jax.local_device_count() != options.virtual_cpus:
            raise DistributeError(
                f"--virtual-cpus {options.virtual_cpus}: JAX started with "
                f"{jax.local_device_count()} device(s) because it was imported first; "
                "run zoo-train in a new process."
            )


def _distribution_plan(options):
    from zoo import distribute

    return distribute.data_parallel(options.batch_size)


def _take(images, labels, indices):
    """The images (an array or a list of files) and labels at ``indices``."""
    if isinstance(images, list):
        return [images[i] for i in indices], labels[indices]
    return images[indices], labels[indices]


def run(options):
    """Train as ``options`` (an ``argparse.Namespace`` from :func:`build_parser`) say.

    Returns the metrics dict also written to ``metrics.json``. Raises
    :class:`TrainingError` for bad input or a diverged run.
    """
    _check_numbers(options)
    _choose_backend(options.backend)
    if options.distribute and options.virtual_cpus and "jax" not in sys.modules:
        from zoo.distribute import request_virtual_cpus_for_jax

        request_virtual_cpus_for_jax(options.virtual_cpus)  # read by XLA when JAX starts
    import keras
    import numpy as np

    from zoo import data as datasets
    from zoo import viz
    from zoo.registry import get_model, model_info

    backend = keras.backend.backend()
    if options.distribute:
        _start_devices(options, backend)
    say = (lambda *a: None) if options.quiet else print
    try:
        info = model_info(options.model)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    _resolve_recipe(options, info)
    plan = _distribution_plan(options) if options.distribute else None
    output = _prepare_output(options, options.dataset, backend)
    keras.utils.set_random_seed(options.seed)

    try:
        data = datasets.load_dataset(options.dataset, limit=options.limit)
    except datasets.DataError as error:
        raise TrainingError(str(error)) from None

    history, initial_epoch = {}, 0
    scope = plan.scope() if plan else contextlib.nullcontext()
    if options.resume:
        with scope:
            model, state, history = _load_checkpoint(output)
        initial_epoch = state["epochs_completed"]
        input_shape = tuple(model.input_shape[1:])
        classes = int(model.output_shape[-1])
        if initial_epoch >= options.epochs:
            raise TrainingError(
                f"--resume: {initial_epoch} epochs are already done in {output}; ask for more "
                f"with --epochs N (N > {initial_epoch}, the total)."
            )
    else:
        default = info["default_input_shape"]
        height, width = options.image_size or default[:2]
        input_shape = (height, width, default[2])
        classes = options.classes or len(data.class_names)
        try:
            with scope:
                model = get_model(options.model, input_shape=input_shape, classes=classes)
                compile_model(model, options.optimizer, options.learning_rate)
        except ValueError as error:
            raise TrainingError(str(error)) from None
    try:
        datasets.check_labels(data, classes)
    except datasets.DataError as error:
        raise TrainingError(str(error)) from None

    (train_x, train_y), validation = _validation_split(data, options.validation_split, options.seed)
    batch = options.batch_size
    if plan:
        # Each process feeds its share of every global batch (all of it with one process).
        train_x, train_y = _take(train_x, train_y, plan.shard(len(train_y)))
        if validation is not None:
            validation = _take(*validation, plan.shard(len(validation[1])))
        batch = plan.per_process if plan.backend == "jax" else options.batch_size
    x, y = datasets.make_inputs(
        train_x, train_y, input_shape, batch, shuffle=True, seed=options.seed
    )
    validation_data = None
    if validation is not None:
        vx, vy = datasets.make_inputs(*validation, input_shape, batch)
        validation_data = vx if vy is None else (vx, vy)
    test_x, test_y = datasets.make_inputs(
        data.x_test if hasattr(data, "x_test") else data.test_files, data.y_test, input_shape, batch
    )

    say(f"backend     {backend} (keras {keras.__version__}, {backend} {_backend_version(backend)})")
    say(
        f"model       {options.model}: input {input_shape}, {classes} classes, "
        f"{model.count_params():,} parameters"
    )
    say(
        f"dataset     {options.dataset}: {len(train_y)} train, "
        f"{0 if validation is None else len(validation[1])} validation, {data.test_size} test"
    )
    say(
        f"recipe      {options.optimizer}, learning rate {options.learning_rate}, "
        f"batch {options.batch_size}, epochs {initial_epoch + 1}..{options.epochs}, "
        f"seed {options.seed}"
    )
    if plan:
        say(f"distribute  {plan.describe()}")
    say(f"output      {os.path.abspath(output)}")

    meta = {
        "model": options.model,
        "dataset": options.dataset,
        "backend": backend,
        "seed": options.seed,
    }
    fit_kwargs = {} if y is None else {"batch_size": batch}
    start = time.perf_counter()
    fit = model.fit(
        x,
        y,
        epochs=options.epochs,
        initial_epoch=initial_epoch,
        validation_data=validation_data,
        shuffle=y is not None,
        callbacks=_callbacks(options, output, history, meta, writes=not plan or plan.is_chief),
        verbose=0 if options.quiet else (1 if sys.stdout.isatty() else 2),
        **fit_kwargs,
    )
    train_seconds = time.perf_counter() - start
    epochs_run = len(fit.history.get("loss", []))
    losses = fit.history.get("loss", [])
    if any(not math.isfinite(v) for v in losses) or epochs_run == 0:
        raise TrainingError(
            f"training diverged: the loss became NaN or infinite in epoch "
            f"{initial_epoch + epochs_run}. The last good checkpoint is in {output}. "
            "Lower --learning-rate and train again.",
            exit_code=EXIT_DIVERGED,
        )

    writes = not plan or plan.is_chief
    _save_model(model, output, writes)  # with early stopping: the restored best weights
    if plan and plan.backend == "jax":
        from zoo.distribute import local_copy

        model = compile_model(local_copy(model), options.optimizer, options.learning_rate)
    if not writes:
        print(
            f"process {plan.process_id} done: training loss {losses[-1]!r} after epoch "
            f"{initial_epoch + epochs_run}; process 0 writes the results to {output}"
        )
        finish_together(plan)
        return None
    evaluate_kwargs = {} if test_y is None else {"batch_size": batch}
    test_loss, test_accuracy = model.evaluate(test_x, test_y, verbose=0, **evaluate_kwargs)
    probabilities = model.predict(test_x, verbose=0, **evaluate_kwargs)
    predictions = np.argmax(probabilities, axis=-1)
    metrics = {
        "backend": backend,
        "keras_version": keras.__version__,
        "backend_version": _backend_version(backend),
        "model": options.model,
        "dataset": options.dataset,
        "params": int(model.count_params()),
        "input_shape": list(input_shape),
        "classes": classes,
        "epochs_completed": initial_epoch + epochs_run,
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "train_seconds": round(train_seconds, 3),
        "train_images_per_second": round(len(train_y) * epochs_run / train_seconds, 1),
        "train_images": int(len(train_y)),
        "test_images": int(data.test_size),
        "optimizer": options.optimizer,
        "learning_rate": options.learning_rate,
        "batch_size": options.batch_size,
        "seed": options.seed,
    }
    if plan:
        metrics["distribution"] = {
            "strategy": options.distribute,
            "engine": plan.engine,
            "devices": len(plan.devices),
            "processes": plan.num_processes,
            "per_device_batch": plan.per_device,
        }
    class_names = list(data.class_names)[:classes] + [
        str(i) for i in range(len(data.class_names), classes)
    ]
    write_json(os.path.join(output, "classes.json"), class_names)
    save_figure(viz.plot_history(history), os.path.join(output, "curves.png"))
    matrix = viz.confusion_matrix(data.y_test, predictions, classes)
    save_figure(
        viz.plot_confusion_matrix(matrix, class_names), os.path.join(output, "confusion_matrix.png")
    )
    write_json(os.path.join(output, "metrics.json"), metrics)
    finish_together(plan)

    print(
        f"test accuracy {test_accuracy:.4f} (loss {test_loss:.4f}) after "
        f"{metrics['epochs_completed']} epochs on {backend}; artifacts in "
        f"{os.path.abspath(output)}"
    )
    return metrics


def train(**kwargs):
    """Python entry point: ``train(model="lenet5", dataset="digits", epochs=5, ...)``.

    Keyword names are the command-line flags with ``_`` for ``-``. Returns
    the metrics dict written to ``metrics.json``.
    """
    options = build_parser().parse_args([])
    for key, value in kwargs.items():
        if not hasattr(options, key):
            raise TypeError(f"train() got an unknown option {key!r}")
        setattr(options, key, value)
    return run(options)


def _command(argv):
    run(build_parser().parse_args(argv))
    return 0


def main(argv=None):
    """``zoo-train``: one line on stderr and exit code 2 for bad input (see zoo.errors)."""
    return run_command("zoo-train", _command, argv)


if __name__ == "__main__":
    sys.exit(main())

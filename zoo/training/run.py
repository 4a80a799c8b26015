"""Train any registered model on any dataset, on any Keras backend.

Command line (`zoo-train` or `python -m zoo train`):

```bash
zoo-train --model lenet5 --dataset digits --output runs/lenet5
KERAS_BACKEND=torch zoo-train --model alexnet --dataset data/pets --image-size 128 128
```

From Python, with a [`zoo.training.config.TrainConfig`][] or its fields as keywords:

```python
import zoo
result = zoo.train(model="lenet5", dataset="digits", epochs=5, output="runs/demo")
result = zoo.train(zoo.TrainConfig(model="lenet5", epochs=5))
result.metrics["test_accuracy"], result.model, result.history
```

[`run`][] is the whole run as named stages: start the backend and the
devices -> hold the output folder -> complete the settings -> load the data
-> build or resume the model -> fit -> evaluate -> write the report. A
[`Run`][] carries what the stages have made so far; each stage reads it
and returns its part, and `train_on` shows the order. Where the devices
make a difference, the stages ask the run's
[`zoo.training.distribute.Plan`][]. Training is `model.compile` and
`model.fit`: Keras's trainer is the one loop that runs unchanged on JAX,
TensorFlow and PyTorch. The output folder receives, each written atomically:
`checkpoint/` (see [`zoo.training.checkpoint`][]) with `model.keras`,
`history.csv` and `state.json` beside it after every epoch, and at the end
`metrics.json`, `classes.json`, `preprocessing.json`, `curves.png` and
`confusion_matrix.png`.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

from zoo._io import disk_full
from zoo.accel import runtime
from zoo.errors import EXIT_DIVERGED
from zoo.training import (
    TrainingError,
    checkpoint,
    interrupt,
    output_folder,
    recipe,
    report,
    resume,
    splits,
)
from zoo.training.callbacks import optional_callbacks
from zoo.training.compile import check_training_memory, compile_model, one_hot_classes
from zoo.training.config import TrainConfig
from zoo.training.distribute import Plan, plan_for

__all__ = ["Run", "TrainResult", "run", "train"]


@dataclass
class Run:
    """One run, handed from stage to stage; `train_on` fills each part in turn.

    `config` is complete (the checkpoint's settings and the model's recipe
    filled in) once the output folder is held; `output` is its absolute path
    and `replacing` an earlier run's files that the first checkpoint replaces
    (`--overwrite`). `state` is what every checkpoint records and
    `history` the per-epoch metrics so far; `seconds` is the time `fit`
    took (0 when nothing was left to train), `evaluation` the test results.
    """

    config: TrainConfig
    backend: str
    plan: Plan
    output: str = ""
    replacing: list = field(default_factory=list)
    data: splits.Splits | None = None
    model: object = field(default=None, repr=False)
    state: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    seconds: float = 0.0
    evaluation: dict | None = None
    epochs_note: str = ""


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What a run produced. `metrics` is `None` on the helper processes of a job."""

    metrics: dict | None
    output: str
    history: dict
    model: object = field(repr=False)


def run(config: TrainConfig, *, own_process: bool = False) -> TrainResult:
    """Train as `config` says; raises [`zoo.errors.ZooError`][] for bad input.

    `own_process`: the process is `zoo-train`'s alone, so Keras may be
    imported without the packages it does not need ([`zoo.accel.runtime.import_keras_lean`][]).
    """
    backend = start_backend(config, own_process)
    with runtime.tensorflow_left_alone(backend):
        plan = plan_for(config, backend)
        return train_on(Run(recipe.resolve_names(config, backend), backend, plan))


def train_on(run):
    """The stages of [`run`][], once the backend and the devices are running."""
    with output_folder.claim(run.config, run.plan.is_chief) as (run.output, run.replacing):
        epochs_from_recipe = run.config.epochs is None and not run.config.resume
        run.config = complete_config(run.config)
        run.plan.check_batch(run.config.batch_size)
        run.data = splits.load_data(run.config)
        if epochs_from_recipe:
            run.config, run.epochs_note = recipe.epochs_for_data(run.config, len(run.data.train))
        run.model, run.state, run.history = build_or_resume(run)
        say(run.config, report.describe(run))
        if run.state["epochs_completed"] < run.config.epochs:
            run.seconds, run.history = fit(run)
        else:  # stopped after its last epoch, before its report: the report is left
            publish_trained(run)
        if not run.plan.is_chief:
            return finish_helper(run)
        run.model = run.plan.evaluate_copy(run.model, lambda copy: compile_for(copy, run))
        run.evaluation = report.evaluate(run.model, run.data, run.config.batch_size)
        metrics = write_report(run)
        run.plan.finish()
    print(
        f"test accuracy {metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f}) after "
        f"{metrics['epochs_completed']} epochs on {run.backend}; artifacts in {run.output}"
    )
    return TrainResult(metrics, run.output, run.history, run.model)


def say(config, text):
    """Print `text` unless `--quiet`."""
    if not config.quiet:
        print(text)


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


def complete_config(config):
    """Every setting: a resumed run's from its checkpoint, the rest from the model's recipe."""
    return recipe.resolve_recipe(resume.settings(config) if config.resume else config)


def build_or_resume(run):
    """A new compiled model, or the latest checkpoint's: `(model, state, history)`.

    The state records what [`zoo.training.resume`][] checks and restores: the
    model, the dataset and its fingerprint, the recipe.
    """
    import keras

    from zoo.data import check_label_range

    config, output = run.config, run.output
    keras.utils.set_random_seed(config.seed)
    identity = resume.data_identity(run.data, config.dataset)
    with run.plan.scope():
        if config.resume:
            model, state, history = checkpoint.load(output)
            resume.check_same_data(state, identity, output)
            resume.check_epochs_left(config, state["epochs_completed"], output)
            resume.recompile(model, lambda m: compile_for(m, run))
            checkpoint.check_same_model(model, config, output)
        else:
            model, state, history = new_model(run), {"epochs_completed": 0}, {}
    run.plan.prepare(model)  # after compile (fused Adam); the banner says what it applied
    classes = int(model.output_shape[-1])
    data = {"training": run.data.train, "validation": run.data.validation, "test": run.data.test}
    for split, labels in ((name, s.labels) for name, s in data.items() if s is not None):
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


def new_model(run):
    """The registered model at the run's input size and class count, compiled."""
    from zoo.models import get_model, model_spec

    config = run.config
    default = model_spec(config.model).default_input_shape
    height, width = config.image_size or default[:2]
    classes = config.classes or len(run.data.class_names)
    model = get_model(config.model, input_shape=(height, width, default[2]), classes=classes)
    check_training_memory(model, config.batch_size)
    return compile_for(model, run)


def compile_for(model, run):
    """Compile `model` with the run's optimizer and learning-rate schedule.

    The schedule spans the whole run, `--epochs` of full batches of the
    training split, so a warm-up-cosine rate reaches zero at the last epoch.
    """
    config = run.config
    steps_per_epoch = math.ceil(len(run.data.train) / config.batch_size)
    return compile_model(
        model,
        config.optimizer,
        config.learning_rate,
        schedule=config.schedule,
        total_steps=steps_per_epoch * config.epochs,
        label_smoothing=config.label_smoothing,
    )


def fit(run):
    """Train from the state's epoch to `--epochs`: `(seconds it took, history)`."""
    import keras

    from zoo.data import make_inputs

    config, model, plan, done = run.config, run.model, run.plan, run.state["epochs_completed"]
    shape, batch = tuple(model.input_shape[1:]), plan.process_batch(config.batch_size)
    one_hot = one_hot_classes(model)
    train_split = plan.training_shard(run.data.train)
    x, y = make_inputs(*train_split, shape, batch, shuffle=True, seed=config.seed, one_hot=one_hot)
    if config.augment == "digits":  # changed batches for fit; the model stays the plain one
        from zoo.data.digit import mnist_prepared, preprocess_digit

        prepare = preprocess_digit if mnist_prepared(config.dataset, run.data) else None
        x, y = splits.augmented_batches(x, y, batch, config.seed, done, prepare), None
    validation, validation_data = plan.validation_shard(run.data.validation), None
    if validation is not None:
        vx, vy = make_inputs(*validation, shape, batch, one_hot=one_hot)
        validation_data = vx if vy is None else (vx, vy)
    saver = checkpoint.epoch_callback(
        run.output, run.state, run.history, plan.is_chief, run.replacing
    )
    callbacks = [keras.callbacks.TerminateOnNaN(), saver]
    callbacks += optional_callbacks(config, run.output, validation_data is not None, plan.is_chief)
    start = time.perf_counter()
    with interrupt.stop_between_steps() as ctrl_c, plan.lost_process(run.output):
        losses = model.fit(
            x,
            y,
            epochs=config.epochs,
            initial_epoch=done,
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
            f"{done + len(losses)}. The last good checkpoint is in "
            f"{run.output}. Lower --learning-rate and train again.",
            exit_code=EXIT_DIVERGED,
        )
    if config.early_stopping:  # the best weights, restored: not the last checkpoint's
        checkpoint.save_final(model, run.output, plan.is_chief)
    return seconds, saver.history


def publish_trained(run):
    """Refresh the published files of a run whose epochs are all trained (as fit would)."""
    say(
        run.config,
        f"all {run.config.epochs} epochs are trained; writing the report they are missing",
    )
    if run.plan.is_chief:
        checkpoint.publish_latest(run.output, run.state, run.history)


def write_report(run):
    """metrics.json, classes.json, preprocessing.json and the two pictures; returns the metrics."""
    metrics = report.metrics(run)
    try:
        report.write(run.output, metrics, run.data, run.evaluation, run.history)
    except Exception as error:  # a full disk, a class name a plot cannot draw...
        problem = "the disk is full" if disk_full(error) else error
        raise TrainingError(
            f"could not write the report in {run.output} ({problem}); the trained model is "
            f"safe in {run.output}/checkpoint, and --resume writes the report once that is fixed."
        ) from error
    return metrics


def finish_helper(run):
    """A helper process of a job: say how it ended, wait for process 0, return no metrics."""
    loss = run.history["loss"]
    print(
        f"process {run.plan.process_id} done: training loss {loss[-1]!r} after epoch "
        f"{len(loss)}; process 0 writes the results to {run.output}"
    )
    run.plan.finish()
    return TrainResult(None, run.output, run.history, run.model)


# --------------------------------------------------------------------------- entry point


def train(config=None, **fields):
    """`zoo.train(TrainConfig(...))` or `zoo.train(model="lenet5", epochs=5, ...)`.

    Keywords are [`zoo.training.config.TrainConfig`][]'s fields (the flags with
    `_` for `-`). Returns a [`TrainResult`][].
    """
    if config is not None and fields:
        raise TypeError("pass a TrainConfig or keywords, not both")
    if config is None:
        unknown = sorted(set(fields) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise TypeError(f"train() got an unknown option {unknown[0]!r}")
        config = TrainConfig(**fields)
    return run(config)

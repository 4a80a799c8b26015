"""The end of a run: the test results, the metrics, and the files that show them.

[`evaluate`][] runs the test split; [`metrics`][] gathers plain
numbers; [`write`][] puts `classes.json`, `preprocessing.json` (how
`zoo-predict` prepares a file for this model), `curves.png`,
`confusion_matrix.png` and `metrics.json` (last, so its presence means
the run finished) into the output folder, each atomically; [`describe`][]
is the banner printed before training.
"""

from __future__ import annotations

import importlib.metadata
import os

from zoo._io import save_figure, write_json
from zoo.accel import applied
from zoo.training.compile import one_hot_classes

__all__ = [
    "backend_version",
    "class_names",
    "describe",
    "evaluate",
    "metrics",
    "preprocessing",
    "write",
]


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


def label_smoothing_of(model):
    """The label smoothing of `model`'s compiled loss (0.0 for plain cross-entropy)."""
    return float(getattr(getattr(model, "loss", None), "label_smoothing", 0.0) or 0.0)


def metrics(run):
    """The dict written to `metrics.json` and returned by `zoo.train` for a
    [`zoo.training.run.Run`][] that is evaluated."""
    import keras

    config, model, evaluation, seconds = run.config, run.model, run.evaluation, run.seconds
    backend = keras.backend.backend()
    done = len(run.history.get("loss", []))
    ran = done - run.state["epochs_completed"]
    train_images = len(run.data.train)
    return {
        "backend": backend,
        "keras_version": keras.__version__,
        "backend_version": backend_version(backend),
        "model": config.model,
        "dataset": config.dataset,
        "params": int(model.count_params()),
        "input_shape": list(model.input_shape[1:]),
        "classes": int(model.output_shape[-1]),
        "epochs_completed": done,
        "test_loss": evaluation["test_loss"],
        "test_accuracy": evaluation["test_accuracy"],
        "train_seconds": round(seconds, 3),
        "train_images_per_second": round(train_images * ran / seconds, 1) if seconds else 0.0,
        "train_images": int(train_images),
        "test_images": int(len(run.data.test)),
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "schedule": config.schedule,
        "augment": config.augment,
        # the compiled loss's: on --resume, the checkpoint's, whatever the flags say
        "label_smoothing": label_smoothing_of(model),
        "batch_size": config.batch_size,
        "seed": config.seed,
        **run.plan.report(config.batch_size),
    }


def class_names(names, classes):
    """The dataset's class names, padded with indices up to the model's `classes`."""
    return list(names)[:classes] + [str(i) for i in range(len(names), classes)]


def write(output, metrics, data, evaluation, history):
    """Write the run's result files into `output`."""
    from zoo.explain import viz

    names = class_names(data.class_names, metrics["classes"])
    write_json(os.path.join(output, "classes.json"), names)
    write_json(os.path.join(output, "preprocessing.json"), preprocessing(metrics, data))
    title = (
        f"{metrics['model']} on {os.path.basename(str(metrics['dataset']))} ({metrics['backend']})"
    )
    save_figure(viz.plot_history(history, title=title), os.path.join(output, "curves.png"))
    matrix = viz.confusion_matrix(data.test.labels, evaluation["predictions"], metrics["classes"])
    save_figure(
        viz.plot_confusion_matrix(matrix, names), os.path.join(output, "confusion_matrix.png")
    )
    write_json(os.path.join(output, "metrics.json"), metrics)


def preprocessing(metrics, data):
    """What `preprocessing.json` records: `{"prepare": "digit"}` for MNIST-like data
    ([`zoo.data.digit.mnist_prepared`][]), else `{"prepare": "scale"}`."""
    from zoo.data.digit import mnist_prepared

    digit = mnist_prepared(metrics["dataset"], data)
    how = (
        "zoo.preprocess_digit: one digit, made light on dark, fitted into 20x20, centred by mass"
        if digit
        else "resized to the model's input, pixels scaled to [0, 1]"
    )
    return {"prepare": "digit" if digit else "scale", "input": how}


def describe(run):
    """The few lines printed before training starts."""
    import keras

    config, model, data, backend = run.config, run.model, run.data, run.backend
    validation = 0 if data.validation is None else len(data.validation)
    lines = [
        f"backend     {backend} (keras {keras.__version__}, {backend} {backend_version(backend)})",
        f"model       {config.model}: input {tuple(model.input_shape[1:])}, "
        f"{model.output_shape[-1]} classes, {model.count_params():,} parameters",
        f"dataset     {config.dataset}: {len(data.train)} train, {validation} validation, "
        f"{len(data.test)} test",
        f"recipe      {config.optimizer}, learning rate {config.learning_rate} "
        f"({config.schedule}), label smoothing {label_smoothing_of(model)}, batch "
        f"{config.batch_size}, epochs {run.state['epochs_completed'] + 1}..{config.epochs}, "
        f"seed {config.seed}, augment {config.augment}",
    ]
    if run.epochs_note:
        lines.append(f"epochs      {run.epochs_note}")
    speedups, distribution = applied(model), run.plan.describe(config.batch_size)
    if speedups is not None:
        lines.append(f"speed-ups   {speedups.describe()}")
    if distribution is not None:
        lines.append(f"distribute  {distribution}")
    return "\n".join([*lines, f"output      {run.output}"])


def backend_version(backend):
    try:
        return importlib.metadata.version(backend)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"

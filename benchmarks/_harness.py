"""What every native baseline shares: reading the job, timing, and reporting.

A baseline script is started by ``benchmarks/bench.py`` with one argument, a
JSON job such as::

    {"model": "lenet5_modern", "data": "/tmp/x/lenet.npz", "batch_size": 128,
     "warmup_epochs": 1, "timed_epochs": 3, "inference_repeats": 5, "seed": 0}

or, for AlexNet, ``"warmup_steps"`` and ``"timed_steps"`` on synthetic
227x227x3 images; or a time-to-accuracy job (``"mode": "tta"``) with a
``"target_accuracy"`` and the ``"recipes"`` to train with (see
``bench.make_tta_jobs``). It prints one JSON line with its measurements. The timing
rules are the same as for the zoo's own runner in ``benchmarks/bench.py``: compile
and warm-up are excluded from throughput, each figure is the median over
several timed windows, and time to accuracy counts training seconds only
(compilation included, evaluation excluded). The data and the report format
come from ``bench`` (NumPy only; no Keras is imported).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time

import numpy as np
from bench import report


def read_job():
    """The JSON job given as the only command-line argument."""
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} JOB_JSON (started by benchmarks/bench.py)")
    return json.loads(sys.argv[1])


def batch_slices(count, batch_size, rng=None):
    """Index arrays of one epoch's batches; shuffled when ``rng`` is given (last batch partial)."""
    order = rng.permutation(count) if rng is not None else np.arange(count)
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


def median_rate(items, seconds):
    """Images per second from the median of several timed windows of ``items`` images."""
    return items / statistics.median(seconds)


def time_to_accuracy(train_epoch, accuracy, target, max_epochs, epoch_seconds=None):
    """Train epoch by epoch until ``accuracy()`` reaches ``target``.

    Returns ``(seconds, epochs, final_accuracy)``; seconds is ``None`` when the
    target was not reached within ``max_epochs``. Only training is timed; each
    epoch's seconds are appended to the list ``epoch_seconds`` when one is given.
    """
    spent, reached, value = 0.0, None, 0.0
    epoch = 0
    epoch_seconds = [] if epoch_seconds is None else epoch_seconds
    for epoch in range(1, max_epochs + 1):  # noqa: B007  (the count is returned)
        start = time.perf_counter()
        train_epoch()
        epoch_seconds.append(time.perf_counter() - start)
        spent += epoch_seconds[-1]
        value = accuracy()
        if value >= target:
            reached = spent
            break
    return reached, epoch, value


def time_windows(run_window, count):
    """Seconds taken by each of ``count`` calls of ``run_window``."""
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        run_window()
        seconds.append(time.perf_counter() - start)
    return seconds


def median_ms(function, calls, warmups=1):
    """Median milliseconds of ``function()`` over ``calls`` calls after ``warmups`` untimed ones."""
    for _ in range(warmups):
        function()
    return 1000 * statistics.median(time_windows(function, calls))


def learning_rate(recipe, step, total_steps):
    """The rate of ``recipe`` at ``step`` (counted from 0) of a run of ``total_steps``.

    ``"constant"``: the recipe's rate. ``"warmup-cosine"``: the schedule of
    ``zoo.training.compile.learning_rate_schedule`` (Keras's ``CosineDecay`` with
    warm-up): a tenth of the steps rising linearly from a tenth of the peak,
    then half a cosine down to zero. Written out here so that a native loop
    can follow the zoo's recipe without importing Keras.
    """
    peak = recipe["learning_rate"]
    if recipe["schedule"] == "constant":
        return peak
    warmup = int(total_steps * 0.1)
    if step < warmup:
        return peak / 10 + (peak - peak / 10) * step / warmup
    decay_steps = max(total_steps - warmup, 1)
    progress = min(step - warmup, decay_steps) / decay_steps
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def run_time_to_accuracy(runner, job, steps):
    """Train with the recipe the job names until its target test accuracy, and report.

    ``steps.train_batch(chosen, rate)`` takes the learning rate of each step;
    the report holds the seconds (``None`` if the recipe's epochs end first),
    the epochs, and the wall-clock time when the first step was done.
    """
    recipe = job["recipes"][job.get("recipe", "plain")]
    data, batch = steps.data, recipe["batch_size"]
    count = len(data["y_train"])
    total_steps = -(-count // batch) * recipe["epochs"]
    rng = np.random.default_rng(job["seed"])
    progress = {"step": 0, "first_step_at": None}
    smoothing = recipe.get("label_smoothing", 0.0)

    def train_epoch():
        for chosen in batch_slices(count, batch, rng):
            rate = learning_rate(recipe, progress["step"], total_steps)
            steps.train_batch(chosen, rate, label_smoothing=smoothing)
            progress["step"] += 1
            if progress["step"] == 1:
                progress["first_step_at"] = time.time()
        steps.sync()

    def accuracy():
        chosen = batch_slices(len(data["y_test"]), 256)
        scores = np.concatenate([steps.predict(c) for c in chosen])
        return float(np.mean(np.argmax(scores, axis=-1) == data["y_test"]))

    epoch_seconds = []
    seconds, epochs, reached = time_to_accuracy(
        train_epoch, accuracy, job["target_accuracy"], recipe["epochs"], epoch_seconds
    )
    measurements = {"tta_seconds": seconds, "tta_epochs": epochs, "final_accuracy": reached}
    measurements["epoch_seconds"] = [round(t, 3) for t in epoch_seconds]
    measurements.update(
        first_step_at=progress["first_step_at"], recipe=job.get("recipe", "plain"), seed=job["seed"]
    )
    report(runner, job, measurements)


def run_job(runner, job, steps):
    """Measure one throughput job with a baseline's ``steps`` and report.

    ``steps`` provides ``train_batch(chosen)`` (one step on the training images
    at the indices ``chosen``), ``predict(chosen)`` (class scores of those test
    images, as NumPy) and ``sync()`` (wait for queued work), working on the
    arrays ``steps.data`` holds.
    """
    data = steps.data
    train_count = len(data["y_train"])
    rng = np.random.default_rng(job["seed"])
    batch = job["batch_size"]

    def train_epoch(indices=None):
        for chosen in indices or batch_slices(train_count, batch, rng):
            steps.train_batch(chosen)
        steps.sync()

    measurements = {}
    if "warmup_epochs" in job:
        for _ in range(job["warmup_epochs"]):
            train_epoch()
        train_seconds = time_windows(train_epoch, job["timed_epochs"])
        measurements["train_images_per_s"] = median_rate(train_count, train_seconds)
    else:
        windows = batch_slices(train_count, batch)
        warm, timed = windows[: job["warmup_steps"]], windows[job["warmup_steps"] :]
        train_epoch(warm)
        batches = iter(timed)
        train_seconds = time_windows(lambda: train_epoch([next(batches)]), len(timed))
        measurements["train_images_per_s"] = median_rate(batch, train_seconds)

    test_count = len(data["y_test"])

    def infer_all():
        for chosen in batch_slices(test_count, batch):
            steps.predict(chosen)

    infer_all()
    infer_seconds = time_windows(infer_all, job["inference_repeats"])
    measurements["inference_images_per_s"] = median_rate(test_count, infer_seconds)
    report(runner, job, measurements)

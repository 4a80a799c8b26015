"""Benchmark the zoo's training path against native PyTorch and JAX loops.

Command line (``make bench``, or ``python benchmarks/bench.py``)::

    python benchmarks/bench.py               # every runner, LeNet-5 and AlexNet
    python benchmarks/bench.py --quick       # a few minutes: shorter runs, no 0.98 target
    python benchmarks/bench.py --runners zoo-jax,torch-eager --json results.json

Each run is one model on one runner, started in its own subprocess so that
backends never share a process and each run's peak memory is its own:

- ``zoo-jax``, ``zoo-tensorflow``, ``zoo-torch``: the zoo's training path
  (``zoo.training.compile.compile_model`` then ``model.fit`` on in-memory arrays), the
  one ``zoo-train`` and the notebooks use; ``--compile-options`` tries other
  ``model.compile`` settings on it (``BENCHMARKS.md`` records what they did);
- ``torch-eager``, ``torch-eager-channels-last``, ``torch-compile``,
  ``jax-jit``: hand-written loops in ``benchmarks/`` (in a git checkout; a
  pip-installed zoo has no baselines).

Measured for ``lenet5_modern`` at 28x28, batch 128, on the MNIST test set in
``../shared/data/mnist-t10k`` (first 8,000 images train, last 2,000 test;
random images of the same shape when it is absent): train throughput (images
per second, after a warm-up epoch, median over timed epochs), inference
throughput, and time to accuracy (training seconds, compilation included and
evaluation excluded, until test accuracy reaches 0.98). For ``alexnet`` at
227x227x3, batch 16, on random images: train and inference throughput over a
few steps. Ratios are against ``torch-eager`` measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from zoo._io import write_json
from zoo.accel.cpu import cpu_model

BASELINES_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BASELINES_DIR)
DEFAULT_DATA = os.path.join(REPO_ROOT, "..", "shared", "data", "mnist-t10k")
HEADLINE = "torch-eager"

# runner: (how it runs, the package it needs, extra job settings)
RUNNERS = {
    "zoo-jax": ("zoo", "jax", {}),
    "zoo-tensorflow": ("zoo", "tensorflow", {}),
    "zoo-torch": ("zoo", "torch", {}),
    "torch-eager": ("torch_baseline.py", "torch", {}),
    "torch-eager-channels-last": ("torch_baseline.py", "torch", {"channels_last": True}),
    "torch-compile": ("torch_baseline.py", "torch", {"compile": True}),
    "jax-jit": ("jax_baseline.py", "jax", {}),
    # torch-eager trained with the zoo's recipe: time to accuracy only (its speed is torch-eager's)
    "torch-eager-zoo-recipe": ("torch_baseline.py", "torch", {"recipe": "zoo"}),
}
MODELS = ("lenet5_modern", "alexnet")
# Time to accuracy (LeNet only), MLPerf style: each runner from TTA_SEEDS fresh starts (seeds 0 to
# 9; --tta-seeds), each in its own process; the fastest and slowest are dropped and the rest
# averaged. Ten, not five: whether a seed needs a third epoch moves a 5-seed mean by a third.
TTA_RUNNERS = ("zoo-jax", "zoo-tensorflow", "zoo-torch", "torch-eager", "torch-eager-zoo-recipe")
TTA_ONLY = ("torch-eager-zoo-recipe",)
SAME_RECIPE = "torch-eager-zoo-recipe"  # the plain loop the zoo's time to accuracy is held to
TTA_SEEDS = 10
# The plain recipe of a hand-written loop: Adam at a constant 1e-3, batch 128, until the target.
PLAIN_RECIPE = {"epochs": 25, "batch_size": 128, "learning_rate": 1e-3, "schedule": "constant"}


class BenchError(Exception):
    """Bad input to the benchmark; the message says what to do."""


# --------------------------------------------------------------------------- jobs


def make_jobs(data_file, quick, seed=0):
    """The throughput job of each model: what to train, how long, and what to measure."""
    lenet = {
        "model": "lenet5_modern",
        "data": data_file,
        "batch_size": 128,
        "classes": 10,
        "input_shape": [28, 28, 1],
        "warmup_epochs": 1,
        "timed_epochs": 2 if quick else 5,
        "inference_repeats": 2 if quick else 5,
        "seed": seed,
    }
    alexnet = {
        "model": "alexnet",
        "batch_size": 16,
        "classes": 1000,
        "input_shape": [227, 227, 3],
        "warmup_steps": 1 if quick else 2,
        "timed_steps": 2 if quick else 5,
        "inference_repeats": 1 if quick else 3,
        "seed": seed,
    }
    return {"lenet5_modern": lenet, "alexnet": alexnet}


def make_tta_jobs(data_file, quick, zoo_recipe, seeds=TTA_SEEDS):
    """One time-to-accuracy job per seed: LeNet from fresh weights until 0.98 test accuracy.

    Each job carries both recipes, the plain one and the zoo's (``zoo_recipe``,
    lenet5_modern's :class:`~zoo.registry.Recipe` as a dict); a runner trains
    with the one its ``recipe`` setting names, for at most that recipe's
    epochs. ``seeds``: how many fresh starts (seeds 0, 1, ...); ``quick``: one seed, one epoch.
    """
    recipes = {"plain": dict(PLAIN_RECIPE), "zoo": dict(zoo_recipe)}
    if quick:
        recipes = {name: {**recipe, "epochs": 1} for name, recipe in recipes.items()}
    return [
        {
            "model": "lenet5_modern",
            "mode": "tta",
            "data": data_file,
            "classes": 10,
            "input_shape": [28, 28, 1],
            "target_accuracy": 0.98,
            "recipes": recipes,
            "seed": seed,
        }
        for seed in range(1 if quick else seeds)
    ]


def zoo_recipe(model="lenet5_modern"):
    """``model``'s training recipe from the zoo's registry, as a dict (imports Keras)."""
    import dataclasses

    installed = [b for b in ("torch", "jax", "tensorflow") if importlib.util.find_spec(b)]
    os.environ.setdefault("KERAS_BACKEND", installed[0] if installed else "jax")
    from zoo.models import model_spec

    return dataclasses.asdict(model_spec(model).recipe)


def steps_per_epoch(images, batch_size):
    return -(-images // batch_size)


def write_lenet_data(data_dir, destination):
    """Save the train/test split the runs share as one ``.npz``; returns its description.

    With ``data_dir`` ``None``, random images and labels of the same shape
    stand in, and time to accuracy is not measured.
    """
    if data_dir is not None:
        from zoo.data import DataError, load_dataset

        if not os.path.isdir(data_dir):
            raise BenchError(
                f"--data: folder {data_dir} does not exist; give a folder of MNIST IDX files "
                "such as ../shared/data/mnist-t10k, or leave --data out for random images."
            )
        try:
            data = load_dataset(data_dir)
        except DataError as error:
            raise BenchError(f"--data: {error}") from None
        if data.input_shape != (28, 28, 1):
            raise BenchError(
                f"--data: {data_dir} holds {data.input_shape} images; the benchmark needs "
                "MNIST's 28x28x1 (a folder of MNIST IDX files such as mnist-t10k)."
            )
        arrays = (data.train.images, data.train.labels, data.test.images, data.test.labels)
        source = f"{os.path.abspath(data_dir)} ({len(data.train)} train, {len(data.test)} test)"
        real = True
    else:
        rng = np.random.default_rng(0)
        arrays = (
            rng.random((8000, 28, 28, 1), dtype=np.float32),
            rng.integers(0, 10, 8000),
            rng.random((2000, 28, 28, 1), dtype=np.float32),
            rng.integers(0, 10, 2000),
        )
        source = "random 28x28x1 images (the MNIST folder was not found)"
        real = False
    np.savez(
        destination, **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays, strict=True))
    )
    return source, real


# --------------------------------------------------------------------------- shared by all runners


def load_arrays(job):
    """The job's arrays: the LeNet split from its ``.npz``, or random AlexNet-sized images."""
    if "data" in job:
        with np.load(job["data"]) as data:
            return {key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    rng = np.random.default_rng(job["seed"])
    count = job["batch_size"] * (job["warmup_steps"] + job["timed_steps"])
    x = rng.random((count, *job["input_shape"]), dtype=np.float32)
    y = rng.integers(0, job["classes"], size=count)
    return {"x_train": x, "y_train": y, "x_test": x, "y_test": y}


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB.

    On Linux, ``VmHWM`` from ``/proc/self/status``: ``getrusage``'s
    ``ru_maxrss`` survives ``exec``, so a run started by this driver would
    report at least the driver's own memory when it started the run.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024  # kB
    except (OSError, StopIteration):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def report(runner, job, measurements):
    """Print the one JSON line the driver reads from a run."""
    result = {"runner": runner, "model": job["model"], **measurements}
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("ZOO-BENCH " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- the zoo's runner


def _epoch_clock(keras, accuracy=None, target=None):
    """A callback that times every epoch; with ``accuracy``, stops at ``target``.

    It has no per-step hook: Keras waits for each step's result whenever a
    callback watches the end of a step, which would slow JAX and PyTorch down.
    """

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.spent, self.reached, self.accuracy = [], 0.0, None, 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)
            self.spent += self.seconds[-1]
            if accuracy is not None:
                self.accuracy = accuracy()
                if self.accuracy >= target:
                    self.reached = self.spent
                    self.model.stop_training = True

    return EpochClock()


def _step_clock(keras):
    """A callback that times every training step, waiting for each one to finish."""

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # waits for the step on asynchronous backends
            self.seconds.append(time.perf_counter() - self.start)

    return StepClock()


def run_zoo_job(job):
    """Measure one job through Keras in this process; KERAS_BACKEND is already set.

    As ``zoo-train`` does, Keras is imported without the packages a run does
    not need, and TensorFlow is kept out of a JAX or PyTorch run.
    """
    from zoo.accel.runtime import import_keras_lean, tensorflow_left_alone

    keras = import_keras_lean()

    with tensorflow_left_alone(keras.backend.backend()):
        if job.get("mode") == "tta":
            measurements = _zoo_time_to_accuracy(keras, job)
        else:
            measurements = _zoo_throughput(keras, job)
    report("zoo-" + keras.backend.backend(), job, measurements)


def _zoo_model(job, recipe, total_steps):
    from zoo.accel import accelerate
    from zoo.models import get_model
    from zoo.training.compile import compile_model

    model = get_model(job["model"], input_shape=tuple(job["input_shape"]), classes=job["classes"])
    compile_model(
        model,
        recipe["optimizer"],
        recipe["learning_rate"],
        schedule=recipe["schedule"],
        total_steps=total_steps,
        label_smoothing=recipe.get("label_smoothing", 0.0),
        **job.get("compile_options", {}),
    )
    accelerate(model)  # as zoo-train does after compile (fused Adam on PyTorch)
    return model


def _zoo_time_to_accuracy(keras, job):
    """Train with the zoo's recipe from fresh weights until the target test accuracy."""
    from zoo.training.compile import wants_one_hot

    arrays = load_arrays(job)
    x, y, x_test, y_test = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    recipe = job["recipes"]["zoo"]
    batch, epochs = recipe["batch_size"], recipe["epochs"]
    keras.utils.set_random_seed(job["seed"])
    model = _zoo_model(
        job, {"optimizer": "adam", **recipe}, steps_per_epoch(len(y), batch) * epochs
    )

    def accuracy():
        scores = model.predict(x_test, batch_size=256, verbose=0)
        return float(np.mean(np.argmax(scores, axis=-1) == y_test))

    clock = _epoch_clock(keras, accuracy=accuracy, target=job["target_accuracy"])
    if wants_one_hot(model):  # a label-smoothed loss
        y = np.eye(job["classes"], dtype="float32")[y]
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[clock, _first_step()])
    return {
        "tta_seconds": clock.reached,
        "tta_epochs": len(clock.seconds),
        "epoch_seconds": [round(t, 3) for t in clock.seconds],  # the first pays for tracing
        "final_accuracy": clock.accuracy,
        "first_step_at": FIRST_STEP["at"],
        "recipe": "zoo",
        "seed": job["seed"],
    }


def _zoo_throughput(keras, job):
    """Train and inference images per second at the job's batch size (Adam, constant 1e-3)."""
    arrays = load_arrays(job)
    x, y, x_test = arrays["x_train"], arrays["y_train"], arrays["x_test"]
    batch = job["batch_size"]
    keras.utils.set_random_seed(job["seed"])
    model = _zoo_model(job, {"optimizer": "adam", **PLAIN_RECIPE}, None)
    if "warmup_epochs" in job:
        clock = _epoch_clock(keras)
        epochs = job["warmup_epochs"] + job["timed_epochs"]
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[clock])
        timed, images = clock.seconds[job["warmup_epochs"] :], len(y)
    else:
        clock = _step_clock(keras)
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
        timed, images = clock.seconds[job["warmup_steps"] :], batch
    seconds = []
    for _ in range(job["inference_repeats"] + 1):  # the first call compiles
        start = time.perf_counter()
        model.predict(x_test, batch_size=batch, verbose=0)
        seconds.append(time.perf_counter() - start)
    return {
        "train_images_per_s": images / statistics.median(timed),
        "inference_images_per_s": len(x_test) / statistics.median(seconds[1:]),
        "settings": {
            "jit_compile": str(model.jit_compile),
            "steps_per_execution": model.steps_per_execution,
        },
    }


FIRST_STEP = {"at": None}  # wall-clock time.time() when the second training step began


def _first_step():
    """A callback noting when step 2 begins: step 1, compilation included, is then done.

    Once it has noted that, it stops listening to batches: the zoo's ``fit`` calls a
    per-batch hook only while some callback overrides it (``zoo.accel.batch_hooks``), and
    Keras's call of that hook at every step (a hand-off to a thread on JAX and PyTorch)
    made the zoo's epochs measurably slower than the same run without this callback.
    """
    import types

    import keras

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1 and FIRST_STEP["at"] is None:
                FIRST_STEP["at"] = time.time()
            if batch >= 1:  # heard no more: Keras's own do-nothing hook on this instance
                self.on_train_batch_begin = types.MethodType(
                    keras.callbacks.Callback.on_train_batch_begin, self
                )

    return FirstStep()


# --------------------------------------------------------------------------- the driver


def _command(runner, job):
    """The subprocess command and environment of one run."""
    kind, package, extra = RUNNERS[runner]
    job = {**job, **extra}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    if kind == "zoo":
        env["KERAS_BACKEND"] = package
        return [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)], env
    return [sys.executable, os.path.join(BASELINES_DIR, kind), json.dumps(job)], env


def run_one(runner, job, timeout):
    """Run one job in a fresh subprocess; returns its measurements or an ``error``.

    A run that reports when its first training step was done (``first_step_at``)
    gets ``startup_seconds``: from starting its process to that moment, imports,
    data loading, building and compiling included.
    """
    command, env = _command(runner, job)
    launched = time.time()
    start = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"runner": runner, "model": job["model"], "error": f"timed out after {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("ZOO-BENCH ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"runner": runner, "model": job["model"], "error": f"exit {done.returncode}: {tail}"}
    result = json.loads(lines[-1][len("ZOO-BENCH ") :])
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    if result.get("first_step_at"):
        result["startup_seconds"] = round(result.pop("first_step_at") - launched, 2)
    return result


def available(runner):
    """Why ``runner`` cannot run here, or ``None`` when it can."""
    kind, package, _ = RUNNERS[runner]
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed"
    if kind != "zoo" and not os.path.isfile(os.path.join(BASELINES_DIR, kind)):
        return f"baseline {kind} not found (it lives in benchmarks/ of a git checkout)"
    return None


def mlperf_mean(seconds):
    """MLPerf's score of several seeds: drop the fastest and the slowest, average the rest.

    A run that never reached the target counts as slowest; if one of the kept
    runs did not reach it, there is no score (``None``). Fewer than 3 runs:
    the plain mean.
    """
    ordered = sorted(seconds, key=lambda t: math.inf if t is None else t)
    kept = ordered[1:-1] if len(ordered) >= 3 else ordered
    if not kept or any(t is None for t in kept):
        return None
    return sum(kept) / len(kept)


def summarise_tta(runs):
    """One row per runner: each seed's seconds and epochs, the MLPerf mean, the ratio."""
    grouped = {}
    for run in runs:
        grouped.setdefault(run["runner"], []).append(run)
    rows = []
    for runner, group in grouped.items():
        good = sorted((r for r in group if "error" not in r), key=lambda r: r["seed"])
        row = {"runner": runner, "model": group[0]["model"], "seeds": [r["seed"] for r in good]}
        row["recipe"] = RUNNERS[runner][2].get(
            "recipe", "zoo" if runner.startswith("zoo") else "plain"
        )
        row["seconds"] = [r["tta_seconds"] and round(r["tta_seconds"], 2) for r in good]
        row["epochs"] = [r["tta_epochs"] for r in good]
        row["final_accuracy"] = [round(r["final_accuracy"], 4) for r in good]
        row["mean_seconds"] = mlperf_mean(row["seconds"]) if good else None
        startups = [r["startup_seconds"] for r in good if r.get("startup_seconds")]
        row["startup_seconds"] = round(statistics.median(startups), 1) if startups else None
        row["peak_rss_mb"] = (
            round(statistics.median(r["peak_rss_mb"] for r in good), 1) if good else None
        )
        row["errors"] = [r["error"] for r in group if "error" in r]
        rows.append(row)
    plain = next((r["mean_seconds"] for r in rows if r["runner"] == HEADLINE), None)
    for row in rows:
        if plain and row["mean_seconds"]:
            row["ratio"] = round(row["mean_seconds"] / plain, 2)
    same = next((r for r in rows if r["runner"] == SAME_RECIPE), None)
    for row in rows:
        if same is not None and row["recipe"] == "zoo" and row is not same:
            _compare_with_same_recipe(row, same)
    return rows


def _compare_with_same_recipe(row, same):
    """Add ``row``'s ratios to the plain loop running the zoo's recipe (``same``'s row):
    of the MLPerf means (the target's), and of the summed seconds over the seeds where
    both stopped after as many epochs (each runner's epochs per seed repeat from run to
    run, so this one shows the speed apart from how lucky each backend's draws were)."""
    if row["mean_seconds"] and same["mean_seconds"]:
        row["same_recipe_ratio"] = round(row["mean_seconds"] / same["mean_seconds"], 2)
    theirs = {
        seed: (seconds, epochs)
        for seed, seconds, epochs in zip(
            same["seeds"], same["seconds"], same["epochs"], strict=True
        )
        if seconds is not None
    }
    ours, base = 0.0, 0.0
    row["equal_epoch_seeds"] = []
    for seed, seconds, epochs in zip(row["seeds"], row["seconds"], row["epochs"], strict=True):
        if seconds is not None and seed in theirs and theirs[seed][1] == epochs:
            ours, base = ours + seconds, base + theirs[seed][0]
            row["equal_epoch_seeds"].append(seed)
    if base:
        row["equal_epochs_ratio"] = round(ours / base, 2)


def _equal_epochs_cell(row):
    """``1.17 (3 seeds)``, or ``—`` where no seed stopped at the same epoch as the plain loop."""
    if "equal_epochs_ratio" not in row:
        return "—"
    count = len(row["equal_epoch_seeds"])
    return f"{row['equal_epochs_ratio']:.2f} ({count} seed{'s' if count > 1 else ''})"


def tta_table(rows):
    """Time to 0.98 per runner: seeds, MLPerf mean, ratio to torch-eager's plain recipe."""
    lines = [
        "| runner | recipe | seconds per seed | epochs per seed | mean but fastest and slowest (s) "
        "| × torch-eager | start-up to first step (s) | peak RSS (MiB) "
        "| × the same recipe in torch-eager | the same, on seeds of equal epochs |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        seconds = ", ".join("—" if t is None else f"{t:.1f}" for t in row["seconds"])
        epochs = ", ".join(str(e) for e in row["epochs"])
        if row["errors"]:
            seconds += f" ({len(row['errors'])} failed: {row['errors'][0]})"
        lines.append(
            f"| {row['runner']} | {row['recipe']} | {seconds} | {epochs} "
            f"| {_cell(row, 'mean_seconds', 1)} | {_cell(row, 'ratio', 2)} "
            f"| {_cell(row, 'startup_seconds', 1)} | {_cell(row, 'peak_rss_mb', 0)} "
            f"| {_cell(row, 'same_recipe_ratio', 2)} | {_equal_epochs_cell(row)} |"
        )
    return "\n".join(lines)


def add_ratios(results, runs):
    """Each throughput's ratio to the same model's ``torch-eager`` in the same round, as the
    median over rounds (``train_ratio``) and its range (``train_ratio_range``)."""
    eager = {
        (r["model"], r.get("round", 0)): r
        for r in runs
        if r["runner"] == HEADLINE and "error" not in r
    }
    for result in results:
        if "error" in result:
            continue
        mine = [
            r
            for r in runs
            if (r["model"], r["runner"]) == (result["model"], result["runner"]) and "error" not in r
        ]
        for key in ("train_images_per_s", "inference_images_per_s"):
            ratios = [
                r[key] / eager[(r["model"], r.get("round", 0))][key]
                for r in mine
                if (r["model"], r.get("round", 0)) in eager
            ]
            if ratios:
                name = key.replace("images_per_s", "ratio")
                result[name] = round(statistics.median(ratios), 2)
                result[f"{name}_range"] = [round(min(ratios), 2), round(max(ratios), 2)]


def _cell(result, key, digits=None):
    value = result.get(key)
    if value is None:
        return "—"
    if not isinstance(value, float):
        return str(value)
    if digits is None:  # throughputs: whole numbers, one decimal below 100
        digits = 1 if value < 100 else 0
    return f"{value:,.{digits}f}"


def _ratio_cell(result, key):
    """``0.93 (0.88–1.02)``: the median ratio over rounds and its range; ⚠ if the row is noisy."""
    text = _cell(result, key, 2)
    low_high = result.get(f"{key}_range")
    if low_high and low_high[0] != low_high[1]:
        text += f" ({low_high[0]:.2f}–{low_high[1]:.2f})"
    figure = key.replace("ratio", "images_per_s")
    return text + (" ⚠" if figure in result.get("noisy", ()) else "")


def markdown_table(results):
    """One row per (model, runner): median throughputs over the rounds, the median ratio to
    torch-eager in the same round with its range, peak memory; ⚠ marks a throughput whose
    range over the rounds is wider than ``NOISY`` of its median."""
    header = (
        "| model | runner | train img/s | × torch-eager | inference img/s | × torch-eager "
        "| peak RSS (MiB) | rounds |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    rows = [header]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['model']} | {r['runner']} | {r['error']} | | | | | |")
            continue
        rows.append(
            f"| {r['model']} | {r['runner']} | {_cell(r, 'train_images_per_s')} "
            f"| {_ratio_cell(r, 'train_ratio')} | {_cell(r, 'inference_images_per_s')} "
            f"| {_ratio_cell(r, 'inference_ratio')} | {_cell(r, 'peak_rss_mb', 0)} "
            f"| {r.get('repeats', 1)} |"
        )
    noisy = [f"{r['model']} on {r['runner']}" for r in results if r.get("noisy")]
    if noisy:
        rows.append(
            f"\n⚠ range over the rounds wider than {NOISY:.0%} of the median: "
            + ", ".join(noisy)
            + "; rerun on a quieter machine or with more --repeats."
        )
    return "\n".join(rows)


def machine_description():
    import importlib.metadata

    versions = {}
    for package in ("keras", "jax", "tensorflow", "torch", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
    }


def build_parser():
    parser = argparse.ArgumentParser(
        prog="benchmarks/bench.py",
        description="Benchmark the zoo's Keras training path on every backend against native "
        "PyTorch and JAX loops (each run in its own subprocess).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few-minute version: fewer timed epochs and steps, and one epoch of training "
        "toward the accuracy target",
    )
    parser.add_argument(
        "--runners",
        default=",".join(RUNNERS),
        help="comma-separated runners: " + ", ".join(RUNNERS),
    )
    parser.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS)
    )
    parser.add_argument(
        "--data",
        default=None,
        help="folder of MNIST IDX files for LeNet (default: ../shared/data/mnist-t10k beside "
        "the repository; random images stand in when that is absent)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds: every job runs once per round, the rounds interleaved; the table gives "
        "the median and range over them",
    )
    parser.add_argument(
        "--order-seed",
        type=int,
        default=0,
        help="each round runs the runners in an order drawn from this seed and the round's "
        "number (the same seed: the same orders); --order-seed -1 keeps the listed order",
    )
    parser.add_argument(
        "--tta-seeds",
        type=int,
        default=TTA_SEEDS,
        help="fresh starts (seeds 0, 1, ...) of each runner toward the accuracy target; the "
        "fastest and slowest are dropped and the rest averaged (--quick: one)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument(
        "--compile-options",
        default="{}",
        metavar="JSON",
        help='extra model.compile arguments for the zoo runners, e.g. {"jit_compile": false}',
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per run")
    parser.add_argument("--worker", metavar="JOB", help=argparse.SUPPRESS)
    return parser


def _choices(text, known, flag):
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in known]
    if unknown or not chosen:
        raise BenchError(
            f"{flag}: unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(known)}."
        )
    return chosen


def _check_options(options):
    runners = _choices(options.runners, RUNNERS, "--runners")
    models = _choices(options.models, MODELS, "--models")
    if options.repeats < 1:
        raise BenchError(f"--repeats must be at least 1, got {options.repeats}.")
    if options.tta_seeds < 1:
        raise BenchError(f"--tta-seeds must be at least 1, got {options.tta_seeds}.")
    if options.order_seed < -1:
        raise BenchError(
            f"--order-seed must be -1 (the listed order) or more, got {options.order_seed}."
        )
    options.order_seed = None if options.order_seed == -1 else options.order_seed
    try:
        compile_options = json.loads(options.compile_options)
    except json.JSONDecodeError as error:
        raise BenchError(
            f"--compile-options is not valid JSON ({error}); pass an object."
        ) from None
    if not isinstance(compile_options, dict):
        raise BenchError(
            "--compile-options must be a JSON object such as '{\"jit_compile\": false}'."
        )
    options.compile_options = compile_options
    if options.json:
        folder = os.path.dirname(os.path.abspath(options.json))
        if not os.path.isdir(folder):
            raise BenchError(f"--json: folder {folder} does not exist; create it or pick another.")
    return runners, models


NOISY = 0.10  # a figure whose range over rounds is wider than this share of its median is flagged
FIGURES = ("train_images_per_s", "inference_images_per_s", "peak_rss_mb")


def summarise(runs):
    """Median and range (min, max) of each figure over the rounds of one (model, runner).

    ``noisy`` names the throughputs whose range is wider than ``NOISY`` of their median:
    one round's figure there says little, and a target met by such a row is not yet met.
    """
    merged = {}
    for run in runs:
        merged.setdefault((run["model"], run["runner"]), []).append(run)
    results = []
    for group in merged.values():
        good = [r for r in group if "error" not in r]
        if not good:
            results.append(group[-1])
            continue
        result = {k: v for k, v in good[-1].items() if k != "round"}
        for key in FIGURES:
            values = [r[key] for r in good]
            result[key] = round(statistics.median(values), 1)
            result[f"{key}_range"] = [round(min(values), 1), round(max(values), 1)]
        result["noisy"] = [
            key for key in FIGURES[:2] if spread(result[f"{key}_range"], result[key]) > NOISY
        ]
        result["repeats"] = len(good)
        results.append(result)
    return results


def spread(value_range, median):
    """(max - min) / median: 0.1 means the rounds spread over a tenth of the median."""
    low, high = value_range
    return (high - low) / median if median else math.inf


def round_order(runners, round_index, order_seed):
    """The order of the runners in one round: as listed when ``order_seed`` is None, else a
    permutation drawn from ``(order_seed, round_index)``, so a second run with the same seed
    runs every round in the same order and two runs' rows are comparable."""
    runners = list(runners)
    if order_seed is not None:
        random.Random(order_seed * 1_000_003 + round_index).shuffle(runners)
    return runners


def benchmark(options):
    """Run every (model, runner) job, interleaved over the repeats; returns the report dict."""
    runners, models = _check_options(options)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    skipped = {r: why for r in runners if (why := available(r))}
    for runner, why in skipped.items():
        say(f"skipping {runner}: {why}")
    runners = [r for r in runners if r not in skipped]
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as folder:
        data_file = os.path.join(folder, "lenet.npz")
        data_dir = options.data or (DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) else None)
        source, real = write_lenet_data(data_dir, data_file)
        jobs = make_jobs(data_file, options.quick)
        for job in jobs.values():
            job["compile_options"] = options.compile_options  # read by the zoo runners only
        runs, orders = [], []
        throughput_runners = [r for r in runners if r not in TTA_ONLY]
        for repeat in range(options.repeats):
            order = round_order(throughput_runners, repeat, options.order_seed)
            orders.append(order)
            for model in models:
                for runner in order:
                    say(f"[{repeat + 1}/{options.repeats}] {model} on {runner} ...")
                    runs.append({**run_one(runner, jobs[model], options.timeout), "round": repeat})
        tta_runs, tta_jobs = [], []
        tta_runners = [r for r in runners if r in TTA_RUNNERS]
        if real and "lenet5_modern" in models and tta_runners:  # random labels: nothing to reach
            tta_jobs = make_tta_jobs(data_file, options.quick, zoo_recipe(), options.tta_seeds)
            for job in tta_jobs:
                job["compile_options"] = options.compile_options
                for runner in tta_runners:
                    say(f"time to accuracy, seed {job['seed']}: {runner} ...")
                    tta_runs.append(run_one(runner, job, options.timeout))
    results = summarise(runs)
    add_ratios(results, runs)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench.py " + " ".join(sys.argv[1:]),
        "quick": options.quick,
        "machine": machine_description(),
        "lenet_data": source,
        "jobs": {m: {k: v for k, v in jobs[m].items() if k != "data"} for m in models},
        "tta_recipes": tta_jobs[0]["recipes"] if tta_jobs else None,
        "skipped": skipped,
        "round_orders": orders,
        "results": results,
        "runs": runs,
        "time_to_accuracy": summarise_tta(tta_runs),
        "tta_runs": tta_runs,
    }


def main(argv=None):
    options = build_parser().parse_args(argv)
    if options.worker:
        run_zoo_job(json.loads(options.worker))
        return 0
    try:
        report_data = benchmark(options)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 2
    print(markdown_table(report_data["results"]))
    if report_data["time_to_accuracy"]:
        print("\n" + tta_table(report_data["time_to_accuracy"]))
    if options.json:
        write_json(options.json, report_data)
    failed = [r for r in report_data["results"] + report_data["tta_runs"] if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Which training recipe reaches 0.98 test accuracy in the fewest epochs, seed by seed.

Trains the zoo's ``lenet5_modern`` (or, with ``--model alexnet``, AlexNet on the
digits resized to ``--image-size``, 67 by default: AlexNet's smallest input) on the
benchmark's split (the first 8,000 images of ``../shared/data/mnist-t10k`` to
train, the last 2,000 to test),
on the backend ``KERAS_BACKEND`` names, once per seed and recipe, and prints
the first epoch at which test accuracy reached the target. Epochs, not
seconds, are what this measures, so it may run beside other work::

    KERAS_BACKEND=tensorflow python benchmarks/recipe_search.py \\
        --recipe 64,3e-3,5,warmup-cosine --recipe 64,4e-3,5,warmup-cosine --seeds 0-4

A recipe is ``batch,peak_rate,epochs,schedule[,label_smoothing]`` with Adam; each seed starts
from ``keras.utils.set_random_seed(seed)`` in this one process, so the
starting weights match a fresh ``bench.py`` run of that seed only roughly.
``BENCHMARKS.md`` quotes its tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the benchmark's split, model and recipe code)


def parse_recipe(text):
    """``"64,3e-3,5,warmup-cosine[,0.1]"`` -> the recipe dict ``bench`` trains with."""
    batch, rate, epochs, schedule, *smoothing = text.split(",")
    return {
        "optimizer": "adam",
        "batch_size": int(batch),
        "learning_rate": float(rate),
        "epochs": int(epochs),
        "schedule": schedule,
        "label_smoothing": float(smoothing[0]) if smoothing else 0.0,
    }


def parse_seeds(text):
    """``"0-4"`` or ``"0,2,5"`` -> a list of seeds."""
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(seed) for seed in text.split(",")]


def accuracies_per_epoch(keras, arrays, recipe, seed, model_name="lenet5_modern", shape=None):
    """Train one seed for the recipe's epochs; returns test accuracy after each epoch.

    ``shape``: the model's input shape, ``(28, 28, 1)`` unless given; ``arrays`` must hold
    images of that shape already.
    """
    from zoo.training.compile import wants_one_hot

    x, y, x_test, y_test = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    keras.utils.set_random_seed(seed)
    shape = list(shape or (28, 28, 1))
    job = {"model": model_name, "input_shape": shape, "classes": 10}
    total_steps = bench.steps_per_epoch(len(y), recipe["batch_size"]) * recipe["epochs"]
    model = bench._zoo_model(job, recipe, total_steps)
    if wants_one_hot(model):  # a label-smoothed loss
        y = np.eye(job["classes"], dtype="float32")[y]
    accuracies = []

    class Evaluate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            scores = model.predict(x_test, batch_size=256, verbose=0)
            accuracies.append(float(np.mean(np.argmax(scores, axis=-1) == y_test)))

    model.fit(
        x,
        y,
        batch_size=recipe["batch_size"],
        epochs=recipe["epochs"],
        verbose=0,
        callbacks=[Evaluate()],
    )
    return accuracies


def first_epoch_at(accuracies, target):
    """The 1-based epoch at which ``target`` was first reached, or ``None``."""
    return next((i + 1 for i, a in enumerate(accuracies) if a >= target), None)


def model_input_shape(model, size=None):
    """``(size, size, channels)``: LeNet takes one grey channel, AlexNet three."""
    if model == "alexnet":
        return (size or 67, size or 67, 3)
    return (size or 28, size or 28, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipe",
        action="append",
        required=True,
        type=parse_recipe,
        help="batch,peak_rate,epochs,schedule[,label_smoothing] (Adam); repeat to compare",
    )
    parser.add_argument("--seeds", default="0-4", type=parse_seeds)
    parser.add_argument("--target", default=0.98, type=float)
    parser.add_argument("--data", default=bench.DEFAULT_DATA)
    parser.add_argument("--model", default="lenet5_modern", choices=["lenet5_modern", "alexnet"])
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="resize the images to this square size (AlexNet: at least 67; default: 28 for "
        "LeNet, 67 for AlexNet, as three grey channels)",
    )
    options = parser.parse_args(argv)
    import keras

    from zoo.accel.runtime import tensorflow_left_alone

    backend = keras.backend.backend()
    with tempfile.TemporaryDirectory(prefix="zoo-recipe-") as folder:
        data_file = os.path.join(folder, "lenet.npz")
        try:
            bench.write_lenet_data(options.data, data_file)
        except bench.BenchError as error:
            sys.exit(f"recipe_search: {error}")
        arrays = bench.load_arrays({"data": data_file})
    shape = model_input_shape(options.model, options.image_size)
    if shape != (28, 28, 1):
        from zoo.data.images import prepare_arrays

        for split in ("x_train", "x_test"):
            arrays[split] = prepare_arrays(arrays[split], shape)
    with tensorflow_left_alone(backend):
        for recipe in options.recipe:
            for seed in options.seeds:
                accuracies = accuracies_per_epoch(keras, arrays, recipe, seed, options.model, shape)
                row = {
                    "backend": backend,
                    "model": options.model,
                    "image_size": shape[0],
                    **recipe,
                    "seed": seed,
                    "first_epoch": first_epoch_at(accuracies, options.target),
                    "accuracies": [round(a, 4) for a in accuracies],
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

"""TensorFlow: Keras's own `fit` on arrays against the zoo's lean input (zoo.accel.tf_input).

    python benchmarks/tf_input_ab.py [--rounds 10] [--images 8000]

Builds two LeNet-5 (modern) models from one seed, compiled as `zoo-train` compiles
them (Adam, 1e-3), and trains them one epoch at a time at batch 128 on random
MNIST-shaped images, alternating: one through Keras's own `fit` on the arrays,
one through the zoo's. Prints each side's images per second (median and range
over the rounds), every round's figure, and the ratio of the medians. A
TensorFlow-only tool: the zoo's lean input exists only there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as zoo-train sets it
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def build(keras, seed):
    """LeNet-5 (modern), compiled and given the zoo's speed-ups, as the benchmark does."""
    import zoo
    from zoo.accel import accelerate
    from zoo.training.compile import compile_model

    keras.utils.set_random_seed(seed)
    model = zoo.get_model("lenet5_modern", input_shape=(28, 28, 1), classes=10)
    compile_model(model, "adam", 1e-3)
    accelerate(model)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="epochs of each, alternating")
    parser.add_argument("--images", type=int, default=8000)
    options = parser.parse_args(argv)
    from zoo.accel.runtime import import_keras_lean

    keras = import_keras_lean()
    rng = np.random.default_rng(0)
    x = rng.random((options.images, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, options.images)
    keras_model, lean_model = build(keras, 1), build(keras, 1)
    sides = {
        "Keras's fit": lambda: keras.Model.fit(keras_model, x, y, batch_size=128, verbose=0),
        "lean input": lambda: lean_model.fit(x, y, batch_size=128, verbose=0),
    }
    rates = {name: [] for name in sides}
    for fit in sides.values():
        fit()  # traces and compiles
    for _ in range(options.rounds):
        for name, fit in sides.items():
            start = time.perf_counter()
            fit()
            rates[name].append(len(x) / (time.perf_counter() - start))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        rounds = ", ".join(f"{value:,.0f}" for value in values)
        print(
            f"{name}: {medians[name]:,.0f} images/s ({min(values):,.0f} to "
            f"{max(values):,.0f}); rounds: {rounds}"
        )
    ratio = medians["lean input"] / medians["Keras's fit"]
    print(f"ratio of the medians: {ratio:.2f}")


if __name__ == "__main__":
    main()

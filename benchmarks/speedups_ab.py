"""Each backend speed-up on or off, side by side in one process: training images per second.

    KERAS_BACKEND=jax python benchmarks/speedups_ab.py               # LeNet-5 (modern)
    KERAS_BACKEND=torch python benchmarks/speedups_ab.py --model alexnet

Builds the model twice: as the zoo builds it (``zoo._builder.apply_backend_speedups``:
pooling by reshape on JAX, channels-last pooling and fused Adam on PyTorch) and with those
instance overrides removed (Keras's own code), then alternates one epoch of each on random
images and prints the median images per second of each. The A/B figures in BENCHMARKS.md
("Where the time went") come from runs like this one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def build(name, shape, speedups):
    import zoo
    from zoo.recipe import compile_model

    model = compile_model(zoo.get_model(name, input_shape=shape), "adam", 1e-3)
    if not speedups:  # back to Keras's own methods on every layer and the optimizer
        for layer in model.layers:
            vars(layer).pop("call", None)
        vars(model.optimizer).pop("_parallel_update_step", None)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet5_modern", choices=["lenet5_modern", "alexnet"])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    import keras

    from zoo.recipe import tensorflow_left_alone

    lenet = args.model == "lenet5_modern"
    shape, batch, count = ((28, 28, 1), 128, 8000) if lenet else ((227, 227, 3), 16, 128)
    rng = np.random.default_rng(0)
    x = rng.random((count, *shape), dtype=np.float32)
    y = rng.integers(0, 10 if lenet else 1000, count)
    with tensorflow_left_alone(keras.backend.backend()):
        models = {"keras": build(args.model, shape, False), "zoo": build(args.model, shape, True)}
        for model in models.values():
            model.fit(x[: batch * 2], y[: batch * 2], batch_size=batch, verbose=0)
        rates = {name: [] for name in models}
        for _ in range(args.rounds):
            for name, model in models.items():
                start = time.perf_counter()
                model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
                rates[name].append(count / (time.perf_counter() - start))
    for name, values in rates.items():
        print(
            f"{keras.backend.backend()} {args.model} {name}: {statistics.median(values):,.1f} img/s"
        )


if __name__ == "__main__":
    main()

"""JAX only: where LeNet-5's forward pass spends its time, and what `zoo.accel.jax_predict` changes.

    python benchmarks/jax_inference_ab.py

In one process, on random MNIST-shaped images at batch 128, each figure the median
milliseconds of 30 calls (after a warm-up) in each of 3 interleaved rounds, then the
median over the rounds:

1. the zoo's LeNet-5 cut after each layer, jitted as the training step traces it;
2. its first convolution (a sum of taps) and a 2x2 max pool, with the training step's
   reshape pool or Keras's `reduce_window` pool, compiled with XLA's defaults or with
   library fusions limited to matrix products (`zoo.accel.jax_predict.COMPILER_OPTIONS`);
3. the whole model, forward pass and gradient of the loss (forward and backward),
   for the same four combinations.

BENCHMARKS.md ("Issue 32, 2026-12-06, JAX inference") quotes it.
"""

from __future__ import annotations

import os
import statistics
import sys

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _harness import median_ms  # noqa: E402 (after the backend is chosen)

BATCH = 128
ROUNDS = 3


def interleaved(functions):
    """``{name: median over ROUNDS of median_ms}``, the functions taking turns each round."""
    rounds = {name: [] for name in functions}
    for _ in range(ROUNDS):
        for name, function in functions.items():
            rounds[name].append(median_ms(function, 30))
    return {name: statistics.median(values) for name, values in rounds.items()}


def main():
    from zoo.accel.runtime import import_keras_lean

    import_keras_lean()  # as zoo-train starts: XLA's lean flag and the compilation cache
    import jax
    import numpy as np

    import zoo
    from zoo.accel.jax_pooling import keras_pooling
    from zoo.accel.jax_predict import COMPILER_OPTIONS

    rng = np.random.default_rng(0)
    x = jax.device_put(rng.random((BATCH, 28, 28, 1), dtype="float32"))
    y = jax.device_put(rng.integers(0, 10, BATCH))
    model = zoo.get_model("lenet5_modern")
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    trainable = [v.value for v in model.trainable_variables]

    def block(function):
        return lambda: jax.block_until_ready(function())

    def through(count):
        def run(x):
            for layer in layers[:count]:
                x = layer(x)
            return x

        jitted = jax.jit(run)
        return block(lambda: jitted(x))

    cut = interleaved({layers[k - 1].name: through(k) for k in range(1, len(layers) + 1)})
    print("| through | " + " | ".join(cut) + " |")
    print("| --- |" + " ---: |" * len(cut))
    print("| ms | " + " | ".join(f"{value:.2f}" for value in cut.values()) + " |\n")

    variants = {
        ("reshape pool", "XLA's default"): (False, None),
        ("reduce_window pool", "XLA's default"): (True, None),
        ("reshape pool", "matrix products only"): (False, COMPILER_OPTIONS),
        ("reduce_window pool", "matrix products only"): (True, COMPILER_OPTIONS),
    }

    def traced(function, keras_pool):
        def run(*args):
            if keras_pool:
                with keras_pooling():
                    return function(*args)
            return function(*args)

        return run

    def first_layers(h):
        return layers[1](layers[0](h))

    def outputs(weights, h):
        return model.stateless_call(weights, [], h)[0]

    def loss(weights, h):
        logits = outputs(weights, h)
        return -jax.numpy.mean(jax.nn.log_softmax(logits)[jax.numpy.arange(BATCH), y])

    pair, forward, gradient = {}, {}, {}
    for key, (keras_pool, options) in variants.items():
        pair[key] = jax.jit(traced(first_layers, keras_pool), compiler_options=options)
        forward[key] = jax.jit(traced(outputs, keras_pool), compiler_options=options)
        gradient[key] = jax.jit(jax.grad(traced(loss, keras_pool)), compiler_options=options)
    timed = {}
    for key in variants:
        timed[("pair", *key)] = block(lambda f=pair[key]: f(x))
        timed[("forward", *key)] = block(lambda f=forward[key]: f(trainable, x))
        timed[("gradient", *key)] = block(lambda f=gradient[key]: f(trainable, x))
    times = interleaved(timed)
    print("| pooling | library fusions | conv1 and pool1 | forward pass | gradient of the loss |")
    print("| --- | --- | ---: | ---: | ---: |")
    for pool, fusions in variants:
        row = [times[(part, pool, fusions)] for part in ("pair", "forward", "gradient")]
        print(f"| {pool} | {fusions} | " + " | ".join(f"{value:.2f}" for value in row) + " |")


if __name__ == "__main__":
    main()

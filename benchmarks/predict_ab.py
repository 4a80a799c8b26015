"""Keras's own `predict` against the zoo's lean one (zoo.accel.predict), on this backend.

    KERAS_BACKEND=tensorflow python benchmarks/predict_ab.py [--model lenet5_modern]

Builds the model, then times `predict` over 2,000 random images at batch 128 both
ways, alternating, and prints the median images per second of each (5 calls each
after a warm-up call) and their ratio. Both give the same numbers
(tests/test_lean_predict.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def images_per_second(predict, images, rounds):
    predict()  # compiles
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        predict()
        seconds.append(time.perf_counter() - start)
    return images / statistics.median(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lenet5_modern")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args(argv)

    import keras

    import zoo

    model = zoo.get_model(options.model)
    x = np.random.default_rng(0).random((options.images, *model.input_shape[1:]), "float32")

    def keras_predict():
        return type(model).predict(model, x, batch_size=options.batch_size, verbose=0)

    def lean_predict():
        return model.predict(x, batch_size=options.batch_size, verbose=0)

    keras_rate = images_per_second(keras_predict, len(x), options.rounds)
    lean_rate = images_per_second(lean_predict, len(x), options.rounds)
    print(
        f"{keras.backend.backend()}: Keras predict {keras_rate:,.0f} images/s, lean predict "
        f"{lean_rate:,.0f} images/s ({lean_rate / keras_rate:.2f}x)"
    )


if __name__ == "__main__":
    main()

"""Where a LeNet training run's memory goes: peak RSS after each stage, in one process.

Command line::

    KERAS_BACKEND=jax python benchmarks/memory_stages.py            # as zoo-train imports Keras
    KERAS_BACKEND=jax python benchmarks/memory_stages.py --full-import   # a plain ``import keras``
    KERAS_BACKEND=jax python benchmarks/memory_stages.py --conv-impl native

The stages are those of the benchmark's ``zoo-*`` LeNet run on random
images of MNIST's shape (8,000 to train, batch 128), after Python and NumPy:
importing the backend and Keras (on TensorFlow one stage: ``import
tensorflow`` imports all of Keras), building the model, the first training
step (compilation), two epochs, and predicting 2,000 images. Each line gives the process's peak
resident memory so far and what that stage added. ``BENCHMARKS.md`` ("Lean
runs") quotes it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import peak_rss_mb as peak_mib  # noqa: E402  (VmHWM on Linux)


def stages(full_import, exit_stack, conv_impl="auto"):
    """Yield (stage, callable) in the order a training run meets them.

    Once Keras is imported, TensorFlow is kept out of a JAX or PyTorch run
    (``zoo.accel.runtime.tensorflow_left_alone``, entered on ``exit_stack``).
    """
    state = {}
    backend = os.environ.get("KERAS_BACKEND", "jax")

    def import_keras():
        if full_import:
            import keras
        else:
            from zoo.accel.runtime import import_keras_lean

            keras = import_keras_lean()
        from zoo.accel.runtime import tensorflow_left_alone

        exit_stack.enter_context(tensorflow_left_alone(keras.backend.backend()))

    def build():
        from zoo.accel import accelerate
        from zoo.models import get_model
        from zoo.training.compile import compile_model

        model = get_model("lenet5_modern", input_shape=(28, 28, 1), classes=10)
        state["model"] = compile_model(model, "adam", 1e-3)
        accelerate(model, conv_impl=conv_impl)  # as zoo-train --conv-impl does after compile

    def data():
        import numpy as np

        rng = np.random.default_rng(0)
        state["x"] = rng.random((8000, 28, 28, 1), dtype=np.float32)
        state["y"] = rng.integers(0, 10, 8000)

    def first_step():
        state["model"].fit(state["x"][:128], state["y"][:128], batch_size=128, verbose=0)

    def two_epochs():
        state["model"].fit(state["x"], state["y"], batch_size=128, epochs=2, verbose=0)

    def predict():
        state["model"].predict(state["x"][:2000], batch_size=256, verbose=0)

    if backend != "tensorflow":  # importing TensorFlow imports all of Keras with it
        yield f"import {backend}", lambda: importlib.import_module(backend)
    yield "import keras" + (" (plain)" if full_import else " (as zoo-train does)"), import_keras
    yield "data (8,000 images)", data
    yield "build and compile LeNet", build
    yield "first training step", first_step
    yield "two epochs", two_epochs
    yield "predict 2,000 images", predict


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-import", action="store_true", help="a plain `import keras`")
    parser.add_argument(
        "--conv-impl",
        default="auto",
        choices=["auto", "native", "im2col", "taps", "chunked"],
        help="how the convolutions compute (zoo.accel.conv), as zoo-train's flag",
    )
    options = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print("| stage | peak RSS (MiB) | added (MiB) |\n| --- | ---: | ---: |")
    before = peak_mib()
    print(f"| Python and NumPy | {before:.0f} | |")
    with contextlib.ExitStack() as exit_stack:
        for stage, run in stages(options.full_import, exit_stack, options.conv_impl):
            run()
            now = peak_mib()
            print(f"| {stage} | {now:.0f} | {now - before:+.0f} |", flush=True)
            before = now
    packages = ("tensorflow", "jax", "torch", "sklearn", "matplotlib")
    loaded = [name for name in packages if name in sys.modules]
    print(f"\nimported: {', '.join(loaded)}")


if __name__ == "__main__":
    main()

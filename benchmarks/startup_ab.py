"""How long a fresh process takes to import Keras, the way zoo-train does and Keras's own way.

    python benchmarks/startup_ab.py [--rounds 7] [--backends torch,jax,tensorflow]

Each round starts, for every installed backend, three fresh Python processes in turn and
times inside each, from its first line, one import:

- ``plain``: ``import keras``;
- ``zoo``: ``zoo.accel.runtime.import_keras_lean()``, as ``zoo-train`` and the benchmark
  import Keras (on PyTorch without TorchDynamo, see ``zoo.accel.torch_import``);
- ``zoo + TorchDynamo`` (PyTorch only): the same after ``import torch._dynamo``, what the
  lean import cost before TorchDynamo was deferred.

It prints the median and range of each over the rounds, and the ml_dtypes version
with its own import time (every backend imports it through Keras). BENCHMARKS.md quotes it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TIMED = (
    "{setup}\nimport time\nstart = time.perf_counter()\n{imports}\n"
    "print(time.perf_counter() - start)"
)
LEAN = "from zoo.accel.runtime import import_keras_lean\nimport_keras_lean()"
SIDES = {
    "plain": "import keras",
    "zoo": LEAN,
    "zoo + TorchDynamo": "import torch._dynamo\n" + LEAN,
}


def seconds(backend, imports, setup=""):
    """Seconds ``imports`` take in a fresh process, after an untimed ``setup``."""
    code = TIMED.format(setup=setup, imports=imports)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def sides_for(backend):
    return [name for name in SIDES if backend == "torch" or "TorchDynamo" not in name]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--backends", default="torch,jax,tensorflow")
    options = parser.parse_args(argv)
    backends = [b for b in options.backends.split(",") if importlib.util.find_spec(b)]
    times = {(b, side): [] for b in backends for side in sides_for(b)}
    for _ in range(options.rounds):
        for backend in backends:
            for side in sides_for(backend):
                times[backend, side].append(seconds(backend, SIDES[side]))
    print(f"Importing Keras in a fresh process, {options.rounds} rounds (s):\n")
    print("| backend | import | median | range |\n| --- | --- | ---: | ---: |")
    for (backend, side), values in times.items():
        low, high = min(values), max(values)
        print(f"| {backend} | {side} | {statistics.median(values):.2f} | {low:.2f}-{high:.2f} |")
    import ml_dtypes

    ml_dtypes_seconds = seconds("jax", "import ml_dtypes", setup="import numpy")
    print(f"\nml_dtypes {ml_dtypes.__version__}: {ml_dtypes_seconds:.3f} s to import after NumPy")


if __name__ == "__main__":
    main()

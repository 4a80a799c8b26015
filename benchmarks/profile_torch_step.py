"""PyTorch only: where one LeNet training step's time goes, the zoo's against the plain loop.

Command line::

    python benchmarks/profile_torch_step.py            # 40 steps of each at batch 128
    python benchmarks/profile_torch_step.py --steps 80

Runs, in one process on random MNIST-shaped images, the zoo's training path
(``zoo.training.compile.compile_model`` then ``model.fit`` on PyTorch), the same model
with the zoo's PyTorch speed-ups removed (Keras's own code, as
``speedups_ab.py`` builds it) and the benchmark's ``torch-eager`` loop
(``benchmarks/torch_baseline.py``), each
warmed up first, then profiled with ``torch.profiler`` over the same number of
steps. It prints each side's wall-clock milliseconds per step, the share of it
spent inside PyTorch operators (the rest is Python: Keras's or the loop's), and
the operators that take the most time per step, side by side. ``BENCHMARKS.md``
quotes it. A PyTorch-specific tool, so it imports torch directly.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

os.environ["KERAS_BACKEND"] = "torch"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

BATCH = 128


def profiled(train_steps, steps):
    """Wall ms per step and ``{operator: self-CPU ms per step}`` over ``steps`` steps."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        start = time.perf_counter()
        train_steps(steps)
        wall = (time.perf_counter() - start) * 1000 / steps
    per_op = {}
    for event in profiler.key_averages():
        per_op[event.key] = event.self_cpu_time_total / 1000 / steps
    return wall, per_op


def zoo_steps(images, labels, speedups=True):
    """``train(n)``: n steps of the zoo's ``model.fit`` at batch 128; with ``speedups``
    false, of the same model running Keras's own code (``speedups_ab.py``'s "keras")."""
    from speedups_ab import build

    model = build("lenet5_modern", (28, 28, 1), () if speedups else None)

    def train(count):
        n = count * BATCH
        model.fit(images[:n], labels[:n], batch_size=BATCH, epochs=1, verbose=0, shuffle=True)

    return train


def eager_steps(images, labels):
    """``train(n)``: n steps of the benchmark's plain PyTorch loop at batch 128."""
    import torch_baseline

    with tempfile.TemporaryDirectory(prefix="zoo-profile-") as folder:
        data = os.path.join(folder, "lenet.npz")
        np.savez(data, x_train=images, y_train=labels, x_test=images[:1], y_test=labels[:1])
        job = {"model": "lenet5_modern", "classes": 10, "seed": 0, "data": data}
        steps = torch_baseline.TorchSteps(job)
    rng = np.random.default_rng(0)

    def train(count):
        order = rng.permutation(len(labels))
        for i in range(count):
            steps.train_batch(order[i * BATCH : (i + 1) * BATCH])

    return train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="profiled steps of each")
    parser.add_argument("--top", type=int, default=12, help="operators listed")
    options = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    count = BATCH * max(options.steps, 20)
    images = rng.random((count, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, count)
    from zoo.accel.runtime import import_keras_lean, tensorflow_left_alone

    import_keras_lean()  # as zoo-train imports Keras
    results = {}
    with tensorflow_left_alone("torch"):
        makers = {
            "keras-torch": lambda x, y: zoo_steps(x, y, speedups=False),
            "zoo-torch": zoo_steps,
            "torch-eager": eager_steps,
        }
        for name, make in makers.items():
            train = make(images, labels)
            train(20)  # warm-up
            results[name] = profiled(train, options.steps)
    names = list(results)
    walls = {name: wall for name, (wall, _) in results.items()}
    inside = {name: sum(ops.values()) for name, (_, ops) in results.items()}
    rows = {
        "wall ms per step": walls,
        "in operators": inside,
        "outside (Python)": {name: walls[name] - inside[name] for name in names},
    }
    print(f"| | {' | '.join(names)} |\n| --- |{' ---: |' * len(names)}")
    for label, values in rows.items():
        print(f"| {label} | {' | '.join(f'{values[name]:.2f}' for name in names)} |")
    zoo_ops = results["zoo-torch"][1]
    top = sorted(zoo_ops, key=zoo_ops.get, reverse=True)[: options.top]
    print(f"\n| operator (self CPU ms per step) | {' | '.join(names)} |")
    print(f"| --- |{' ---: |' * len(names)}")
    for op in top:
        times = " | ".join(f"{results[name][1].get(op, 0.0):.3f}" for name in names)
        print(f"| `{op[:60]}` | {times} |")


if __name__ == "__main__":
    main()

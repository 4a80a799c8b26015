"""Time LeNet-5's two convolutions, forward and backward, in each framework's own kernels.

    python benchmarks/conv_kernels.py            # jax, tensorflow and torch, when installed

The profile behind BENCHMARKS.md: a training step of LeNet-5 is mostly these
kernels, so their times bound what any training loop on top of a framework
can reach. "forward+backward" is the forward pass and the gradients a
training step needs (the kernel's; the input's too for conv2), of the loss
``0.5 * sum(out ** 2)``. Shapes are those of the zoo's ``lenet5_modern`` at batch
128: conv1 6 @ 5x5 "same" on 28x28x1, conv2 16 @ 5x5 "valid" on 14x14x6. Each
figure is the median of 30 calls after a warm-up, in milliseconds.
"""

from __future__ import annotations

import importlib.util
import statistics
import time

import numpy as np

BATCH = 128
# name: (input NHWC, kernel HWIO, padding)
CONVS = {
    "conv1": ((BATCH, 28, 28, 1), (5, 5, 1, 6), "SAME"),
    "conv2": ((BATCH, 14, 14, 6), (5, 5, 6, 16), "VALID"),
}


def median_ms(function, *args, calls=30):
    """Median milliseconds of ``function(*args)`` over ``calls`` calls after one warm-up."""
    function(*args)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        function(*args)
        seconds.append(time.perf_counter() - start)
    return 1000 * statistics.median(seconds)


def arrays(shape_x, shape_w):
    rng = np.random.default_rng(0)
    return rng.random(shape_x, dtype=np.float32), rng.random(shape_w, dtype=np.float32)


def jax_kernels():
    import jax
    from jax import lax

    def wait(function, *args):
        return jax.block_until_ready(function(*args))

    times = {}
    for name, (shape_x, shape_w, padding) in CONVS.items():
        x, w = (jax.numpy.asarray(a) for a in arrays(shape_x, shape_w))

        def conv(x, w, padding=padding):
            return lax.conv_general_dilated(
                x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
            )

        def loss(w, x):
            return 0.5 * (conv(x, w) ** 2).sum()

        forward = jax.jit(conv)
        argnums = (0,) if name == "conv1" else (0, 1)
        step = jax.jit(jax.grad(loss, argnums=argnums))

        times[f"{name} forward"] = median_ms(wait, forward, x, w)
        times[f"{name} forward+backward"] = median_ms(wait, step, w, x)
    return times


def torch_kernels():
    import torch

    times = {}
    for name, (shape_x, shape_w, padding) in CONVS.items():
        x, w = arrays(shape_x, shape_w)
        x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        w = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()
        pad = 2 if padding == "SAME" else 0
        x.requires_grad_(name != "conv1")
        w.requires_grad_(True)

        def forward(x=x, w=w, pad=pad):
            with torch.no_grad():
                return torch.nn.functional.conv2d(x, w, padding=pad)

        def step(x=x, w=w, pad=pad):
            out = torch.nn.functional.conv2d(x, w, padding=pad)
            (0.5 * (out**2).sum()).backward()

        times[f"{name} forward"] = median_ms(forward)
        times[f"{name} forward+backward"] = median_ms(step)
    return times


def tensorflow_kernels():
    import tensorflow as tf

    def wait(function, *args):
        return [t.numpy() for t in tf.nest.flatten(function(*args))]

    times = {}
    for name, (shape_x, shape_w, padding) in CONVS.items():
        x, w = (tf.constant(a) for a in arrays(shape_x, shape_w))
        sources = [w] if name == "conv1" else [w, x]

        @tf.function
        def forward(x, w, padding=padding):
            return tf.nn.conv2d(x, w, 1, padding)

        @tf.function
        def step(x, w, padding=padding, sources=sources):
            with tf.GradientTape() as tape:
                tape.watch([x, w])
                loss = 0.5 * tf.reduce_sum(tf.nn.conv2d(x, w, 1, padding) ** 2)
            return tape.gradient(loss, [w] if len(sources) == 1 else [w, x])

        times[f"{name} forward"] = median_ms(wait, forward, x, w)
        times[f"{name} forward+backward"] = median_ms(wait, step, x, w)
    return times


def main():
    frameworks = {"torch": torch_kernels, "jax": jax_kernels, "tensorflow": tensorflow_kernels}
    results = {
        name: measure()
        for name, measure in frameworks.items()
        if importlib.util.find_spec(name) is not None
    }
    rows = list(next(iter(results.values())))
    print("| kernel (ms, batch 128) | " + " | ".join(results) + " |")
    print("| --- |" + " ---: |" * len(results))
    for row in rows:
        print(f"| {row} | " + " | ".join(f"{results[f][row]:.2f}" for f in results) + " |")
    totals = {f: sum(t.values()) for f, t in results.items()}
    print("| **sum** | " + " | ".join(f"**{totals[f]:.2f}**" for f in results) + " |")


if __name__ == "__main__":
    main()

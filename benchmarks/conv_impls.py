"""Each convolution implementation (zoo.accel.conv) on the Conv2D shapes the zoo's models use.

    python benchmarks/conv_impls.py                  # each installed backend, one process each
    python benchmarks/conv_impls.py --backend torch  # one backend, in this process
    python benchmarks/conv_impls.py --calls 5 --models lenet

The layers are the zoo's own ``Conv2D`` layers with their weights: ``lenet5_modern``'s
conv1 (28x28x1 -> 6, 5x5 same) and conv2 (14x14x6 -> 16, 5x5 valid) at batch 128, and
AlexNet's (``"original"``, 227x227x3) conv1..conv5 at batch 16, each called as a layer
(bias and ReLU included). "forward" is the layer's output; "fwd+bwd" also the gradients
of ``0.5 * sum(out ** 2)`` for the kernel and bias, and for the input except in a
network's first layer (training never needs that one). Each runs as Keras's trainer
runs it on this backend: under ``jax.jit``; in a ``tf.function``, with XLA only where
Keras would use it (not on a CPU); eagerly on PyTorch. Figures are the median
milliseconds of ``--calls`` calls after two warm-up calls, one Markdown table per
backend; each ratio is to native (below 1: faster). Last, the entries of
``zoo.accel.conv.AUTO_TABLE`` the figures support (the fastest implementation on fwd+bwd,
where it is at least ``--margin`` faster than native for every measured layer of a
shape class).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys

import numpy as np
from _harness import median_ms

BACKENDS = ("jax", "tensorflow", "torch")
IMPLS = ("native", "im2col", "taps", "chunked")


def zoo_layers(models):
    """``[(label, layer, batch input shape, input gradient needed)]``, built natively."""
    import zoo

    found = []
    with zoo.conv_impl("native"):
        built = []
        if "lenet" in models:
            built.append(("lenet5_modern", 128, zoo.get_model("lenet5_modern")))
        if "alexnet" in models:
            features = zoo.alexnet(input_shape=(227, 227, 3), include_top=False)
            built.append(("alexnet", 16, features))
    for network, batch, model in built:
        convs = [layer for layer in model.layers if layer.name.startswith("conv")]
        for index, layer in enumerate(convs):
            shape = (batch, *layer.input.shape[1:])
            found.append((f"{network} {layer.name}", layer, shape, index > 0))
    return found


def jax_runners(layer, x, input_grad):
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in layer.trainable_variables]
    frozen = [v.value for v in layer.non_trainable_variables]
    x = jnp.asarray(x)

    def forward(weights, x):
        return layer.stateless_call(weights, frozen, x)[0]

    def loss(weights, x):
        return 0.5 * jnp.sum(forward(weights, x) ** 2)

    forward_jit = jax.jit(forward)
    step = jax.jit(jax.grad(loss, argnums=(0, 1) if input_grad else 0))
    return (
        lambda: jax.block_until_ready(forward_jit(trainable, x)),
        lambda: jax.block_until_ready(step(trainable, x)),
    )


def tensorflow_runners(layer, x, input_grad):
    import keras
    import tensorflow as tf

    probe = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    probe.compile(loss="mse")  # jit_compile="auto": what Keras's trainer uses here
    jit = bool(probe.jit_compile)
    x = tf.constant(x)

    @tf.function(jit_compile=jit)
    def forward(x):
        return layer(x)

    @tf.function(jit_compile=jit)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = 0.5 * tf.reduce_sum(layer(x) ** 2)
        return tape.gradient(loss, [*layer.trainable_weights, *([x] if input_grad else [])])

    return (lambda: forward(x)[0, 0, 0, 0].numpy(), lambda: step(x)[0].numpy())


def torch_runners(layer, x, input_grad):
    import torch

    x = torch.from_numpy(x).requires_grad_(input_grad)
    sources = [v.value for v in layer.trainable_variables] + ([x] if input_grad else [])

    def forward():
        with torch.no_grad():
            return layer(x)

    def step():
        loss = 0.5 * (layer(x) ** 2).sum()
        return torch.autograd.grad(loss, sources)

    return forward, step


def measure(models, calls):
    """``{label: {(impl, "forward" | "fwd+bwd"): ms}}`` and each label's shape class."""
    import keras

    from zoo.accel import conv

    backend = keras.backend.backend()
    runners = {"jax": jax_runners, "tensorflow": tensorflow_runners, "torch": torch_runners}
    times, classes = {}, {}
    rng = np.random.default_rng(0)
    for label, layer, shape, input_grad in zoo_layers(models):
        x = rng.standard_normal(shape, dtype=np.float32)
        classes[label] = conv.shape_class(shape[-1], layer)
        times[label] = {}
        for impl in IMPLS:
            conv.apply_conv_impl(layer, impl)
            forward, step = runners[backend](layer, x, input_grad)
            times[label][impl, "forward"] = median_ms(forward, calls, warmups=2)
            times[label][impl, "fwd+bwd"] = median_ms(step, calls, warmups=2)
        conv.apply_conv_impl(layer, "native")
        print(f"  measured {label}", file=sys.stderr, flush=True)
    return times, classes


def print_table(backend, times, classes, margin):
    others = IMPLS[1:]
    header = ["layer (ms)", "shape class"]
    for kind in ("forward", "fwd+bwd"):
        header += [f"{kind} native"] + [f"{kind} {impl} (ratio)" for impl in others]
    rows = [f"### {backend}", "", "| " + " | ".join(header) + " |"]
    rows.append("| --- | --- |" + " ---: |" * (len(header) - 2))
    for label, t in times.items():
        cells = [label, str(classes[label])]
        for kind in ("forward", "fwd+bwd"):
            native = t["native", kind]
            cells.append(f"{native:.2f}")
            cells += [f"{t[impl, kind]:.2f} ({t[impl, kind] / native:.2f})" for impl in others]
        rows.append("| " + " | ".join(cells) + " |")
    print("\n".join(rows) + "\n")
    wins = {}
    for label, t in times.items():
        best = min(others, key=lambda impl: t[impl, "fwd+bwd"])
        won = t[best, "fwd+bwd"] <= (1 - margin) * t["native", "fwd+bwd"]
        wins.setdefault(classes[label], []).append(best if won else None)
    entries = {
        c: picks[0]
        for c, picks in wins.items()
        if c is not None and picks[0] is not None and len(set(picks)) == 1
    }
    print(f"AUTO_TABLE[{backend!r}] = {entries!r}\n", flush=True)


def run_here(args):
    import keras

    backend = keras.backend.backend()
    times, classes = measure(args.models, args.calls)
    print_table(backend, times, classes, args.margin)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, help="this backend, in this process")
    parser.add_argument("--calls", type=int, default=10, help="timed calls per figure")
    parser.add_argument(
        "--models", nargs="+", default=["lenet", "alexnet"], choices=["lenet", "alexnet"]
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=0.15,
        help="how much faster than native a pick must be (0.15: 15 %%)",
    )
    args = parser.parse_args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
        return run_here(args)
    for backend in BACKENDS:
        if importlib.util.find_spec(backend) is None:
            print(f"### {backend}\n\nnot installed\n")
            continue
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        argv = [sys.executable, __file__, "--backend", backend, "--calls", str(args.calls)]
        argv += ["--margin", str(args.margin), "--models", *args.models]
        subprocess.run(argv, env=env, check=True)
    return None


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    main()

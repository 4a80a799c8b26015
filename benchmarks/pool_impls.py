"""Keras's pooling against the zoo's on the pooling layers of the zoo's models, on one backend.

    KERAS_BACKEND=jax python benchmarks/pool_impls.py
    KERAS_BACKEND=torch python benchmarks/pool_impls.py --calls 20 --models lenet

The layers are ``lenet5_modern``'s two 2x2 max pools at batch 128 and AlexNet's
(``"original"``, 227x227x3) three overlapping 3x3, stride-2 max pools at batch 16,
called as layers on the output of a ReLU (so that windows of zeros tie, as in training).
Each is timed as Keras computes it and with the zoo's speed-up for this backend
(``zoo.accel.jax_pooling`` on JAX: a reshape, or a gradient from shifted slices;
``zoo.accel.torch_pooling`` on PyTorch: channels-last pooling), run the way
``conv_impls.py`` runs a convolution: "forward" is the output, "fwd+bwd" also the
gradient of ``0.5 * sum(out ** 2)`` for the input. Figures are the median
milliseconds of ``--calls`` calls after two warm-up calls, with the ratio of the zoo's
to Keras's (below 1: faster). TensorFlow has no pooling speed-up: nothing to compare.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import median_ms  # noqa: E402
from conv_impls import jax_runners, torch_runners  # noqa: E402


def pooling_layers(models):
    """``[(label, layer class, config, batch input shape)]`` of the zoo's max-pooling layers."""
    import keras

    import zoo

    built = []
    if "lenet" in models:
        built.append(("lenet5_modern", 128, zoo.get_model("lenet5_modern")))
    if "alexnet" in models:
        built.append(("alexnet", 16, zoo.alexnet(input_shape=(227, 227, 3), include_top=False)))
    return [
        (f"{network} {pool.name}", type(pool), pool.get_config(), (batch, *pool.input.shape[1:]))
        for network, batch, model in built
        for pool in model.layers
        if isinstance(pool, keras.layers.MaxPooling2D)
    ]


def speedup(backend):
    """The zoo's ``use_...(layer)`` for this backend, or ``None``."""
    if backend == "jax":
        from zoo.accel.jax_pooling import use_fast_pooling

        return use_fast_pooling
    if backend == "torch":
        from zoo.accel.torch_pooling import use_channels_last_pooling

        return use_channels_last_pooling
    return None


def measure(models, calls):
    """``[(label, {(way, "forward" | "fwd+bwd"): ms})]``, way ``"keras"`` or ``"zoo"``."""
    import keras

    backend = keras.backend.backend()
    use, runners = speedup(backend), {"jax": jax_runners, "torch": torch_runners}[backend]
    rng = np.random.default_rng(0)
    rows = []
    for label, cls, config, shape in pooling_layers(models):
        x = np.maximum(rng.standard_normal(shape, dtype=np.float32), 0)  # after a ReLU
        times = {}
        for way in ("keras", "zoo"):
            layer = cls.from_config(config)
            layer.build(shape)
            if way == "zoo" and not use(layer):
                raise SystemExit(f"{label}: the zoo's pooling does not apply")
            forward, step = runners(layer, x, True)
            times[way, "forward"] = median_ms(forward, calls, warmups=2)
            times[way, "fwd+bwd"] = median_ms(step, calls, warmups=2)
        rows.append((label, times))
        print(f"  measured {label}", file=sys.stderr, flush=True)
    return rows


def print_table(backend, rows):
    header = ["layer (ms)", "forward Keras", "forward zoo (ratio)"]
    header += ["fwd+bwd Keras", "fwd+bwd zoo (ratio)"]
    lines = [f"### {backend}", "", "| " + " | ".join(header) + " |"]
    lines.append("| --- |" + " ---: |" * (len(header) - 1))
    for label, t in rows:
        cells = [label]
        for kind in ("forward", "fwd+bwd"):
            keras_ms, zoo_ms = t["keras", kind], t["zoo", kind]
            cells += [f"{keras_ms:.2f}", f"{zoo_ms:.2f} ({zoo_ms / keras_ms:.2f})"]
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines) + "\n", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10, help="timed calls per figure")
    parser.add_argument(
        "--models", nargs="+", default=["lenet", "alexnet"], choices=["lenet", "alexnet"]
    )
    args = parser.parse_args()
    from zoo.accel.runtime import import_keras_lean

    backend = import_keras_lean().backend.backend()  # as zoo-train imports Keras
    if speedup(backend) is None:
        raise SystemExit(f"pool_impls: Keras's pooling is all there is on {backend}")
    print_table(backend, measure(args.models, args.calls))


if __name__ == "__main__":
    main()

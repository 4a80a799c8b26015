"""Each backend speed-up on or off, side by side in one process: training images per second.

    KERAS_BACKEND=jax python benchmarks/speedups_ab.py               # LeNet-5 (modern)
    KERAS_BACKEND=torch python benchmarks/speedups_ab.py --model alexnet
    KERAS_BACKEND=torch python benchmarks/speedups_ab.py --each      # and one off at a time
    KERAS_BACKEND=torch python benchmarks/speedups_ab.py --without pool-first --rounds 12
    KERAS_BACKEND=torch python benchmarks/speedups_ab.py --recipe    # the model's own recipe
    KERAS_BACKEND=jax python benchmarks/speedups_ab.py --variant conv2=im2col --predict

Builds the model as the zoo builds it (``zoo.models._builder.apply_backend_speedups``: pooling by
reshape or by slices on JAX; channels-last pooling, the bias inside the convolution, large
``Dense`` layers' inference through oneDNN, the lean training step with max pooling before ReLU,
fused Adam and the cosine schedule in plain numbers on PyTorch; fused Adam on TensorFlow; on every
backend the batch callbacks called only when heard) and with those instance overrides removed
(Keras's own code; TensorFlow's lean input stays in both); with ``--each``, also once per speed-up
with only that one removed. By default every model trains with Adam at a constant 1e-3 and LeNet at
batch 128; with ``--recipe``, as the model's registry recipe says (``lenet5_modern``: batch 64,
warm-up and cosine decay, label smoothing, as time to accuracy trains it). It alternates one epoch
of each on random images and prints the median images per second of each. With ``--variant
LAYER=IMPL`` it also trains the zoo's model with that ``Conv2D`` running another implementation
(``zoo.accel.conv``; repeatable), and with ``--predict`` it also times ``predict`` on the same
images after each epoch. The A/B figures in BENCHMARKS.md ("Where the time went") come from runs
like this one."""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

POOLS = ("MaxPooling2D", "AveragePooling2D")


def _pop_layer_calls(model, kinds):
    for layer in model.layers:
        if type(layer).__name__ in kinds:
            vars(layer).pop("call", None)


def _pop_fused_adam(optimizer):
    for method in ("_parallel_update_step", "update_step"):  # PyTorch's, TensorFlow's
        vars(optimizer).pop(method, None)


def _pop_steps(model):
    for step in ("train_step", "test_step", "predict_step"):
        vars(model).pop(step, None)


def _pop_quiet_fit(model):
    """Back to the `fit` that zoo.accel.batch_hooks wrapped (Keras's, or TensorFlow's lean one)."""
    fit = vars(model).get("fit")
    if isinstance(fit, functools.partial) and fit.func.__name__ == "quiet_fit":
        inner = fit.args[1]
        if getattr(inner, "__func__", None) is type(model).fit:
            vars(model).pop("fit")
        else:
            model.fit = inner


# What undoes each speed-up: back to Keras's own method on the instances it changed.
REMOVERS = {
    "pooling": lambda model: _pop_layer_calls(model, POOLS),
    "conv-bias": lambda model: _pop_layer_calls(model, ("Conv2D",)),
    "onednn-dense": lambda model: _pop_layer_calls(model, ("Dense",)),  # predict and evaluate
    "lean-step": _pop_steps,
    "pool-first": lambda model: vars(model).pop("_zoo_pool_first", None),
    "fused-adam": lambda model: _pop_fused_adam(model.optimizer),
    "plain-schedule": lambda model: vars(model.optimizer).pop("_get_current_learning_rate", None),
    "batch-hooks": _pop_quiet_fit,
    "one-image-build": lambda model: vars(model).pop("_symbolic_build", None),  # start-up only
}
APPLIES = {
    "torch": tuple(REMOVERS),
    "jax": ("pooling", "batch-hooks"),
    "tensorflow": ("fused-adam", "batch-hooks"),
}


def build(name, shape, removed=None, recipe=None):
    """The zoo's compiled model with the speed-ups named in ``removed`` (default: all) undone.

    ``recipe``: a :class:`~zoo.registry.Recipe` and the run's total steps to compile with,
    else Adam at a constant 1e-3.
    """
    import zoo
    from zoo.accel import accelerate
    from zoo.training.compile import compile_model

    model = zoo.get_model(name, input_shape=shape)
    if recipe is None:
        compile_model(model, "adam", 1e-3)
    else:
        recipe, total_steps = recipe
        compile_model(
            model,
            recipe.optimizer,
            recipe.learning_rate,
            schedule=recipe.schedule,
            total_steps=total_steps,
            label_smoothing=recipe.label_smoothing,
        )
    accelerate(model)  # as zoo-train does after compile (fused Adam)
    for speedup in REMOVERS if removed is None else removed:
        REMOVERS[speedup](model)
    return model


def with_conv_impl(model, variant):
    """``model`` with the ``Conv2D`` named in ``variant`` (``"LAYER=IMPL"``) running IMPL."""
    from zoo.accel import conv

    layer, impl = variant.split("=")
    conv.apply_conv_impl(model.get_layer(layer), impl)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet5_modern", choices=["lenet5_modern", "alexnet"])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--each", action="store_true", help="also each speed-up off alone")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=sorted(REMOVERS),
        help="also the zoo's model with this speed-up off (repeatable; --each: all)",
    )
    parser.add_argument("--recipe", action="store_true", help="train with the model's recipe")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LAYER=IMPL",
        help="also the zoo's model with this Conv2D running IMPL (native, im2col, ...)",
    )
    parser.add_argument("--predict", action="store_true", help="also time predict")
    parser.add_argument("--images", type=int, help="images per epoch (LeNet 8000, AlexNet 128)")
    args = parser.parse_args()
    import keras

    from zoo.accel.runtime import tensorflow_left_alone
    from zoo.models import model_spec
    from zoo.training.compile import wants_one_hot

    lenet = args.model == "lenet5_modern"
    shape, batch, count = ((28, 28, 1), 128, 8000) if lenet else ((227, 227, 3), 16, 128)
    count = args.images or count
    recipe = None
    if args.recipe:
        spec = model_spec(args.model).recipe
        batch = spec.batch_size
        recipe = (spec, -(-count // batch) * (args.rounds + 1))  # the rounds stay in the schedule
    classes = 10 if lenet else 1000
    rng = np.random.default_rng(0)
    x = rng.random((count, *shape), dtype=np.float32)
    y = rng.integers(0, classes, count)
    with tensorflow_left_alone(keras.backend.backend()):
        models = {
            "keras": build(args.model, shape, recipe=recipe),
            "zoo": build(args.model, shape, (), recipe),
        }
        for speedup in APPLIES[keras.backend.backend()] if args.each else args.without:
            models[f"zoo without {speedup}"] = build(args.model, shape, (speedup,), recipe)
        for variant in args.variant:
            models[f"zoo with {variant}"] = with_conv_impl(
                build(args.model, shape, (), recipe), variant
            )
        if wants_one_hot(models["zoo"]):  # a label-smoothed loss
            y = np.eye(classes, dtype="float32")[y]
        for model in models.values():
            model.fit(x[: batch * 2], y[: batch * 2], batch_size=batch, verbose=0)
            if args.predict:
                model.predict(x[: batch * 2], batch_size=batch, verbose=0)
        rates = {name: [] for name in models}
        predicted = {name: [] for name in models}
        for _ in range(args.rounds):
            for name, model in models.items():
                start = time.perf_counter()
                model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
                rates[name].append(count / (time.perf_counter() - start))
                if args.predict:
                    start = time.perf_counter()
                    model.predict(x, batch_size=batch, verbose=0)
                    predicted[name].append(count / (time.perf_counter() - start))
    for name, values in rates.items():
        line = f"{keras.backend.backend()} {args.model} {name}: "
        line += f"{statistics.median(values):,.1f} img/s"
        if predicted[name]:
            line += f", predict {statistics.median(predicted[name]):,.1f} img/s"
        print(line)


if __name__ == "__main__":
    main()

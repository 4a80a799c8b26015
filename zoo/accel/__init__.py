"""Everything that patches Keras or the process, so the rest of the zoo stays plain Keras.

The models, weights, data, training and deploy folders build and use plain
`keras.Model` objects. The speed-ups that make them fast on one backend (JAX pooling by reshape or
by slices, PyTorch's channels-last pooling, the bias inside the convolution, oneDNN for large
`Dense` layers' inference, the lean training step, max pooling before ReLU, fused Adam on PyTorch
and TensorFlow, TensorFlow's array input) and the convolution implementation chosen per layer live
here, as do the process settings a `zoo-train` run makes before Keras starts
([`zoo.accel.runtime`][]).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace

__all__ = ["Applied", "accelerate", "applied"]

_APPLIED = weakref.WeakKeyDictionary()  # model -> the Applied it was last given


@dataclass(frozen=True)
class Applied:
    """What [`accelerate`][] gave a model: enough to apply it again, and to say it.

    `conv` maps each `Conv2D` to what it runs (`native`, `im2col`,
    `taps`, or `auto` until it is built); the other fields name the layers
    or parts that took a backend's speed-up.
    """

    backend: str
    conv_setting: str
    conv: dict = field(default_factory=dict)
    pooling: tuple = ()
    fused_bias: tuple = ()
    onednn_dense: tuple = ()  # Dense layers whose inference runs oneDNN's (torch_dense)
    pool_first: tuple = ()  # convolutions pooled before their ReLU (torch_pool_first)
    step: str = "keras"  # "keras", "lean" (zoo.accel.torch_step) or "ddp" (with DDP)
    optimizer: str = "keras"  # or "fused adam" (zoo.accel.torch_adam, zoo.accel.tf_adam)
    schedule: str = "keras"  # or "plain" (zoo.accel.torch_schedule)
    predict: str = "keras"  # or "lean" (zoo.accel.predict)
    fit_input: str = "keras"  # or "lean" (zoo.accel.tf_input)
    batch_hooks: str = "keras"  # or "when heard" (zoo.accel.batch_hooks)
    build: str = "keras"  # or "one image" (zoo.accel.torch_build)

    def describe(self):
        """One line for the start-up banner, e.g. `conv native x2; pooling channels-last x2`."""
        counts = {}
        for impl in self.conv.values():
            counts[impl] = counts.get(impl, 0) + 1
        parts = [f"conv {self.conv_setting}: " + ", ".join(f"{k} x{n}" for k, n in counts.items())]
        pooling = "channels-last" if self.backend == "torch" else "by reshape or slices"
        if self.pooling:
            parts.append(f"pooling {pooling} x{len(self.pooling)}")
        if self.fused_bias:
            parts.append(f"bias inside the convolution x{len(self.fused_bias)}")
        if self.onednn_dense:
            parts.append(f"oneDNN Dense at inference x{len(self.onednn_dense)}")
        if self.pool_first:
            parts.append(f"max pool before ReLU x{len(self.pool_first)}")
        if self.step != "keras":
            parts.append({"lean": "lean training step", "ddp": "DDP training step"}[self.step])
        if self.optimizer != "keras":
            parts.append(self.optimizer)
        if self.schedule != "keras":
            parts.append("cosine schedule in plain numbers")
        if self.predict != "keras":
            parts.append("lean predict")
        if self.fit_input != "keras":
            parts.append("array input without tf.data autotuning")
        if self.batch_hooks != "keras":
            parts.append("batch callbacks only when heard")
        if self.build != "keras":
            parts.append("state built from one image")
        return "; ".join(parts)


def applied(model):
    """What [`accelerate`][] last gave `model`, or `None` (a clone, a loaded file)."""
    return _APPLIED.get(model)


def accelerate(model, *, conv_impl=None, data_parallel=False):
    """Give `model` the zoo's speed-ups for the current backend; returns [`Applied`][].

    The one door for every change the zoo makes to a Keras model. Each is an
    instance-level replacement that computes Keras's own numbers (tests compare
    them), and the model, its layers and its optimizer keep their Keras classes,
    so a saved model is plain Keras. Idempotent: calling it again re-applies the
    same choices, adding what has appeared since (the optimizer after `compile`).

    - every backend: each `Conv2D` runs `conv_impl` ([`zoo.accel.conv`][]; default:
      what the model was given before, else [`zoo.accel.conv.get_conv_impl`][]);
    - JAX: pooling by reshape, or max pooling with a gradient from slices where windows
      overlap ([`zoo.accel.jax_pooling`][]);
    - PyTorch: channels-last pooling ([`zoo.accel.torch_pooling`][]), the bias inside
      the convolution ([`zoo.accel.torch_conv`][]), large `Dense` layers' inference
      through oneDNN ([`zoo.accel.torch_dense`][]), the lean training step
      ([`zoo.accel.torch_step`][]) with max pooling before a convolution's ReLU
      ([`zoo.accel.torch_pool_first`][]), or with `data_parallel` the same step through
      `DistributedDataParallel`, and once compiled with Adam the fused update
      ([`zoo.accel.torch_adam`][]), with a cosine schedule its rate computed
      without tensors ([`zoo.accel.torch_schedule`][]), and the metrics', loss's and
      optimizer's variables built from one real image ([`zoo.accel.torch_build`][]);
    - TensorFlow: `fit` and `evaluate` on arrays without tf.data's autotuning
      ([`zoo.accel.tf_input`][]), and once compiled with Adam the fused update
      ([`zoo.accel.tf_adam`][]);
    - every backend, last: `fit` without the per-batch callback calls no callback
      listens to ([`zoo.accel.batch_hooks`][]), and `predict` on an array without
      Keras's input pipeline ([`zoo.accel.predict`][]), on JAX through a forward pass
      compiled for inference ([`zoo.accel.jax_predict`][]).

    Called by the builders (`zoo.models._builder.finish_model`) and once more after
    `compile` by `zoo-train` and the benchmark. A clone (`keras.models.clone_model`)
    or a loaded file starts plain: call it again.
    """
    import keras

    from zoo.accel import batch_hooks, conv, predict

    backend = keras.backend.backend()
    before = _APPLIED.get(model)
    if conv_impl is None:
        conv_impl = before.conv_setting if before is not None else conv.get_conv_impl()
    data_parallel = data_parallel or (before is not None and before.step == "ddp")
    result = Applied(backend, conv_impl, conv.apply_to_model(model, conv_impl))
    if backend == "jax":
        result = _on_jax(model, result)
    elif backend == "torch":
        result = _on_torch(
            model, result, data_parallel, already_ddp=before and before.step == "ddp"
        )
    elif backend == "tensorflow":
        result = _on_tensorflow(model, result)
    if batch_hooks.use_quiet_batch_hooks(model):
        result = replace(result, batch_hooks="when heard")
    if predict.use_lean_predict(model):
        result = replace(result, predict="lean")
    _APPLIED[model] = result
    return result


def _on_jax(model, result):
    from zoo.accel import jax_pooling, jax_predict

    jax_predict.forget_forward(model)  # traced with the choices made before
    return replace(result, pooling=tuple(jax_pooling.apply_to_model(model)))


def _on_tensorflow(model, result):
    from zoo.accel import tf_adam, tf_input

    if tf_input.use_lean_input(model):
        result = replace(result, fit_input="lean")
    optimizer = getattr(model, "optimizer", None)
    strategy = getattr(model, "_distribute_strategy", None)
    weights = model.trainable_weights
    if optimizer is not None and tf_adam.use_fused_adam(optimizer, strategy, weights):
        result = replace(result, optimizer="fused adam")
    return result


def _on_torch(model, result, data_parallel, already_ddp):
    from zoo.accel import (
        torch_adam,
        torch_build,
        torch_conv,
        torch_dense,
        torch_pool_first,
        torch_pooling,
        torch_schedule,
        torch_step,
    )

    pooling = tuple(torch_pooling.apply_to_model(model))
    fused_bias = tuple(torch_conv.apply_to_model(model))
    onednn_dense = tuple(torch_dense.apply_to_model(model))
    if data_parallel:
        if not already_ddp:  # DDP's constructor is collective: every process, exactly once
            torch_step.use_ddp_step(model)
        step = "ddp"
    else:
        step = "lean" if torch_step.use_lean_step(model) else "keras"
    pool_first = torch_pool_first.use_pool_first(model) if step == "lean" else ()
    optimizer = getattr(model, "optimizer", None)
    fused = optimizer is not None and torch_adam.use_fused_adam(optimizer)
    plain_schedule = optimizer is not None and torch_schedule.use_plain_schedule(optimizer)
    return replace(
        result,
        pooling=pooling,
        fused_bias=fused_bias,
        onednn_dense=onednn_dense,
        pool_first=pool_first,
        step=step,
        optimizer="fused adam" if fused else "keras",
        schedule="plain" if plain_schedule else "keras",
        build="one image" if torch_build.use_build_from_one_image(model) else "keras",
    )

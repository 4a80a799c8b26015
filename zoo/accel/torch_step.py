"""PyTorch only: a training step that runs the model's layers without Keras's per-call bookkeeping.

A backend-specific speed-up, used only when Keras runs on PyTorch. Keras's
PyTorch `train_step` computes the predictions with `model(x)`. That goes
through `Layer.__call__` once for the model and once more for every layer
inside it, and each of those calls does work meant for other situations:
building a symbolic graph, propagating masks, casting inputs under mixed
precision, opening name scopes, collecting activity-regularisation losses.
For a network as small as LeNet-5 that bookkeeping is a large share of a step
(`benchmarks/speedups_ab.py --each`, BENCHMARKS.md).

[`graph_forward`][] instead calls each layer's own `call` in the model's
graph order, passing `training` to the layers that take it. These are the
same operations on the same tensors, so the numbers are Keras's exactly (a
test trains both ways from one seed and compares every weight). It is used
only where that holds: a functional model whose layers are all of the plain
kinds listed in `PLAIN_LAYERS` (exactly those classes, not subclasses),
in float32 (no mixed precision or quantisation) and without activity
regularisers. Any other model keeps Keras's own step.

[`train_step`][] is Keras's PyTorch training step with the forward pass
passed in ([`test_step`][] and [`predict_step`][] likewise for
`evaluate` and `predict`): [`graph_forward`][] for one process, the
`DistributedDataParallel` wrapper for several ([`use_ddp_step`][]).
As with [`zoo.accel.torch_pooling`][], only the model *instance*'s three steps
are replaced: its class stays `keras.Model`, `fit` runs the epochs,
callbacks, checkpoints and history as before, and a saved model is plain Keras.
"""

from __future__ import annotations

import functools

import keras
import torch

from zoo.accel.torch_pool_first import operations as pool_first_operations
from zoo.layers import AdaptiveAveragePooling2D, LocalResponseNormalization

__all__ = [
    "GraphForward",
    "PLAIN_LAYERS",
    "graph_forward",
    "supports_graph_forward",
    "predict_step",
    "test_step",
    "train_step",
    "use_ddp_step",
    "use_lean_step",
]

# Layers whose `call` alone computes everything `Layer.__call__` would give them here.
PLAIN_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Conv2D,
    keras.layers.Dense,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.ZeroPadding2D,
    keras.layers.Flatten,
    keras.layers.Dropout,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.Rescaling,
    AdaptiveAveragePooling2D,
    LocalResponseNormalization,
)


def _is_plain(layer):
    """Whether calling `layer.call` directly gives what `layer(...)` gives."""
    policy = layer.dtype_policy
    return (
        type(layer) in PLAIN_LAYERS
        and policy.compute_dtype == policy.variable_dtype
        and getattr(policy, "quantization_mode", None) is None
        and getattr(layer, "activity_regularizer", None) is None
    )


def supports_graph_forward(model):
    """Whether [`graph_forward`][] computes exactly what `model(x)` does.

    True for a functional `keras.Model` on PyTorch with one input whose
    layers are all plain (see the module's docstring).
    """
    return (
        keras.backend.backend() == "torch"
        and isinstance(model, keras.Model)
        and hasattr(model, "_run_through_graph")
        and hasattr(model, "_nodes_by_depth")
        and len(model.inputs) == 1
        and all(_is_plain(layer) for layer in model.layers)
    )


def _bare_call(layer, training):
    """`layer.call`, given `training` when its signature takes it.

    As in Keras's functional models, `training` replaces any value the
    layer's node recorded when the model was built.
    """
    if not layer._call_has_training_arg:
        return layer.call

    def call(*args, **kwargs):
        return layer.call(*args, **{**kwargs, "training": training})

    return call


def graph_forward(model, images, training=False):
    """`model`'s outputs for `images`: each layer's `call` in graph order.

    Args:
        model: a model for which [`supports_graph_forward`][] is true.
        images: a tensor of the model's input shape, e.g. `(batch, 28, 28, 1)`.
        training: passed to the layers that take it (dropout).

    Returns:
        What `model(images, training=training)` returns, e.g. `(batch, classes)`.
    """
    (images,) = keras.tree.flatten(images)  # also as [images] or {"image": images}
    images = keras.ops.convert_to_tensor(images)  # a NumPy batch too, as `model(images)` takes
    wanted = model.inputs[0].dtype
    if keras.backend.standardize_dtype(images.dtype) != wanted:
        images = keras.ops.cast(images, wanted)  # as Layer.__call__ casts its inputs
    pooled_first = pool_first_operations(model, images)  # {} unless use_pool_first

    def operation(layer):
        return pooled_first.get(id(layer)) or _bare_call(layer, training)

    return model._run_through_graph(images, operation_fn=operation)


class GraphForward(torch.nn.Module):
    """`model` as a `torch.nn.Module` whose `forward` is [`graph_forward`][].

    For wrappers that call a module, such as `DistributedDataParallel`: the
    Keras model is its only submodule, so its parameters are the model's.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images, training=False):
        return graph_forward(self.model, images, training)


def train_step(model, data, forward, track_loss=None):
    """One training step of `model` on one batch, as Keras's PyTorch trainer does it.

    Args:
        model: a compiled `keras.Model`.
        data: the batch `fit` passes, `(x, y)` or `(x, y, sample_weight)`.
        forward: `forward(x, training=True)` gives the predictions.
        track_loss: `track_loss(loss, batch_size)` records the loss shown in
            the progress bar; by default `model`'s own loss tracker.

    Returns:
        The metrics' results, as Keras's `train_step` returns them.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    y_pred = forward(x, training=True)
    weights = model.trainable_weights[:]
    for weight in weights:
        weight.value.grad = None  # what model.zero_grad() does for the trainable ones
    loss = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
    batch_size = y_pred.shape[0]
    if track_loss is None:
        model._loss_tracker.update_state(loss, sample_weight=batch_size)
    else:
        track_loss(loss, batch_size)
    loss = model.optimizer.scale_loss(loss)
    loss.backward()
    with torch.no_grad():
        model.optimizer.apply([weight.value.grad for weight in weights], weights)
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def test_step(model, data, forward):
    """One evaluation step, as Keras's PyTorch trainer does it (`evaluate`, validation)."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    y_pred = forward(x, training=False)
    loss = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
    model._loss_tracker.update_state(loss, sample_weight=y_pred.shape[0])
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def predict_step(model, data, forward):
    """One prediction step, as Keras's PyTorch trainer does it (`predict`)."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return forward(x, training=False)


def use_lean_step(model):
    """Make `model.fit`, `evaluate` and `predict` run through [`graph_forward`][];
    returns whether it applies.

    A model [`supports_graph_forward`][] rejects keeps Keras's own steps, and
    so does a model whose class defines its own steps.
    """
    if not supports_graph_forward(model):
        return False
    for step in ("train_step", "test_step", "predict_step"):
        if getattr(type(model), step) is not getattr(keras.Model, step):
            return False
    forward = functools.partial(graph_forward, model)
    model.train_step = functools.partial(train_step, model, forward=forward)
    model.test_step = functools.partial(test_step, model, forward=forward)
    model.predict_step = functools.partial(predict_step, model, forward=forward)
    return True


def use_ddp_step(model):
    """Make `fit` train `model` through `DistributedDataParallel`; returns the wrapper.

    For a data-parallel PyTorch job ([`zoo.training.distribute.torch_ddp`][] starts
    the process group). DDP's constructor copies process 0's weights to every
    process, so all start from the same model whatever their seeds; it must run
    once in every process. Where [`graph_forward`][] applies, DDP wraps that
    leaner forward pass, and `evaluate`/`predict` take the lean steps too.
    """
    from torch.nn.parallel import DistributedDataParallel

    lean = use_lean_step(model)
    device = [torch.cuda.current_device()] if torch.cuda.is_available() else None
    ddp = DistributedDataParallel(GraphForward(model) if lean else model, device_ids=device)
    model.train_step = _ddp_train_step(model, ddp)
    return ddp


def _ddp_train_step(model, ddp):
    """Keras's torch `train_step` ([`train_step`][]), with the forward pass through `ddp`.

    The forward pass through the wrapper is what makes DDP average the
    gradients during `loss.backward()`, bucket by bucket as they appear. The
    loss the progress bar shows is averaged over the processes too (one more
    all-reduce of one number), so it is the global batch's loss; accuracy is
    this process's share.
    """
    import torch.distributed as dist

    world = dist.get_world_size()

    def track_global_loss(loss, batch_size):
        shown = loss.detach().clone()
        dist.all_reduce(shown)
        model._loss_tracker.update_state(shown / world, sample_weight=batch_size * world)

    return functools.partial(train_step, model, forward=ddp, track_loss=track_global_loss)

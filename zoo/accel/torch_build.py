"""PyTorch only: the metrics, loss and optimizer built from one real image before `fit`.

A backend-specific speed-up, used only when Keras runs on PyTorch. The first
`fit` or `evaluate` of a compiled model creates the variables of its metrics,
of its compiled loss and of its optimizer (Keras's `_symbolic_build`). To learn
the shapes of the predictions, Keras runs the model, its loss and its metrics on
tensors of PyTorch's `"meta"` device, which hold shapes but no numbers. Several
PyTorch operators compute their meta results in Python through a function
wrapped by `torch._dynamo`, so that first call imports TorchDynamo: about a second
of start-up on a 2-core CPU, in a run that never compiles anything (BENCHMARKS.md,
"Issue 32, 2026-12-07, fifth session"), and the second
[`zoo.accel.torch_import`][] kept out of Keras's import.

[`build_from_one_image`][] does the same building with real numbers: the first
image and target of the first batch Keras draws, the model's predictions for it
(`training=False`), then the metrics and the loss as Keras's own build calls them
(the metrics' running totals reset afterwards) and the optimizer's `build`, which
create exactly the variables the meta run would. Keras's own `_symbolic_build`
then finds everything built and only tracks the new variables. Used where the
lean training step is ([`zoo.accel.torch_step.supports_graph_forward`][]: plain
layers, whose inference-mode call changes nothing), and only for batches of
PyTorch tensors with targets; as with the other speed-ups only the model
*instance*'s method is replaced, and a test trains a model both ways from one
seed and finds every weight equal.
"""

from __future__ import annotations

import types

import keras
import torch

from zoo.accel.torch_step import supports_graph_forward

__all__ = ["build_from_one_image", "needs_building", "use_build_from_one_image"]


def needs_building(model):
    """Whether `fit` or `evaluate` would still create metric, loss or optimizer variables."""
    parts = (model._compile_metrics, model._compile_loss, model.optimizer)
    return any(part is not None and not part.built for part in parts)


def _first_batch(iterator):
    """The first batch Keras's epoch iterator gives, drawn as Keras's own build draws it."""
    for _, _, batches in iterator:
        return batches[0] if isinstance(batches, (list, tuple)) else next(batches)
    return None


def build_from_one_image(model, iterator=None, data_batch=None):
    """`_symbolic_build` of `model` (PyTorch), with real tensors of one image.

    Args:
        model: a compiled `keras.Model` whose layers are all built.
        iterator: Keras's epoch iterator (`fit`, `evaluate`), or `None`.
        data_batch: one batch, `(x, y)` or `(x, y, sample_weight)`, instead of `iterator`.
    """
    keras_build = type(model)._symbolic_build
    if not needs_building(model):
        return keras_build(model, iterator=iterator, data_batch=data_batch)
    batch = data_batch if data_batch is not None else _first_batch(iterator)
    x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
    if y is None or not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        return keras_build(model, data_batch=batch)  # the batch is drawn: hand it on
    image, target = x[:1], y[:1]
    with torch.no_grad():
        predictions = model(image, training=False)
        if model._compile_metrics is not None:  # in the order of Keras's own build
            model.compute_metrics(image, target, predictions)
            model._compile_metrics.reset_state()  # nothing of this image may count
        if model._compile_loss is not None:
            model._compute_loss(x=image, y=target, y_pred=predictions, training=False)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return keras_build(model, data_batch=batch)  # all built: Keras only tracks the variables


def use_build_from_one_image(model):
    """Give `model` [`build_from_one_image`][] as its `_symbolic_build`; returns whether
    it took it (only a model the lean training step takes, whose class keeps Keras's)."""
    if not supports_graph_forward(model):  # also false unless Keras runs on PyTorch
        return False
    if getattr(type(model), "_symbolic_build", None) is not keras.Model._symbolic_build:
        return False
    model._symbolic_build = types.MethodType(build_from_one_image, model)
    return True

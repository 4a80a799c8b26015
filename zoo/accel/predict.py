"""Every backend: `model.predict` on an in-memory array without Keras's input pipeline.

Keras's `predict` first turns its input into a dataset for the backend (on
TensorFlow a `tf.data` pipeline whose functions are traced again on every call),
then iterates it through an epoch iterator and its callbacks. For a NumPy array
none of that is needed: [`lean_predict`][] slices the array into batches and
hands each to `model.predict_on_batch`, the same compiled predict function
Keras's loop calls, and joins the results. What it saves on each backend is in
BENCHMARKS.md ("Issue 32, 2026-12-05").

Only the common case takes this path: one NumPy array into a model with one input
and one output, no `steps`, no callbacks, no distribution; anything else is
Keras's own `predict`. `verbose` shows the same progress bar. On JAX each batch goes
through a forward pass compiled for inference ([`zoo.accel.jax_predict`][]). As with the other
speed-ups only the model *instance*'s `predict` is replaced, so the model stays
a `keras.Model` and a saved file is plain Keras.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["lean_predict", "takes_lean_path", "use_lean_predict"]

DEFAULT_BATCH_SIZE = 32  # Keras's own, when `batch_size` is left out


def use_lean_predict(model):
    """Give `model` [`lean_predict`][] as its `predict`; returns whether it took it."""
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if len(inputs or ()) != 1 or len(outputs or ()) != 1:  # a subclassed model has neither
        return False
    if not getattr(model, "_zoo_lean_predict", False):
        model.predict = lean_predict.__get__(model)
        model._zoo_lean_predict = True
    return True


def takes_lean_path(model, x, steps, callbacks):
    """Whether [`lean_predict`][] runs this call itself rather than Keras's `predict`."""
    return (
        isinstance(x, np.ndarray)
        and x.ndim >= 1
        and len(x) > 0
        and steps is None
        and not callbacks
        and keras.distribution.distribution() is None  # JAX and its device meshes
        and getattr(model, "_distribute_strategy", None) is None  # a TensorFlow strategy
    )


def lean_predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
    """`keras.Model.predict`'s arguments and result: `(N, ...)` in, `(N, classes)` out."""
    if not takes_lean_path(self, x, steps, callbacks):
        return type(self).predict(
            self, x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks
        )
    size = batch_size or DEFAULT_BATCH_SIZE
    starts = range(0, len(x), size)
    shown = 1 if verbose == "auto" else verbose
    progress = None if shown == 0 else keras.utils.Progbar(len(starts), verbose=shown)
    predict_on_batch = _batch_predictor(self)
    outputs = []
    for step, start in enumerate(starts, 1):
        outputs.append(np.asarray(predict_on_batch(x[start : start + size])))
        if progress is not None:
            progress.update(step)
    return np.concatenate(outputs)


def _batch_predictor(model):
    """`model.predict_on_batch`, or on JAX the forward pass compiled for inference."""
    if keras.backend.backend() != "jax":
        return model.predict_on_batch
    from zoo.accel.jax_predict import predict_on_batch

    return lambda batch: predict_on_batch(model, batch)

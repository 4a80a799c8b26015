"""The loop every per-layer speed-up shares: try it on each layer, name those it changed.

Its own module so that [`zoo.accel`][]'s entry point can import the speed-ups and
they can import this, without either importing the other.
"""

from __future__ import annotations

__all__ = ["changed_layers"]


def changed_layers(model, backend, use):
    """Names of the layers of `model` that `use(layer)` changed (it returns whether it
    did); none unless Keras runs on `backend`."""
    import keras

    if keras.backend.backend() != backend:
        return []
    return [layer.name for layer in model.layers if use(layer)]

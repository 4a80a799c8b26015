"""Read a `model.keras` that `zoo-train` (or `model.save`) wrote, and run it.

Shared by [`zoo.deploy.export`][] and [`zoo.deploy.predict`][].
"""

from __future__ import annotations

import os

from zoo.errors import ZooError, first_line

__all__ = ["DeployError", "as_model", "keras_outputs", "load_zoo_model"]


# Files people hand to zoo-predict by mistake, named before Keras tries to read them.
OTHER_FORMATS = {
    ".onnx": "an ONNX model (zoo-export writes those; onnxruntime runs them)",
    ".tflite": "a TensorFlow Lite model (zoo-export writes those; a LiteRT interpreter runs them)",
    ".pt": "a PyTorch file",
    ".pth": "a PyTorch file",
    ".pb": "a TensorFlow graph",
}


class DeployError(ZooError):
    """Bad input for export or prediction; the message names the fix."""


def load_zoo_model(path):
    """Load a `.keras` file and check it is an image classifier as the zoo builds them.

    That is one channels-last image input `(None, H, W, C)` with `C` 1 or
    3 and one output `(None, classes)`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DeployError(
            f"model file not found: {path}. Pass the model.keras a zoo-train run wrote "
            "(OUTPUT/model.keras)."
        )
    other = OTHER_FORMATS.get(os.path.splitext(path)[1].lower())
    if other is not None:
        raise DeployError(
            f"{path} is {other}, not a Keras model. Pass the model.keras a zoo-train run wrote "
            "(OUTPUT/model.keras) or one saved with model.save()."
        )
    import keras

    import zoo.layers  # noqa: F401  (registers the zoo's own layers for loading)

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors...
        raise DeployError(
            f"{path} is not a Keras model file: {type(error).__name__}: {first_line(error)}. "
            "Pass a .keras file saved by zoo-train or model.save()."
        ) from None
    inputs, outputs = model.inputs, model.outputs
    shape_in = tuple(inputs[0].shape) if len(inputs) == 1 else ()
    shape_out = tuple(outputs[0].shape) if len(outputs) == 1 else ()
    if len(shape_in) != 4 or shape_in[3] not in (1, 3) or len(shape_out) != 2:
        raise DeployError(
            f"{path} is not a zoo image classifier: it takes {[tuple(i.shape) for i in inputs]} "
            f"and returns {[tuple(o.shape) for o in outputs]}, where the zoo's models take one "
            "(None, height, width, 1 or 3) image batch and return (None, classes)."
        )
    return model


def as_model(model):
    """`model` itself if it is a Keras model; a path is read with [`load_zoo_model`][]."""
    return load_zoo_model(model) if isinstance(model, (str, os.PathLike)) else model


def keras_outputs(model, images):
    """What the Keras model computes for `images` (inference mode), as NumPy."""
    import keras

    return keras.ops.convert_to_numpy(model(images, training=False))

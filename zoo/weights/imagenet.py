"""ImageNet conventions: torchvision's input normalisation and the 1000 class names.

A model with torchvision's ImageNet weights (`zoo.get_model("alexnet_torchvision",
weights="imagenet")`) expects what torchvision's `ImageClassification` preset feeds
it: RGB scaled to [0, 1], then each channel shifted by the ImageNet mean and divided by
its standard deviation. Here channels-last, `(..., H, W, 3)`:

```python
x = zoo.preprocess_input(images, mode="torch")   # uint8 or 0..255 floats in
probs = keras.ops.softmax(model(x))               # or classifier_activation="softmax"
zoo.decode_predictions(probs, top=5)              # [[(index, name, score), ...], ...]
```

The class names (`zoo/weights/imagenet_classes.txt`) were generated from torchvision
0.28.0's `torchvision/models/_meta.py` (`_IMAGENET_CATEGORIES`), in index order.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from zoo.errors import ZooError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "class_names", "decode_predictions", "preprocess_input"]

# torchvision's ImageNet statistics of RGB in [0, 1] (torchvision.transforms._presets).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODES = ("torch",)

_NAMES = None


def preprocess_input(images, mode="torch"):
    """Normalise RGB images in 0..255 for a model with torchvision's ImageNet weights.

    `mode="torch"`: `(images / 255 - mean) / std` per channel with
    `IMAGENET_MEAN` and `IMAGENET_STD`. `images` is channels-last,
    `(..., H, W, 3)`: a NumPy array (a float32 array is returned) or a tensor
    of the current backend (a tensor is returned, computed with `keras.ops`).
    """
    if mode not in MODES:
        raise ZooError(f"Unknown mode {mode!r} for preprocess_input. Use one of: 'torch'.")
    channels = images.shape[-1] if len(images.shape) else None
    if channels != 3:
        raise ZooError(
            f"preprocess_input needs channels-last RGB images (..., height, width, 3), got "
            f"shape {tuple(images.shape)}. Transpose channels-first arrays with "
            "np.transpose(x, (0, 2, 3, 1))."
        )
    mean = np.asarray(IMAGENET_MEAN, "float32")
    std = np.asarray(IMAGENET_STD, "float32")
    if isinstance(images, (np.ndarray, list, tuple)):
        return (np.asarray(images, "float32") / 255.0 - mean) / std
    from keras import ops

    images = ops.cast(images, "float32")
    return (images / 255.0 - ops.convert_to_tensor(mean)) / ops.convert_to_tensor(std)


def class_names():
    """The 1000 ImageNet-1k class names, in the order of the model's outputs."""
    global _NAMES
    if _NAMES is None:
        text = resources.files("zoo.weights").joinpath("imagenet_classes.txt").read_text("utf-8")
        _NAMES = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(_NAMES)


def decode_predictions(predictions, top=5):
    """The `top` classes of each row of `(batch, 1000)` ImageNet scores.

    Returns one list per image of `(class_index, class_name, score)`, best
    first, as `keras.applications` decodes (its first item is a WordNet id;
    torchvision's weights come with names only, so here it is the index).
    """
    from keras import ops

    scores = np.asarray(ops.convert_to_numpy(predictions), dtype="float64")
    if scores.ndim != 2 or scores.shape[1] != 1000:
        raise ZooError(
            f"decode_predictions needs ImageNet scores of shape (batch, 1000), got "
            f"{scores.shape}. Pass the output of a 1000-class model."
        )
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= 1000:
        raise ZooError(f"top must be an integer from 1 to 1000, got {top!r}.")
    names = class_names()
    order = np.argsort(-scores, axis=-1, kind="stable")[:, :top]
    return [
        [(int(i), names[i], float(row[i])) for i in best]
        for row, best in zip(scores, order, strict=True)
    ]

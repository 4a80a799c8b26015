"""Pictures of what a CNN does: feature maps, filters, training curves, confusion matrices,
and the convolution animation (from [`zoo.explain.animation`][]).

Every function *returns* its picture and has no side effect: no window, no
file, no change to Matplotlib's global backend.

- The `plot_*` functions return a `matplotlib.figure.Figure`. In
  Jupyter a cell ending in the call shows it inline; a script calls
  `figure.savefig("maps.png")`. The figures are made without pyplot, so
  nothing is left open in `plt.get_fignums()` and they work headless.
- [`animate_convolution`][] returns a [`GifAnimation`][]: Jupyter shows it
  as an animated image, `.save(path)` writes the `.gif`.

Import cost is paid only when a function is called.
"""

from __future__ import annotations

import math

import numpy as np

from zoo.explain._figures import new_figure as _figure
from zoo.explain.animation import GifAnimation, animate_convolution, convolution_frames

__all__ = [
    "GifAnimation",
    "animate_convolution",
    "confusion_matrix",
    "convolution_frames",
    "plot_confusion_matrix",
    "plot_feature_maps",
    "plot_filters",
    "plot_history",
]


def _grid_shape(count):
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def plot_feature_maps(model, image, layer, max_maps=16, cmap="viridis"):
    """Show the feature maps a layer of `model` produces for one image.

    Args:
        model: a Keras model (functional or sequential).
        image: one image `(H, W, C)` or a batch of one `(1, H, W, C)`.
        layer: the layer's name (or the layer itself); its output must be 4-D.
        max_maps: draw at most this many channels.

    Returns:
        A Matplotlib `Figure` with one panel per channel.
    """
    import keras

    layer = model.get_layer(layer) if isinstance(layer, str) else layer
    image = np.asarray(image, dtype="float32")
    if image.ndim == 3:
        image = image[None]
    probe = keras.Model(model.input, layer.output)
    maps = np.asarray(keras.ops.convert_to_numpy(probe(image, training=False)))[0]
    if maps.ndim != 3:
        raise ValueError(
            f"layer '{layer.name}' outputs shape {maps.shape}, not feature maps (H, W, C); "
            "pick a convolution or pooling layer."
        )
    count = min(maps.shape[-1], max_maps)
    rows, cols = _grid_shape(count)
    figure = _figure((1.6 * cols, 1.6 * rows + 0.4))
    for index in range(rows * cols):
        axis = figure.add_subplot(rows, cols, index + 1)
        axis.axis("off")
        if index < count:
            axis.imshow(maps[..., index], cmap=cmap)
            axis.set_title(str(index), fontsize=8)
    figure.suptitle(f"{layer.name}: {maps.shape[0]}x{maps.shape[1]}x{maps.shape[2]}", fontsize=10)
    return figure


def plot_filters(layer, max_filters=32, cmap="RdBu"):
    """Show the kernels of a `Conv2D` layer, one panel per output channel.

    A kernel of shape `(kh, kw, C_in, C_out)` is drawn as `C_out` images;
    with 3 input channels they are shown as RGB (scaled to [0, 1]), otherwise
    the input channels are averaged. A shared colour scale centred on zero
    makes positive and negative weights comparable.

    Returns:
        A Matplotlib `Figure`.
    """
    weights = layer.get_weights()
    if not weights or np.ndim(weights[0]) != 4:
        raise ValueError(f"layer '{layer.name}' has no 4-D kernel; pass a Conv2D layer.")
    kernel = np.asarray(weights[0])
    count = min(kernel.shape[-1], max_filters)
    rows, cols = _grid_shape(count)
    limit = float(np.max(np.abs(kernel))) or 1.0
    figure = _figure((1.3 * cols, 1.3 * rows + 0.4))
    for index in range(rows * cols):
        axis = figure.add_subplot(rows, cols, index + 1)
        axis.axis("off")
        if index >= count:
            continue
        single = kernel[..., index]
        if single.shape[-1] == 3:
            axis.imshow((single - single.min()) / (np.ptp(single) or 1.0))
        else:
            axis.imshow(single.mean(axis=-1), cmap=cmap, vmin=-limit, vmax=limit)
        axis.set_title(str(index), fontsize=8)
    figure.suptitle(
        f"{layer.name}: {count} of {kernel.shape[-1]} filters "
        f"{kernel.shape[0]}x{kernel.shape[1]}x{kernel.shape[2]}",
        fontsize=10,
    )
    return figure


def plot_history(history, title="training history"):
    """Loss and accuracy per epoch, training and validation, side by side.

    Args:
        history: a dict of lists as in `keras.callbacks.History.history`
            (`loss`, `accuracy`, and `val_loss`, `val_accuracy` if any).
        title: the figure's title.

    Returns:
        A Matplotlib `Figure` with two panels; epochs count from 1.
    """
    from matplotlib.ticker import MaxNLocator

    figure = _figure((9.0, 3.6))
    for index, metric in enumerate(("loss", "accuracy")):
        axis = figure.add_subplot(1, 2, index + 1)
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + metric)
            if values:
                axis.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=label)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend()
    figure.suptitle(_literal(title))
    figure.tight_layout()
    return figure


def _short(name, length=14):
    name = str(name)
    return _literal(name if len(name) <= length else name[: length - 1] + "…")


def _literal(text):
    """`text` drawn as written: a `$` in a class or folder name would start matplotlib's
    math mode, and an unbalanced one fails the whole figure."""
    return str(text).replace("$", r"\$")


def confusion_matrix(labels, predictions, classes):
    """`matrix[true, predicted]` counts, a `(classes, classes)` integer array."""
    matrix = np.zeros((classes, classes), dtype=int)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def plot_confusion_matrix(matrix, class_names=None):
    """Draw a confusion matrix (rows: true class, columns: predicted class).

    Up to 30 classes every cell shows its count and every class its name. With
    more, the cells are colour only and every k-th class is named (at most 30
    labels per axis), so the labels never overlap; long names are shortened.
    """
    classes = len(matrix)
    class_names = [_short(name) for name in (class_names or [str(i) for i in range(classes)])]
    side = min(2.0 + 0.45 * classes, 14.0)
    figure = _figure((side + 1.0, side))
    axis = figure.add_subplot(1, 1, 1)
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046)
    if classes <= 30:
        threshold = matrix.max() / 2 if matrix.size else 0
        for r in range(classes):
            for c in range(classes):
                axis.text(
                    c,
                    r,
                    str(matrix[r, c]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if matrix[r, c] > threshold else "black",
                )
    named = range(0, classes, math.ceil(classes / 30))
    axis.set_xticks(named, [class_names[i] for i in named], rotation=90, fontsize=7)
    axis.set_yticks(named, [class_names[i] for i in named], fontsize=7)
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"confusion matrix (accuracy {accuracy:.3f})")
    figure.tight_layout()
    return figure

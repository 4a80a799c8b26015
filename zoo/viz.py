"""Pictures of what a CNN does: a convolution animation, feature maps, filters.

Every function *returns* its picture and has no side effect: no window, no
file, no change to Matplotlib's global backend.

- The ``plot_*`` functions return a :class:`matplotlib.figure.Figure`. In
  Jupyter a cell ending in the call shows it inline; a script calls
  ``figure.savefig("maps.png")``. The figures are made without pyplot, so
  nothing is left open in ``plt.get_fignums()`` and they work headless.
- :func:`animate_convolution` returns a :class:`GifAnimation`: Jupyter shows it
  as an animated image, ``.save(path)`` writes the ``.gif`` and ``.data``
  holds its bytes.

Import cost is paid only when a function is called.
"""

from __future__ import annotations

import base64
import io
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

from zoo import reference
from zoo._io import atomic_path
from zoo.shapes import _resolve_padding

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


def _figure(figsize, dpi=100):
    """A Matplotlib figure on the Agg canvas, independent of pyplot's global state.

    It shows itself in Jupyter through ``_repr_png_`` whether or not pyplot's
    inline backend is active, and needs no screen.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        def _repr_png_(self):
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", bbox_inches="tight")
            return buffer.getvalue()

    figure = ShownFigure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


@dataclass(frozen=True, repr=False)
class GifAnimation:
    """An animated GIF in memory: shown inline by Jupyter, saved by :meth:`save`.

    Attributes:
        data: the GIF file's bytes.
        frames: how many frames it has.
        size: ``(width, height)`` of each frame in pixels.
    """

    data: bytes
    frames: int
    size: tuple

    def save(self, path):
        """Write the GIF to ``path`` (atomically) and return the path."""
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            handle.write(self.data)
        return path

    def _repr_mimebundle_(self, include=None, exclude=None):
        encoded = base64.b64encode(self.data).decode("ascii")
        width, height = self.size
        return {
            "image/gif": encoded,
            "text/html": f'<img src="data:image/gif;base64,{encoded}" width="{width}" '
            f'height="{height}" alt="animation, {self.frames} frames">',
            "text/plain": repr(self),
        }

    def __repr__(self):
        return f"<GifAnimation: {self.frames} frames of {self.size[0]}x{self.size[1]} pixels>"


def _draw_grid(axis, values, title, cmap, vmin, vmax, highlight=(), padded=None, fmt="{:.3g}"):
    """Draw a 2-D array as coloured cells with the number written in each."""
    from matplotlib.patches import Rectangle

    axis.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            value = values[r, c]
            if np.isnan(value):
                continue
            is_padding = padded is not None and padded[r, c]
            axis.text(
                c,
                r,
                fmt.format(value),
                ha="center",
                va="center",
                fontsize=7,
                color="0.55" if is_padding else "black",
            )
    for r, c in highlight:
        axis.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", lw=2))
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title, fontsize=9)


def convolution_frames(image, kernel, stride=1, padding=0, dilation=1):
    """The states of a 2-D single-channel convolution, one per output position.

    Returns ``(padded, mask, output, positions)`` where ``padded`` is the
    zero-padded input, ``mask`` marks the padding cells, ``output`` is the
    full result (from :func:`zoo.reference.conv2d`) and ``positions`` lists,
    for each output cell ``(i, j)`` in row order, the input cells the dilated
    kernel reads.
    """
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    dilation = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    pads = [
        _resolve_padding(padding, image.shape[a], kernel.shape[a], stride[a], dilation[a])
        for a in range(2)
    ]
    padded = np.pad(image, pads)
    mask = np.pad(np.zeros(image.shape, bool), pads, constant_values=True)
    output = reference.conv2d(
        padded[..., None], kernel[..., None, None], stride=stride, dilation=dilation
    )[..., 0]
    positions = []
    for i in range(output.shape[0]):
        for j in range(output.shape[1]):
            top, left = i * stride[0], j * stride[1]
            taps = [
                (top + a * dilation[0], left + b * dilation[1])
                for a in range(kernel.shape[0])
                for b in range(kernel.shape[1])
            ]
            positions.append(((i, j), taps))
    return padded, mask, output, positions


def animate_convolution(
    image=None,
    kernel=None,
    stride=1,
    padding=0,
    dilation=1,
    frame_ms=600,
    title_frame=True,
    size=(9.0, 3.6),
    dpi=80,
):
    """Animate a kernel sliding over an image, filling the output cell by cell.

    Args:
        image: a 2-D array; default the 6x6 image 0..35.
        kernel: a 2-D array; default a 3x3 averaging kernel.
        stride, padding, dilation: as in :func:`zoo.shapes.conv_output_size`.
        frame_ms: how long each frame shows.
        title_frame: start with one frame showing the input, kernel and settings.
        size, dpi: figure size in inches and resolution; each frame is
            ``round(size[0] * dpi) x round(size[1] * dpi)`` pixels.

    The padded cells are drawn in grey, the cells the (dilated) kernel reads
    are outlined in red, so the gaps of a dilation are visible. Colours are
    scaled to the data (input and output each to their own range).

    Returns:
        A :class:`GifAnimation` with one frame per output position (plus the
        title frame). In Jupyter, end a cell with it to watch it; in a script,
        ``animate_convolution(...).save("conv.gif")``.

    The old form ``animate_convolution(path, stride=..., ...)``, which wrote
    the file and returned the frame count, still works and warns.
    """
    if isinstance(image, (str, os.PathLike)):
        warnings.warn(
            "animate_convolution(path, ...) is deprecated: it returns a GifAnimation now; "
            "use animate_convolution(...).save(path).",
            DeprecationWarning,
            stacklevel=2,
        )
        settings = (stride, padding, dilation, frame_ms, title_frame, size, dpi)
        animation = animate_convolution(None, kernel, *settings)
        animation.save(image)
        return animation.frames
    from PIL import Image

    image = np.arange(36.0).reshape(6, 6) if image is None else np.asarray(image, float)
    kernel = np.full((3, 3), 1 / 9) if kernel is None else np.asarray(kernel, float)
    padded, mask, output, positions = convolution_frames(image, kernel, stride, padding, dilation)
    in_range = (float(np.min(padded)), float(np.max(padded)) or 1.0)
    out_range = (float(np.min(output)), float(np.max(output)))
    if out_range[0] == out_range[1]:
        out_range = (out_range[0] - 1, out_range[1] + 1)
    settings = f"stride={stride}, padding={padding}, dilation={dilation}"

    def render(filled, taps, current):
        figure = _figure(size, dpi)
        axes = figure.subplots(
            1, 3, gridspec_kw={"width_ratios": [padded.shape[1], kernel.shape[1], output.shape[1]]}
        )
        _draw_grid(
            axes[0],
            padded,
            f"input {image.shape[0]}x{image.shape[1]} (padded grey)",
            "Blues",
            *in_range,
            highlight=taps,
            padded=mask,
        )
        _draw_grid(
            axes[1],
            kernel,
            f"kernel {kernel.shape[0]}x{kernel.shape[1]}",
            "Greens",
            float(kernel.min()) - 1e-9,
            float(kernel.max()) + 1e-9,
        )
        shown = np.full(output.shape, np.nan)
        for i, j in filled:
            shown[i, j] = output[i, j]
        _draw_grid(
            axes[2],
            shown,
            f"output {output.shape[0]}x{output.shape[1]}",
            "Oranges",
            *out_range,
            highlight=[current] if current else (),
        )
        figure.suptitle(f"convolution: {settings}", fontsize=10)
        figure.canvas.draw()
        rgba = np.asarray(figure.canvas.buffer_rgba())
        return Image.fromarray(rgba[..., :3].copy())

    frames = [render([], [], None)] if title_frame else []
    filled = []
    for cell, taps in positions:
        filled.append(cell)
        frames.append(render(list(filled), taps, cell))

    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=frame_ms,
        loop=0,
    )
    return GifAnimation(buffer.getvalue(), len(frames), frames[0].size)


def _grid_shape(count):
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def plot_feature_maps(model, image, layer, max_maps=16, cmap="viridis"):
    """Show the feature maps a layer of ``model`` produces for one image.

    Args:
        model: a Keras model (functional or sequential).
        image: one image ``(H, W, C)`` or a batch of one ``(1, H, W, C)``.
        layer: the layer's name (or the layer itself); its output must be 4-D.
        max_maps: draw at most this many channels.

    Returns:
        A Matplotlib ``Figure`` with one panel per channel.
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
    """Show the kernels of a ``Conv2D`` layer, one panel per output channel.

    A kernel of shape ``(kh, kw, C_in, C_out)`` is drawn as ``C_out`` images;
    with 3 input channels they are shown as RGB (scaled to [0, 1]), otherwise
    the input channels are averaged. A shared colour scale centred on zero
    makes positive and negative weights comparable.

    Returns:
        A Matplotlib ``Figure``.
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
        history: a dict of lists as in ``keras.callbacks.History.history``
            (``loss``, ``accuracy``, and ``val_loss``, ``val_accuracy`` if any).
        title: the figure's title.

    Returns:
        A Matplotlib ``Figure`` with two panels; epochs count from 1.
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
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def confusion_matrix(labels, predictions, classes):
    """``matrix[true, predicted]`` counts, a ``(classes, classes)`` integer array."""
    matrix = np.zeros((classes, classes), dtype=int)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def plot_confusion_matrix(matrix, class_names=None):
    """Draw a confusion matrix (rows: true class, columns: predicted class) with counts."""
    classes = len(matrix)
    class_names = class_names or [str(i) for i in range(classes)]
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
        axis.set_xticks(range(classes), class_names, rotation=90, fontsize=7)
        axis.set_yticks(range(classes), class_names, fontsize=7)
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"confusion matrix (accuracy {accuracy:.3f})")
    figure.tight_layout()
    return figure

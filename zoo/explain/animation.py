"""An animated convolution: a kernel sliding over an image, filling the output cell by cell.

[`animate_convolution`][] returns a [`GifAnimation`][]: Jupyter shows it
as an animated image, `.save(path)` writes the `.gif` and `.data` holds
its bytes. [`convolution_frames`][] gives the numbers behind each frame.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np

from zoo._io import atomic_path
from zoo.explain import reference
from zoo.explain._figures import new_figure
from zoo.shapes import pair, resolve_padding

__all__ = ["GifAnimation", "animate_convolution", "convolution_frames"]


@dataclass(frozen=True, repr=False)
class GifAnimation:
    """An animated GIF in memory: shown inline by Jupyter, saved by [`save`][].

    Attributes:
        data: the GIF file's bytes.
        frames: how many frames it has.
        size: `(width, height)` of each frame in pixels.
    """

    data: bytes
    frames: int
    size: tuple

    def save(self, path):
        """Write the GIF to `path` (atomically) and return the path."""
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
            dark = (value - vmin) / ((vmax - vmin) or 1.0) > 0.6  # white text on dark cells
            axis.text(
                c,
                r,
                fmt.format(value),
                ha="center",
                va="center",
                fontsize=8,
                color="0.55" if is_padding else ("white" if dark else "black"),
            )
    for r, c in highlight:
        axis.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", lw=2))
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title, fontsize=9)


def convolution_frames(image, kernel, stride=1, padding=0, dilation=1):
    """The states of a 2-D single-channel convolution, one per output position.

    Returns `(padded, mask, output, positions)` where `padded` is the
    zero-padded input, `mask` marks the padding cells, `output` is the
    full result (from [`zoo.explain.reference.conv2d`][]) and `positions` lists,
    for each output cell `(i, j)` in row order, the input cells the dilated
    kernel reads.
    """
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    stride, dilation = pair(stride), pair(dilation)
    pads = [
        resolve_padding(padding, image.shape[a], kernel.shape[a], stride[a], dilation[a])
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
        stride, padding, dilation: as in [`zoo.shapes.conv_output_size`][].
        frame_ms: how long each frame shows.
        title_frame: start with one frame showing the input, kernel and settings.
        size, dpi: figure size in inches and resolution; each frame is
            `round(size[0] * dpi) x round(size[1] * dpi)` pixels.

    The padded cells are drawn in grey, the cells the (dilated) kernel reads
    are outlined in red, so the gaps of a dilation are visible. Colours are
    scaled to the data (input and output each to their own range).

    Returns:
        A [`GifAnimation`][] with one frame per output position (plus the
        title frame). In Jupyter, end a cell with it to watch it; in a script,
        `animate_convolution(...).save("conv.gif")`.
    """
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
        figure = new_figure(size, dpi)
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

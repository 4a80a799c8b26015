"""A person's digit, prepared the way MNIST's digits were: [`preprocess_digit`][].

LeCun, Cortes and Burges made MNIST from NIST's scanned forms by fitting each digit into a
20x20 box (keeping its aspect ratio, anti-aliased) and pasting that into a 28x28 image so
that its centre of mass lies at the centre. A model trained on MNIST has only ever seen
digits made that way: light ink on black, about 20 pixels tall, centred by mass. A photo of
a "4" on paper is none of these things, so this module makes it so:

1. grey levels in [0, 1] (RGB by the ITU-R 601 luma weights; transparency over white);
2. the ink made light on dark: the background is the median of the border pixels, and an
   image whose border is light is inverted; levels are then stretched so the background is 0
   and the brightest ink 1;
3. cropped to the box around the ink (levels of at least `INK_LEVEL`);
4. resized by area averaging so its longer side is `BOX` pixels;
5. pasted into a `SIZE` x `SIZE` black image with its centre of mass at the
   centre (rounded to whole pixels, kept inside the image).

Every step is plain arithmetic, so the explainer page's JavaScript (`docs/explainer/`)
repeats it to within 1/255 per pixel; a test feeds both the same PNG. An image with no
stroke that stands out (blank, too faint, or mostly "ink") is refused with a message, never
answered with a confident guess.
"""

from __future__ import annotations

import math
import os

import numpy as np

from zoo.data.dataset import DataError

__all__ = ["BOX", "INK_LEVEL", "SIZE", "digit_steps", "mnist_prepared", "preprocess_digit"]

SIZE = 28  # MNIST's image side
BOX = 20  # the box MNIST fitted each digit into
INK_LEVEL = 0.25  # a pixel at least this bright (after stretching) counts as ink for the crop
MIN_CONTRAST = 0.2  # the brightest ink must stand this far above the background
MAX_INK_SHARE = 0.5  # more of the image than this is "ink": no clear foreground
MAX_BORDER_INK = 0.2  # more of the border than this is "ink": no plain background
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as Pillow's convert("L")
RING = 2  # MNIST's outermost rows and columns: the 20x20 box centred by mass leaves them dark
RING_LEVEL = 0.02  # their mean level, at most, in a dataset prepared as MNIST was
RING_SAMPLE = 2000  # training images looked at for that


def preprocess_digit(image):
    """`image` as an MNIST-trained model expects it: `(28, 28, 1)` float32 in [0, 1].

    Args:
        image: a path, a `PIL.Image`, or an array `(height, width)`,
            `(height, width, 1)`, `(height, width, 3)` or `(height, width, 4)`
            (uint8 in 0-255, or floats in [0, 1]); any size; dark ink on light paper or
            light ink on dark, grey or colour.

    Returns:
        `numpy.ndarray` of shape `(28, 28, 1)`, float32: light ink on black, the digit
        fitted into 20x20 and centred by its centre of mass, as in MNIST.

    Raises:
        zoo.data.DataError: the image cannot be read, is blank, or has no clear foreground.
    """
    return digit_steps(image)["input"]


def digit_steps(image):
    """Each stage of [`preprocess_digit`][], for pictures that show them.

    Returns a dict of 2-D float arrays: `grey` (the image in grey levels), `ink` (light
    on dark, stretched), `crop` (the box around the ink), `fitted` (resized into the
    20x20 box), and `input` (the `(28, 28, 1)` float32 result).
    """
    grey = _grey_levels(image)
    ink = _light_on_dark(grey)
    crop = _crop_to_ink(ink)
    fitted = _fit_into_box(crop)
    return {
        "grey": grey,
        "ink": ink,
        "crop": crop,
        "fitted": fitted,
        "input": _centre_by_mass(fitted)[..., None].astype("float32"),
    }


def _grey_levels(image):
    """A 2-D float64 array in [0, 1] from a path, a PIL image or an array."""
    if isinstance(image, (str, os.PathLike)):
        image = _open(os.fspath(image))
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image
        image = _pil_array(image)
    array = np.asarray(image)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise DataError(f"a digit image must hold numbers, got dtype {array.dtype}.")
    array = array.astype("float64")
    if np.issubdtype(np.asarray(image).dtype, np.integer) or array.max(initial=0) > 1.0:
        array = array / 255.0
    if not np.all(np.isfinite(array)) or array.min(initial=0) < 0 or array.max(initial=0) > 1:
        raise DataError("a digit image's levels must lie in 0-255 (integers) or [0, 1].")
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = _to_grey(array)
    if array.ndim != 2 or min(array.shape) < 2:
        raise DataError(
            f"a digit image must be (height, width) or (height, width, 1, 3 or 4 channels), "
            f"at least 2x2; got shape {tuple(np.shape(image))}."
        )
    return array


def _open(path):
    from PIL import Image

    if not os.path.isfile(path):
        raise DataError(f"image not found: {path}.")
    try:
        with Image.open(path) as opened:
            opened.load()
            return opened.copy()
    except Exception as error:  # Pillow's own errors name the format problem
        raise DataError(f"cannot read image {path}: {type(error).__name__}: {error}.") from None


def _pil_array(image):
    """uint8 levels: grey images as one channel, any other mode as RGBA (drawn over white)."""
    if image.mode in ("1", "L", "I", "I;16", "F"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGBA"))


def _to_grey(array):
    """Channels to one grey level: alpha over white, RGB by luma weights."""
    if array.shape[-1] == 4:
        alpha = array[..., 3:]
        array = array[..., :3] * alpha + (1.0 - alpha)
    if array.shape[-1] == 3:
        return array @ np.asarray(LUMA)
    return array[..., 0]


def _light_on_dark(grey):
    """Ink bright on a black background, stretched so the brightest ink is 1."""
    if float(np.median(_border(grey))) > 0.5:  # dark ink on light paper
        grey = 1.0 - grey
    ink = np.clip(grey - float(np.median(_border(grey))), 0.0, None)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise DataError(
            "the image looks blank: no stroke stands out from the background "
            f"(contrast {peak:.2f}, needs {MIN_CONTRAST}). Draw the digit darker or thicker, "
            "on a plain background."
        )
    ink = ink / peak
    inked, inked_border = np.mean(ink >= INK_LEVEL), np.mean(_border(ink) >= INK_LEVEL)
    if inked > MAX_INK_SHARE or inked_border > MAX_BORDER_INK:
        raise DataError(
            f"the image has no clear foreground: {inked:.0%} of it and {inked_border:.0%} of "
            "its edge look like ink. Give one digit on a plain background, with some "
            "background around it."
        )
    return ink


def _border(image):
    """The outermost pixels, each once."""
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def _crop_to_ink(ink):
    rows = np.flatnonzero((ink >= INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink >= INK_LEVEL).any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit_into_box(crop):
    """Area-average `crop` so its longer side is `BOX`, keeping its aspect ratio."""
    height, width = crop.shape
    scale = BOX / max(height, width)
    new_height = max(1, math.floor(height * scale + 0.5))
    new_width = max(1, math.floor(width * scale + 0.5))
    return _area_weights(new_height, height) @ crop @ _area_weights(new_width, width).T


def _area_weights(out_size, in_size):
    """`(out_size, in_size)`: how much of each input pixel each output pixel covers,
    rows summing to 1 (a box filter: averaging when shrinking, blocks when growing)."""
    step = in_size / out_size
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        start, stop = i * step, (i + 1) * step
        for k in range(math.floor(start), min(in_size, math.ceil(stop))):
            weights[i, k] = min(stop, k + 1) - max(start, k)
    return weights / step


def _centre_by_mass(fitted):
    """Paste `fitted` into a black SIZE x SIZE image, centre of mass at the centre."""
    height, width = fitted.shape
    mass = fitted.sum()
    centre_row = float((fitted.sum(axis=1) * (np.arange(height) + 0.5)).sum() / mass)
    centre_col = float((fitted.sum(axis=0) * (np.arange(width) + 0.5)).sum() / mass)
    top = min(max(math.floor(SIZE / 2 - centre_row + 0.5), 0), SIZE - height)
    left = min(max(math.floor(SIZE / 2 - centre_col + 0.5), 0), SIZE - width)
    canvas = np.zeros((SIZE, SIZE))
    canvas[top : top + height, left : left + width] = fitted
    return canvas


def mnist_prepared(source, dataset):
    """Whether a model trained on `dataset` (named `source`) wants [`preprocess_digit`][].

    Yes for `"mnist"`, and for a folder of IDX files (MNIST's own file format) whose
    training images are 28x28 with one channel and whose outermost `RING` rows and
    columns are dark (mean level at most `RING_LEVEL` over the first
    `RING_SAMPLE` images), as MNIST's are and Fashion-MNIST's, which fill the frame,
    are not. Anything else (the embedded 8x8 `digits` scaled up, image folders, `.npz`
    files) was prepared some other way: no.
    """
    if source == "mnist":
        return True
    from zoo.data.files import is_idx_folder

    if not isinstance(source, (str, os.PathLike)) or not is_idx_folder(os.fspath(source)):
        return False
    images = dataset.train.images
    if dataset.train.streaming or tuple(images.shape[1:]) != (SIZE, SIZE, 1):
        return False
    sample = np.asarray(images[:RING_SAMPLE], dtype="float64")[..., 0]
    ring = np.ones((SIZE, SIZE), bool)
    ring[RING:-RING, RING:-RING] = False
    return bool(sample[:, ring].mean() <= RING_LEVEL)

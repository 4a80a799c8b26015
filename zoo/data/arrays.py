"""Pixel arrays from a file (an `.npz`, IDX files, Keras's cache), checked and scaled.

Every array goes through one rule, `PIXEL_RULE`, chosen by dtype and
then by range; what the rule cannot read is refused, never clipped or
guessed. [`checked_split`][] also refuses arrays that are not channels-last
images (flat rows, channels-first, 5-D), labels that are not class indices,
and images whose `float32` copy would not fit in memory, each with one
line that says how to save the data instead.
"""

from __future__ import annotations

import numpy as np

from zoo.data.dataset import DataError, Split
from zoo.data.images import check_memory

__all__ = ["PIXEL_RULE", "checked_split", "to_unit_float"]

PIXEL_RULE = (
    "uint8 pixels are divided by 255 and uint16 by 65535 (a uint16 array whose values stop at "
    "255 is refused as 8-bit data stored wide); other integer types must lie in 0..255 and are "
    "divided by 255; bool becomes 0 and 1; floats in [0, 1] are kept, and floats that are all "
    "whole numbers in 0..255 are divided by 255. Anything else (negative or standardised "
    "values, other floats above 1, NaN or infinity) is refused: scale the images to [0, 1] first."
)


def to_unit_float(images, where="images"):
    """Pixels as `float32` in [0, 1] by `PIXEL_RULE`; gray `(N, H, W)` gains a channel.

    The rule goes by dtype first, because the range alone cannot tell 16-bit
    from 8-bit pixels, and refuses rather than clips: a standardised array
    clipped to [0, 1] trains without error on images that are mostly black.
    `where` names the array in the error (the file and the split).
    """
    images = _scaled(np.asarray(images), where)
    return images[..., None] if images.ndim == 3 else images


def _scaled(images, where):
    """`images` as `float32` in [0, 1], or a [`DataError`][] naming what broke the rule."""
    kind = images.dtype.kind
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    if kind == "b" or images.size == 0:
        return images.astype("float32")
    if kind in "iu":
        return _scaled_integers(images, where)
    if kind == "f":
        return _scaled_floats(images, where)
    raise DataError(
        f"{where}: images of dtype {images.dtype} are not pixel values; save them as uint8, "
        "uint16 or float32 in [0, 1]."
    )


def _scaled_integers(images, where):
    low, high = int(images.min()), int(images.max())
    if images.dtype == np.uint16:
        if high > 255:
            return images.astype("float32") / 65535.0
        raise DataError(
            f"{where}: uint16 images whose values stop at {high} look like 8-bit images stored "
            "as 16-bit, which would train nearly black (uint16 is divided by 65535). Save them "
            "as uint8 (x.astype('uint8')), or use the full 0..65535 range."
        )
    if low < 0 or high > 255:
        raise DataError(
            f"{where}: {images.dtype} pixel values run from {low} to {high}, outside 0..255 "
            "(integers other than uint16 are read as 8-bit). Save 16-bit images as uint16, "
            "others as float32 scaled to [0, 1]."
        )
    return images.astype("float32") / 255.0


def _scaled_floats(images, where):
    bad = int(np.count_nonzero(~np.isfinite(images)))
    if bad:
        first = np.unravel_index(int(np.argmax(~np.isfinite(images))), images.shape)[0]
        raise DataError(
            f"{where}: {bad} pixel value(s) are NaN or infinite (the first in image {first}); "
            "replace them or remove those images before training."
        )
    low, high = float(images.min()), float(images.max())
    if low >= 0.0 and high <= 1.0:
        return images.astype("float32")
    if low >= 0.0 and high <= 255.0 and np.array_equal(images, np.round(images)):
        return images.astype("float32") / 255.0  # 8-bit pixels stored as floats
    raise DataError(
        f"{where}: float pixel values run from {low:.4g} to {high:.4g}, outside [0, 1], and are "
        "not whole numbers 0..255; the zoo does not clip or guess a scale. Scale them to [0, 1] "
        "first, e.g. (x - x.min()) / (x.max() - x.min()), or save 8-bit images as uint8."
    )


def _checked_labels(labels, source, split):
    """Integer class indices from what a file stored, or one error naming the first bad one."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise DataError(
            f"{source}: {split} labels have shape {labels.shape}, which looks one-hot; store "
            "one class index per image instead (y.argmax(axis=1))."
        )
    labels = labels.ravel()
    if labels.dtype.kind in "iu":
        return labels.astype("int64")
    if labels.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
        if bad.size == 0:
            return labels.astype("int64")
        first = int(bad[0])
        value = labels[first].item()
    else:
        first, value = 0, labels[0].item() if labels.size else None
    raise DataError(
        f"{source}: {split} label at index {first} is {value!r} ({labels.dtype}); labels must be "
        "whole-number class indices 0..K-1 (store names in class_names)."
    )


def _check_image_shape(shape, source, split):
    """Refuse arrays that are not `(N, H, W)` or `(N, H, W, C)` channels-last images."""
    where = f"{source}: {split} images have shape {shape}"
    if len(shape) <= 1:
        raise DataError(
            f"{where}, not an array of images; save x of shape (N, H, W) or (N, H, W, C)."
        )
    if len(shape) == 2:
        raise DataError(f"{where}, which looks flattened: {_reshape_hint(shape)}")
    if len(shape) > 4:
        raise DataError(
            f"{where}: {len(shape)} dimensions, where images are (N, H, W) or (N, H, W, C); "
            "save one image per row of the first axis."
        )
    if len(shape) == 4 and shape[1] in (1, 3) and min(shape[2:]) > 4 and shape[3] not in (1, 3):
        raise DataError(
            f"{where}, which looks channels-first (N, C, H, W); the zoo is channels-last. Save "
            f"x.transpose(0, 2, 3, 1), of shape {(shape[0], shape[2], shape[3], shape[1])}."
        )
    if len(shape) == 4 and shape[3] not in (1, 3, 4):
        raise DataError(
            f"{where}: {shape[3]} channels, where the zoo reads 1 (gray), 3 (RGB) or 4 (RGBA, "
            "composited over white); save channels-last images with one of those."
        )


def _reshape_hint(shape):
    """How to reshape `(N, F)` rows back into images, with the square side when there is one."""
    count, features = shape
    for channels in (1, 3):
        side = int(round((features / channels) ** 0.5))
        if side * side * channels == features:
            return (
                f"reshape it to (N, H, W[, C]) before saving, e.g. x.reshape({count}, {side}, "
                f"{side}, {channels})."
            )
    return "reshape it to (N, H, W[, C]) before saving."


def _on_white(images):
    """RGBA arrays composited over white (as image files are), leaving RGB; others unchanged."""
    if images.shape[-1] != 4:
        return images
    alpha = images[..., 3:]
    return images[..., :3] * alpha + (1.0 - alpha)


def checked_split(images, labels, source, split):
    """A [`Split`][] of in-memory images, after checking what a file gave.

    Refuses images and labels of different counts, labels that are not whole
    numbers or look one-hot, arrays that are not channels-last images (flat
    rows, channels-first, 0-d, 5-D), pixels `PIXEL_RULE` cannot read,
    and images whose `float32` copy would not fit in memory.
    """
    images = np.asarray(images)
    _check_image_shape(images.shape, source, split)
    labels = _checked_labels(labels, source, split)
    if len(images) != len(labels):
        raise DataError(
            f"{source}: {split} has {len(images)} images but {len(labels)} labels; they must "
            "match one to one."
        )
    check_memory(
        images.size * 4,
        f"{source}: the {split} images as float32",
        "use fewer images, or a folder of image files (read batch by batch).",
    )
    return Split(_on_white(to_unit_float(images, f"{source}: {split} images")), labels)

"""Images as the models take them: [0, 1] floats, the model's channels and size.

Only NumPy and Pillow are used, so a JAX-only or PyTorch-only install works.
:func:`make_inputs` turns a split into what ``model.fit`` takes: in-memory
``float32`` arrays at the model's input size when they fit in memory,
otherwise a ``keras.utils.PyDataset`` that loads (files) or resizes (arrays)
one batch at a time.
"""

from __future__ import annotations

import numpy as np

from zoo.data.dataset import DataError, Split

__all__ = [
    "to_unit_float",
    "checked_split",
    "convert_channels",
    "resize_images",
    "load_image_file",
    "prepare_arrays",
    "make_inputs",
    "IMAGE_EXTENSIONS",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MEMORY_BUDGET_BYTES = 1 << 30  # resize batch by batch above 1 GiB of float32 images


def to_unit_float(images):
    """Scale integer images to [0, 1] and add a channel axis to gray images."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype("float32") / 255.0
    else:
        images = images.astype("float32")
        top = float(images.max()) if images.size else 1.0
        if top > 1.0:
            images = images / 255.0
    if images.ndim == 3:
        images = images[..., None]
    return images


def _checked_labels(labels, source, split):
    """Integer class indices from what a file stored, or one error naming the first bad one."""
    labels = np.asarray(labels).ravel()
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


def checked_split(images, labels, source, split):
    """A :class:`Split` of in-memory images, after checking what a file gave.

    Refuses images and labels of different counts, labels that are not whole
    numbers, and images that look channels-first ``(N, C, H, W)``.
    """
    images = np.asarray(images)
    labels = _checked_labels(labels, source, split)
    if len(images) != len(labels):
        raise DataError(
            f"{source}: {split} has {len(images)} images but {len(labels)} labels; they must "
            "match one to one."
        )
    shape = images.shape
    if len(shape) == 4 and shape[1] in (1, 3) and min(shape[2:]) > 4 and shape[3] not in (1, 3):
        raise DataError(
            f"{source}: {split} images have shape {shape}, which looks channels-first "
            f"(N, C, H, W); the zoo is channels-last. Save x.transpose(0, 2, 3, 1), of shape "
            f"{(shape[0], shape[2], shape[3], shape[1])}."
        )
    return Split(to_unit_float(images), labels)


def convert_channels(images, channels):
    """Gray to RGB (repeat) or RGB to gray (ITU-R 601 luma); channels-last."""
    have = images.shape[-1]
    if have == channels:
        return images
    if have == 1:
        return np.repeat(images, channels, axis=-1)
    if channels == 1 and have in (3, 4):
        weights = np.array([0.299, 0.587, 0.114], dtype=images.dtype)
        return (images[..., :3] @ weights)[..., None]
    raise DataError(
        f"cannot convert images with {have} channels to {channels}; "
        "use 1 (gray) or 3 (RGB) channels."
    )


def resize_images(images, size):
    """Bilinear resize of ``(N, H, W, C)`` float images to ``size = (height, width)``."""
    from PIL import Image

    height, width = size
    if images.shape[1:3] == (height, width):
        return images
    out = np.empty((len(images), height, width, images.shape[-1]), dtype="float32")
    for i, image in enumerate(images):
        for c in range(images.shape[-1]):
            plane = Image.fromarray(np.ascontiguousarray(image[..., c], dtype="float32"), mode="F")
            out[i, ..., c] = np.asarray(plane.resize((width, height), Image.BILINEAR))
    return out


def _unit_pixels(image, channels, size):
    """A Pillow image as float32 in [0, 1], resized; 16-bit images keep their depth.

    ``convert("L")`` would clip a 16-bit image (values up to 65535) to 255,
    turning it black and white, so those are scaled by 65535 instead.
    """
    from PIL import Image

    if image.mode.startswith("I"):  # 16-bit gray ("I;16", "I;16B") or 32-bit integers ("I")
        pixels = np.asarray(image, dtype="float64")
        depth = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        plane = Image.fromarray((pixels / depth).astype("float32"), mode="F")
        array = np.asarray(plane.resize(size, Image.BILINEAR), dtype="float32")
        return array if channels == 1 else np.repeat(array[..., None], 3, axis=-1)
    image = image.convert("L" if channels == 1 else "RGB").resize(size, Image.BILINEAR)
    return np.asarray(image, dtype="float32") / 255.0


def load_image_file(path, input_shape):
    """Read one image with Pillow, as ``float32`` in [0, 1] at ``input_shape``."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = input_shape
    try:
        with Image.open(path) as image:
            array = _unit_pixels(image, channels, (width, height))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}. Remove or replace the file.") from None
    return array[..., None] if channels == 1 else array


def _make_sequence_class():
    import keras

    class ImageBatches(keras.utils.PyDataset):
        """Batches of images prepared on demand: loaded from files or resized from arrays.

        ``source`` is a list of file paths or an ``(N, H, W, C)`` array; each
        batch comes back as ``float32`` at ``input_shape`` with its labels.
        """

        def __init__(self, source, labels, input_shape, batch_size, shuffle=False, seed=0):
            super().__init__()
            self.source, self.labels = source, np.asarray(labels)
            self.input_shape, self.batch_size = tuple(input_shape), batch_size
            self.shuffle, self.rng = shuffle, np.random.default_rng(seed)
            self.order = np.arange(len(self.labels))
            if shuffle:
                self.rng.shuffle(self.order)

        def __len__(self):
            return int(np.ceil(len(self.labels) / self.batch_size))

        def __getitem__(self, index):
            chosen = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            if isinstance(self.source, np.ndarray):
                images = convert_channels(self.source[chosen], self.input_shape[2])
                images = resize_images(images, self.input_shape[:2])
            else:
                images = np.stack(
                    [load_image_file(self.source[i], self.input_shape) for i in chosen]
                )
            return images.astype("float32"), self.labels[chosen]

        def on_epoch_end(self):
            if self.shuffle:
                self.rng.shuffle(self.order)

    return ImageBatches


def prepare_arrays(images, input_shape):
    """Channels converted and resized: the whole array, ready for ``fit``."""
    images = convert_channels(images, input_shape[2])
    return np.ascontiguousarray(resize_images(images, input_shape[:2]), dtype="float32")


def fits_in_memory(count, input_shape):
    return count * int(np.prod(input_shape)) * 4 <= MEMORY_BUDGET_BYTES


def make_inputs(source, labels, input_shape, batch_size, shuffle=False, seed=0, one_hot=None):
    """What ``fit``/``evaluate`` take for these images at ``input_shape``.

    Returns ``(x, y)`` arrays when the resized images fit in memory (the
    fast path: no per-batch work), otherwise ``(ImageBatches, None)``. With
    ``one_hot`` (the number of classes) the labels become ``(N, one_hot)``
    float32 rows of zeros and a one, as a label-smoothed loss takes them.
    """
    labels = np.asarray(labels)
    if one_hot is not None:
        labels = np.eye(one_hot, dtype="float32")[labels]
    if isinstance(source, np.ndarray) and fits_in_memory(len(labels), input_shape):
        return prepare_arrays(source, input_shape), labels
    batches = _make_sequence_class()(source, labels, input_shape, batch_size, shuffle, seed)
    return batches, None

"""Images as the models take them: [0, 1] floats, the model's channels and size.

Only NumPy and Pillow are used, so a JAX-only or PyTorch-only install works.
:func:`make_inputs` turns a split into what ``model.fit`` takes: in-memory
``float32`` arrays at the model's input size when they fit in memory,
otherwise a ``keras.utils.PyDataset`` that loads (files) or resizes (arrays)
one batch at a time.

Pixel arrays (an ``.npz``, IDX files, Keras's cached sets) are scaled to
[0, 1] by one rule, :data:`PIXEL_RULE`, chosen by dtype and then by range;
what the rule cannot read is refused, never clipped or guessed. Image files
are read as a viewer shows them: turned upright by their EXIF orientation and
with transparent pixels composited over white.
"""

from __future__ import annotations

import os

import numpy as np

from zoo.data.dataset import DataError, Split

__all__ = [
    "PIXEL_RULE",
    "to_unit_float",
    "checked_split",
    "convert_channels",
    "resize_images",
    "load_image_file",
    "prepare_arrays",
    "make_inputs",
    "available_memory",
    "check_memory",
    "IMAGE_EXTENSIONS",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MEMORY_BUDGET_BYTES = 1 << 30  # resize batch by batch above 1 GiB of float32 images

PIXEL_RULE = (
    "uint8 pixels are divided by 255 and uint16 by 65535 (a uint16 array whose values stop at "
    "255 is refused as 8-bit data stored wide); other integer types must lie in 0..255 and are "
    "divided by 255; bool becomes 0 and 1; floats in [0, 1] are kept, and floats that are all "
    "whole numbers in 0..255 are divided by 255. Anything else (negative or standardised "
    "values, other floats above 1, NaN or infinity) is refused: scale the images to [0, 1] first."
)


def to_unit_float(images, where="images"):
    """Pixels as ``float32`` in [0, 1] by :data:`PIXEL_RULE`; gray ``(N, H, W)`` gains a channel.

    The rule goes by dtype first, because the range alone cannot tell 16-bit
    from 8-bit pixels, and refuses rather than clips: a standardised array
    clipped to [0, 1] trains without error on images that are mostly black.
    ``where`` names the array in the error (the file and the split).
    """
    images = _scaled(np.asarray(images), where)
    return images[..., None] if images.ndim == 3 else images


def _scaled(images, where):
    """``images`` as ``float32`` in [0, 1], or a :class:`DataError` naming what broke the rule."""
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
    """Refuse arrays that are not ``(N, H, W)`` or ``(N, H, W, C)`` channels-last images."""
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
    """How to reshape ``(N, F)`` rows back into images, with the square side when there is one."""
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
    """A :class:`Split` of in-memory images, after checking what a file gave.

    Refuses images and labels of different counts, labels that are not whole
    numbers or look one-hot, arrays that are not channels-last images (flat
    rows, channels-first, 0-d, 5-D), pixels :data:`PIXEL_RULE` cannot read,
    and images whose ``float32`` copy would not fit in memory.
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


def _upright(image):
    """The image turned as its EXIF orientation tag says.

    Cameras store a portrait photo sideways and tag it; viewers turn it, so
    the user labelled the turned picture.
    """
    from PIL import ImageOps

    if image.getexif().get(0x0112, 1) in (None, 1):  # 0x0112: Orientation; 1 is upright
        return image
    return ImageOps.exif_transpose(image)


def _over_white(image):
    """An image with transparency composited over white; others unchanged.

    Converting to RGB or L alone drops the alpha channel and shows whatever
    colour the transparent pixels happen to hold (often black); a viewer or
    a browser shows them over a white page.
    """
    from PIL import Image

    if image.mode.startswith("I") or not (
        image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    ):
        return image
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)


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
    """Read one image with Pillow, as ``float32`` in [0, 1] at ``input_shape``.

    The image is turned upright (EXIF orientation) and transparent pixels are
    composited over white before it is converted and resized.
    """
    from PIL import Image, UnidentifiedImageError

    height, width, channels = input_shape
    try:
        with Image.open(path) as image:
            array = _unit_pixels(_over_white(_upright(image)), channels, (width, height))
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


def available_memory():
    """Bytes of memory this process can still use, or ``None`` where the system does not say.

    Linux's ``MemAvailable`` (else ``os.sysconf``), lowered to what a cgroup
    (a container's) memory limit leaves, since that limit is what kills the
    process.
    """
    free = _meminfo_available()
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    limit = _cgroup_room()
    return free if limit is None else min(free, limit)


def _meminfo_available():
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room():
    """What a cgroup v2 memory limit leaves (``memory.max - memory.current``); None if none."""
    try:
        with (
            open("/sys/fs/cgroup/memory.max") as limit,
            open("/sys/fs/cgroup/memory.current") as used,
        ):
            top = limit.read().strip()
            return None if top == "max" else max(int(top) - int(used.read()), 0)
    except (OSError, ValueError):
        return None


def _size(count):
    """Bytes as MiB below a GiB, else GiB: ``8 MiB``, ``2.3 GiB``."""
    return f"{count / (1 << 30):.1f} GiB" if count >= 1 << 30 else f"{count / (1 << 20):.0f} MiB"


def check_memory(nbytes, what, fix):
    """Refuse (one line naming ``what`` and ``fix``) ``nbytes`` above half the memory available.

    Half, because training needs room beside the data: the model, its
    gradients and the framework. Running out of memory kills the process with
    no message, or stalls the machine swapping; a refusal says what to change.
    """
    available = available_memory()
    if available is not None and nbytes > available / 2:
        raise DataError(
            f"{what} would need {_size(nbytes)}, more than half of the {_size(available)} of "
            f"memory available; {fix}"
        )


def fits_in_memory(count, input_shape):
    """True when ``count`` images at ``input_shape`` can be prepared at once as ``float32``."""
    nbytes = count * int(np.prod(input_shape)) * 4
    available = available_memory()
    return nbytes <= MEMORY_BUDGET_BYTES and (available is None or nbytes <= available / 2)


def make_inputs(source, labels, input_shape, batch_size, shuffle=False, seed=0, one_hot=None):
    """What ``fit``/``evaluate`` take for these images at ``input_shape``.

    Returns ``(x, y)`` arrays when the resized images fit in memory (the
    fast path: no per-batch work), otherwise ``(ImageBatches, None)``. Even a
    single batch is prepared in memory, so one that cannot fit is refused
    (:func:`check_memory`). With ``one_hot`` (the number of classes) the labels
    become ``(N, one_hot)`` float32 rows of zeros and a one, as a
    label-smoothed loss takes them.
    """
    labels = np.asarray(labels)
    if one_hot is not None:
        labels = np.eye(one_hot, dtype="float32")[labels]
    if isinstance(source, np.ndarray) and fits_in_memory(len(labels), input_shape):
        return prepare_arrays(source, input_shape), labels
    height, width, channels = input_shape
    check_memory(
        min(batch_size, len(labels)) * height * width * channels * 4,
        f"one batch of {batch_size} images at {height}x{width}x{channels} as float32",
        "lower --image-size or --batch-size.",
    )
    batches = _make_sequence_class()(source, labels, input_shape, batch_size, shuffle, seed)
    return batches, None

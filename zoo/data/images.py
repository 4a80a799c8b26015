"""Images as the models take them: [0, 1] floats, the model's channels and size.

Only NumPy and Pillow are used, so a JAX-only or PyTorch-only install works.
[`make_inputs`][] turns a split into what `model.fit` takes: in-memory
`float32` arrays at the model's input size when they fit in memory,
otherwise a `keras.utils.PyDataset` that loads (files) or resizes (arrays)
one batch at a time; [`check_memory`][] refuses what would not fit.

Image files are read as a viewer shows them: turned upright by their EXIF
orientation and with transparent pixels composited over white. Pixel arrays
(an `.npz`, IDX files, Keras's cached sets) are checked and scaled by
[`zoo.data.arrays`][].
"""

from __future__ import annotations

import os

import numpy as np

from zoo.data.dataset import DataError

__all__ = [
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
    """Bilinear resize of `(N, H, W, C)` float images to `size = (height, width)`."""
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

    `convert("L")` would clip a 16-bit image (values up to 65535) to 255,
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
    """Read one image with Pillow, as `float32` in [0, 1] at `input_shape`.

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

        `source` is a list of file paths or an `(N, H, W, C)` array; each
        batch comes back as `float32` at `input_shape` with its labels.
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
    """Channels converted and resized: the whole array, ready for `fit`."""
    images = convert_channels(images, input_shape[2])
    return np.ascontiguousarray(resize_images(images, input_shape[:2]), dtype="float32")


def available_memory():
    """Bytes of memory this process can still use, or `None` where the system does not say.

    Linux's `MemAvailable` (else `os.sysconf`), lowered to what a cgroup
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
    """What a cgroup v2 memory limit leaves (`memory.max - memory.current`); None if none."""
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
    """Bytes as MiB below a GiB, else GiB: `8 MiB`, `2.3 GiB`."""
    return f"{count / (1 << 30):.1f} GiB" if count >= 1 << 30 else f"{count / (1 << 20):.0f} MiB"


def check_memory(nbytes, what, fix):
    """Refuse (one line naming `what` and `fix`) `nbytes` above half the memory available.

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
    """True when `count` images at `input_shape` can be prepared at once as `float32`."""
    nbytes = count * int(np.prod(input_shape)) * 4
    available = available_memory()
    return nbytes <= MEMORY_BUDGET_BYTES and (available is None or nbytes <= available / 2)


def make_inputs(source, labels, input_shape, batch_size, shuffle=False, seed=0, one_hot=None):
    """What `fit`/`evaluate` take for these images at `input_shape`.

    Returns `(x, y)` arrays when the resized images fit in memory (the
    fast path: no per-batch work), otherwise `(ImageBatches, None)`. Even a
    single batch is prepared in memory, so one that cannot fit is refused
    ([`check_memory`][]). With `one_hot` (the number of classes) the labels
    become `(N, one_hot)` float32 rows of zeros and a one, as a
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

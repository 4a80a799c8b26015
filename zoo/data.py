"""Datasets for training: an embedded default, Keras's cached sets, and your own files.

``load_dataset(source)`` understands:

- ``"digits"``: scikit-learn's 1,797 real 8x8 handwritten digits (shipped
  inside scikit-learn, no download), with a fixed stratified train/test split.
- ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``: read from Keras's cache
  (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``); if the file is
  not there, Keras's own loader downloads it once, and offline you get an
  error naming the file and where to put it.
- a folder of class subfolders of images (PNG/JPEG), optionally with
  ``train/`` and ``test/`` above them;
- an ``.npz`` file with ``x_train, y_train, x_test, y_test`` (and optionally
  ``class_names``);
- a folder of MNIST IDX files (``*-images-idx3-ubyte[.gz]`` and
  ``*-labels-idx1-ubyte[.gz]``); a test set alone is split in two.

:func:`make_inputs` then turns the data into what ``model.fit`` takes:
in-memory ``float32`` arrays at the model's input size when they fit in
memory, otherwise a ``keras.utils.PyDataset`` that loads (folders) or
resizes (arrays) one batch at a time. Images are scaled to [0, 1] and
converted to the model's channels. Only NumPy and Pillow are used, so a
JAX-only or PyTorch-only install works.
"""

from __future__ import annotations

import glob
import gzip
import os
import pickle
from dataclasses import dataclass, field

import numpy as np

from zoo.errors import ZooError

__all__ = [
    "DataError",
    "ArrayData",
    "FolderData",
    "load_dataset",
    "make_inputs",
    "read_idx",
    "resize_images",
    "convert_channels",
    "BUILTIN_DATASETS",
]

BUILTIN_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MEMORY_BUDGET_BYTES = 1 << 30  # resize batch by batch above 1 GiB of float32 images
TEST_FRACTION = 0.2


class DataError(ZooError):
    """A dataset could not be found or read; the message says what to do."""


class _Sizes:
    """Image counts shared by both kinds of dataset."""

    @property
    def train_size(self):
        return len(self.y_train)

    @property
    def test_size(self):
        return len(self.y_test)


@dataclass
class ArrayData(_Sizes):
    """Images held in memory at their stored size, scaled to [0, 1].

    ``x_*`` are ``float32`` arrays ``(N, H, W, C)``; ``y_*`` integer labels.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list = field(default_factory=list)

    def subset_train(self, indices):
        return self.x_train[indices], self.y_train[indices]


@dataclass
class FolderData(_Sizes):
    """Images on disk: file paths and labels, read with Pillow one batch at a time."""

    name: str
    train_files: list
    y_train: np.ndarray
    test_files: list
    y_test: np.ndarray
    class_names: list = field(default_factory=list)

    def subset_train(self, indices):
        return [self.train_files[i] for i in indices], self.y_train[indices]


# --------------------------------------------------------------------------- splits


def stratified_split(labels, test_fraction=TEST_FRACTION, seed=0):
    """Indices ``(train, test)`` holding ``test_fraction`` of every class in test.

    Deterministic for a given ``seed``; both index lists come back sorted.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = int(round(len(members) * test_fraction))
        test.extend(members[:count])
        train.extend(members[count:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(test, dtype=int))


def _ordered_split(count, test_fraction=TEST_FRACTION):
    """First ``1 - test_fraction`` for training, the rest for testing (MNIST t10k: 8,000/2,000)."""
    cut = int(round(count * (1 - test_fraction)))
    return np.arange(cut), np.arange(cut, count)


# --------------------------------------------------------------------------- image helpers


def _to_unit_float(images):
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


def load_image_file(path, input_shape):
    """Read one image with Pillow, as ``float32`` in [0, 1] at ``input_shape``."""
    from PIL import Image, UnidentifiedImageError

    height, width, channels = input_shape
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            image = image.resize((width, height), Image.BILINEAR)
            array = np.asarray(image, dtype="float32") / 255.0
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}. Remove or replace the file.") from None
    return array[..., None] if channels == 1 else array


# --------------------------------------------------------------------------- readers


def read_idx(path):
    """Read an MNIST IDX file (``.gz`` or not) into a NumPy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise DataError(f"cannot read IDX file {path}: {error}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic number).")
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise DataError(
            f"{path} is truncated: expected {int(np.prod(shape))} values, got {body.size}."
        )
    return body.reshape(shape)


def _load_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    labels = digits.target.astype("int64")
    train, test = stratified_split(labels, TEST_FRACTION, seed=0)
    return ArrayData(
        "digits",
        images[train],
        labels[train],
        images[test],
        labels[test],
        [str(d) for d in range(10)],
    )


def keras_cache_dir():
    """Where Keras caches datasets: ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


KERAS_CACHE_FILES = {
    "mnist": ["mnist.npz"],
    "fashion_mnist": [
        os.path.join("fashion-mnist", name)
        for name in (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        )
    ],
    "cifar10": [
        os.path.join("cifar-10-batches-py-target", name)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    ],
}

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": [
        "t-shirt/top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ],
    "cifar10": [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ],
}


def _read_keras_cache(name, directory):
    """Read a Keras dataset from the files its loader leaves in the cache."""
    paths = [os.path.join(directory, f) for f in KERAS_CACHE_FILES[name]]
    if name == "mnist":
        with np.load(paths[0], allow_pickle=False) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    if name == "fashion_mnist":
        y_train, x_train, y_test, x_test = (read_idx(p) for p in paths)
        return (x_train, y_train), (x_test, y_test)
    batches = []
    for path in paths:  # CIFAR-10's own format: pickled dicts of a (N, 3072) uint8 array
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        batches.append((images.transpose(0, 2, 3, 1), np.asarray(batch[b"labels"])))
    x_train = np.concatenate([b[0] for b in batches[:-1]])
    y_train = np.concatenate([b[1] for b in batches[:-1]])
    return (x_train, y_train), batches[-1]


def _load_keras_dataset(name):
    directory = keras_cache_dir()
    expected = [os.path.join(directory, f) for f in KERAS_CACHE_FILES[name]]
    if all(os.path.isfile(p) for p in expected):
        (x_train, y_train), (x_test, y_test) = _read_keras_cache(name, directory)
    else:
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
        except Exception as error:  # no network, a proxy, a refused download...
            missing = [p for p in expected if not os.path.isfile(p)]
            raise DataError(
                f"dataset '{name}' is not in Keras's cache and could not be downloaded "
                f"({type(error).__name__}). Missing: {', '.join(missing)}. Download it on a "
                f"machine with internet (keras.datasets.{name}.load_data()) and copy the "
                f"file(s) to {directory}, or set KERAS_HOME to a folder that has them."
            ) from None
    return ArrayData(
        name,
        _to_unit_float(x_train),
        np.asarray(y_train).ravel().astype("int64"),
        _to_unit_float(x_test),
        np.asarray(y_test).ravel().astype("int64"),
        CLASS_NAMES[name],
    )


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
            if missing:
                raise DataError(
                    f"{path} lacks {', '.join(sorted(missing))}: an .npz dataset needs "
                    "x_train, y_train, x_test and y_test (and may add class_names)."
                )
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"cannot read {path} as .npz: {error}") from None
    labels = np.concatenate([arrays["y_train"].ravel(), arrays["y_test"].ravel()])
    count = int(labels.max()) + 1 if labels.size else 0
    names = [str(n) for n in arrays.get("class_names", [str(i) for i in range(count)])]
    return ArrayData(
        os.path.basename(path),
        _to_unit_float(arrays["x_train"]),
        arrays["y_train"].ravel().astype("int64"),
        _to_unit_float(arrays["x_test"]),
        arrays["y_test"].ravel().astype("int64"),
        names,
    )


def _find_idx(directory, kind):
    pattern = "*-images-idx3-ubyte*" if kind == "images" else "*-labels-idx1-ubyte*"
    return sorted(glob.glob(os.path.join(directory, pattern)))


def _load_idx_folder(directory):
    images, labels = _find_idx(directory, "images"), _find_idx(directory, "labels")

    def pair(prefix):
        img = [p for p in images if os.path.basename(p).startswith(prefix)]
        lab = [p for p in labels if os.path.basename(p).startswith(prefix)]
        return (read_idx(img[0]), read_idx(lab[0])) if img and lab else None

    train, test = pair("train"), pair("t10k") or pair("test")
    if test is None and train is None:
        test = (read_idx(images[0]), read_idx(labels[0]))
    if train is None:  # a test set alone: first 80 % to train, last 20 % to test
        x, y = test
        if len(x) != len(y):
            raise DataError(f"{directory}: {len(x)} images but {len(y)} labels.")
        first, last = _ordered_split(len(y))
        train, test = (x[first], y[first]), (x[last], y[last])
    y_all = np.concatenate([train[1], test[1]])
    return ArrayData(
        os.path.basename(os.path.normpath(directory)),
        _to_unit_float(train[0]),
        train[1].astype("int64"),
        _to_unit_float(test[0]),
        test[1].astype("int64"),
        [str(i) for i in range(int(y_all.max()) + 1)],
    )


def _class_folders(directory):
    return sorted(
        d
        for d in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")
    )


def _list_images(directory, class_names):
    files, labels = [], []
    for label, name in enumerate(class_names):
        for root, _, names in os.walk(os.path.join(directory, name)):
            for file in sorted(names):
                if file.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(os.path.join(root, file))
                    labels.append(label)
    return files, np.array(labels, dtype="int64")


def _load_image_folder(directory):
    subfolders = _class_folders(directory)
    if "train" in subfolders and "test" in subfolders:
        class_names = _class_folders(os.path.join(directory, "train"))
        train_files, y_train = _list_images(os.path.join(directory, "train"), class_names)
        test_files, y_test = _list_images(os.path.join(directory, "test"), class_names)
    else:
        class_names = subfolders
        files, labels = _list_images(directory, class_names)
        train, test = stratified_split(labels, TEST_FRACTION, seed=0)
        train_files, y_train = [files[i] for i in train], labels[train]
        test_files, y_test = [files[i] for i in test], labels[test]
    if not train_files or not test_files:
        raise DataError(
            f"no images found in {directory}: expected class subfolders of "
            f"{'/'.join(IMAGE_EXTENSIONS)} files (e.g. {directory}/cat/1.jpg), optionally "
            "under train/ and test/."
        )
    return FolderData(
        os.path.basename(os.path.normpath(directory)),
        train_files,
        y_train,
        test_files,
        y_test,
        class_names,
    )


def load_dataset(source, limit=None):
    """Load a dataset by name or path (see the module docstring).

    Args:
        source: ``"digits"``, ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
            or a path to a folder of images, an ``.npz`` file or an IDX folder.
        limit: keep only the first ``limit`` training images (quick runs).

    Returns:
        An :class:`ArrayData` or a :class:`FolderData`.

    Raises:
        DataError: unknown name, missing path or cache file, unreadable files.
    """
    source = os.fspath(source)
    if source == "digits":
        data = _load_digits()
    elif source in KERAS_CACHE_FILES:
        data = _load_keras_dataset(source)
    elif not os.path.exists(source):
        raise DataError(
            f"unknown dataset '{source}': not one of {', '.join(BUILTIN_DATASETS)} and no "
            "such file or folder. Give a built-in name or a path to your data."
        )
    elif os.path.isfile(source):
        if not source.endswith(".npz"):
            raise DataError(f"{source} is a file but not an .npz; give an .npz or a folder.")
        data = _load_npz(source)
    elif _find_idx(source, "images") and _find_idx(source, "labels"):
        data = _load_idx_folder(source)
    else:
        data = _load_image_folder(source)
    if data.train_size == 0 or data.test_size == 0:
        raise DataError(f"dataset '{source}' has no training or no test images.")
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit must be at least 1, got {limit}.")
        keep = np.arange(min(limit, data.train_size))
        data = _with_train(data, *data.subset_train(keep))
    return data


def _with_train(data, x, y):
    if isinstance(data, ArrayData):
        return ArrayData(data.name, x, y, data.x_test, data.y_test, data.class_names)
    return FolderData(data.name, x, y, data.test_files, data.y_test, data.class_names)


def check_labels(data, classes):
    """Every label must be an integer in ``[0, classes)``."""
    for split, labels in (("training", data.y_train), ("test", data.y_test)):
        check_label_range(labels, classes, split)


def check_label_range(labels, classes, split="training"):
    """Raise :class:`DataError` unless every label of ``split`` is in ``[0, classes)``."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(
            f"{split} labels run from {labels.min()} to {labels.max()}, but the model has "
            f"{classes} classes (labels 0..{classes - 1}). Pass --classes "
            f"{max(int(labels.max()) + 1, classes)} or fix the labels."
        )


# --------------------------------------------------------------------------- inputs for fit


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


def make_inputs(source, labels, input_shape, batch_size, shuffle=False, seed=0):
    """What ``fit``/``evaluate`` take for these images at ``input_shape``.

    Returns ``(x, y)`` arrays when the resized images fit in memory (the
    fast path: no per-batch work), otherwise ``(ImageBatches, None)``.
    """
    labels = np.asarray(labels)
    if isinstance(source, np.ndarray) and fits_in_memory(len(labels), input_shape):
        return prepare_arrays(source, input_shape), labels
    batches = _make_sequence_class()(source, labels, input_shape, batch_size, shuffle, seed)
    return batches, None

"""The named datasets: scikit-learn's digits (embedded) and Keras's cached sets.

- `"digits"`: scikit-learn's 1,797 real 8x8 handwritten digits (shipped
  inside scikit-learn, no download), with a fixed stratified 80/20 split.
- `"mnist"`, `"fashion_mnist"`, `"cifar10"`: read from Keras's cache
  (`$KERAS_HOME/datasets`, default `~/.keras/datasets`); if the file is
  not there, Keras's own loader downloads it once, and offline the error names
  the file and where to put it.

The cache is read here, never handed to Keras's loader once a file is there:
CIFAR-10's pickles go through an unpickler that builds only dicts, lists,
bytes, ints and NumPy arrays (a file that asks for anything else is refused
before anything in it runs), `mnist.npz` is read with `allow_pickle=False`,
and a damaged or empty file is one line naming it and the fix.
"""

from __future__ import annotations

import functools
import importlib
import os
import pickle

import numpy as np

from zoo.data.arrays import to_unit_float
from zoo.data.dataset import DataError, Dataset, Split, register_dataset
from zoo.data.files import NPZ_KEYS, read_idx
from zoo.data.labels import TEST_FRACTION, stratified_split
from zoo.errors import first_line

__all__ = ["keras_cache_dir", "KERAS_CACHE_FILES", "CLASS_NAMES"]


@register_dataset("digits")
def _load_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    labels = digits.target.astype("int64")
    train, test = stratified_split(labels, TEST_FRACTION, seed=0)
    names = [str(d) for d in range(10)]
    return Dataset(
        "digits", names, Split(images[train], labels[train]), Split(images[test], labels[test])
    )


def keras_cache_dir():
    """Where Keras caches datasets: `$KERAS_HOME/datasets` (default `~/.keras/datasets`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]

# Where the six CIFAR-10 batches may lie in the cache, the first complete one wins: where
# recent Keras 3 extracts them, where older Keras and tf.keras did, and the six copied in.
CIFAR10_FOLDERS = [
    os.path.join("cifar-10-batches-py-target", "cifar-10-batches-py"),
    "cifar-10-batches-py",
    "cifar-10-batches-py-target",
]

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
    "cifar10": [os.path.join(CIFAR10_FOLDERS[0], name) for name in CIFAR10_BATCHES],
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


class _Forbidden(pickle.UnpicklingError):
    """A pickle named a global that no CIFAR-10 batch holds; it was not loaded."""


def _numpy_function(module, name):
    """`numpy._core.MODULE.NAME` (NumPy 2), or `numpy.core.MODULE.NAME` (NumPy 1)."""
    try:
        return getattr(importlib.import_module(f"numpy._core.{module}"), name)
    except (ImportError, AttributeError):
        return getattr(importlib.import_module(f"numpy.core.{module}"), name)


def _dtype(spec, align=False, copy=False):
    """`numpy.dtype` as a pickle calls it (Python 2's pickles pass 0 and 1, not booleans)."""
    return np.dtype(spec, align=bool(align), copy=bool(copy))


def _latin1_encode(text, encoding):
    """`_codecs.encode` as Python 3 pickles `bytes` for Python 2: latin-1 text only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Forbidden(f"_codecs.encode(..., {encoding!r})")
    return text.encode("latin-1")


@functools.cache
def _cifar_globals():
    """The globals a CIFAR-10 batch may name, each mapped to what it gets.

    The batches are pickled dicts of bytes, ints, lists and one uint8 array:
    NumPy's array reconstruction (protocols 0-4: `_reconstruct`, `ndarray`
    and `dtype`; protocol 5: `_frombuffer`) under its NumPy 1 and 2
    module names, and `bytes` as Python 3 writes it for Python 2.
    """
    reconstruct = _numpy_function("multiarray", "_reconstruct")
    frombuffer = _numpy_function("numeric", "_frombuffer")
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("__builtin__", "bytes"): bytes,
        ("builtins", "bytes"): bytes,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what a CIFAR-10 batch holds; any other global is refused.

    Code in a pickle runs only through the globals it names, so a `__reduce__`
    payload (`os.system`, `eval`, ...) stops here, before anything is called.
    """

    def find_class(self, module, name):
        allowed = _cifar_globals().get((module, name))
        if allowed is None:
            raise _Forbidden(f"{module}.{name}"[:80])
        return allowed


def _field(batch, key):
    """`batch[b"key"]` (as Keras wrote it), or `batch["key"]`; `None` if neither."""
    return batch.get(key.encode(), batch.get(key))


def _read_cifar_batch(path):
    """One CIFAR-10 batch: images `(N, 32, 32, 3)` uint8 and their labels."""
    with open(path, "rb") as handle:
        batch = _CifarUnpickler(handle, encoding="bytes").load()
    if not isinstance(batch, dict):
        raise ValueError(f"it holds a {type(batch).__name__}, not a dict")
    images = _field(batch, "data")
    if not (
        isinstance(images, np.ndarray)
        and images.dtype == np.uint8
        and images.ndim == 2
        and images.shape[1] == 3 * 32 * 32
    ):
        raise ValueError("its 'data' is not an (N, 3072) uint8 array")
    images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(_field(batch, "labels"))


def _read_mnist_npz(path):
    """`mnist.npz`'s four arrays, as `(x_train, y_train, x_test, y_test)`; no pickle."""
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in NPZ_KEYS if key not in archive.files]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        return tuple(archive[key] for key in NPZ_KEYS)


def _damaged(path, reason):
    return DataError(
        f"Keras's cache file {path} is damaged or not what Keras wrote ({reason}). Delete it "
        "so Keras downloads it again, or put a good copy there."
    )


def _read_cache_file(path, read):
    """`read(path)`; whatever goes wrong is one line naming the file and the fix."""
    if os.path.getsize(path) == 0:
        raise _damaged(path, "it is empty: 0 bytes")
    try:
        return read(path)
    except _Forbidden as refused:
        raise DataError(
            f"{path} is not a CIFAR-10 batch: it names {refused}, which no CIFAR-10 file "
            "holds, so it was not loaded and nothing in it was executed. Delete it so Keras "
            "downloads CIFAR-10 again, or put a good copy there."
        ) from None
    except Exception as error:  # a damaged file can raise almost anything from pickle or NumPy
        raise _damaged(path, first_line(error, 150) or type(error).__name__) from None


def _checked_split(image_path, label_path, images, labels):
    """`(images, labels)` if they are a split of a 10-class set of 2-D images, else one line."""
    images, labels = np.asarray(images), np.asarray(labels).ravel()
    if images.dtype.kind not in "uif" or images.ndim not in (3, 4):
        raise _damaged(image_path, f"images of shape {images.shape} and type {images.dtype}")
    if labels.dtype.kind not in "iu" or len(labels) != len(images):
        raise _damaged(
            label_path, f"{len(labels)} labels of type {labels.dtype} for {len(images)} images"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise _damaged(label_path, f"labels run from {labels.min()} to {labels.max()}, not 0-9")
    return images, labels.astype("int64")


def _cached_paths(name, directory):
    """The cache files of `name` when all are there, else `None`.

    CIFAR-10 is looked for in each of `CIFAR10_FOLDERS`. A folder that
    holds only some of its batches is refused rather than left to Keras:
    the loaders of older Keras releases (Keras 3's first ones among them)
    unpickle what they find there with no restriction.
    """
    if name != "cifar10":
        paths = [os.path.join(directory, f) for f in KERAS_CACHE_FILES[name]]
        return paths if all(os.path.isfile(p) for p in paths) else None
    folders = [os.path.join(directory, folder) for folder in CIFAR10_FOLDERS]
    for folder in folders:
        if all(os.path.isfile(os.path.join(folder, b)) for b in CIFAR10_BATCHES):
            return [os.path.join(folder, b) for b in CIFAR10_BATCHES]
    for folder in folders:
        missing = [b for b in CIFAR10_BATCHES if not os.path.isfile(os.path.join(folder, b))]
        if len(missing) < len(CIFAR10_BATCHES):
            raise DataError(
                f"Keras's CIFAR-10 cache {folder} is incomplete: it lacks {', '.join(missing)}. "
                "Delete that folder so Keras downloads CIFAR-10 again, or copy the missing "
                "file(s) there."
            )
    return None


def _read_keras_cache(name, paths):
    """`(x_train, y_train), (x_test, y_test)` from the files Keras left in its cache."""
    if name == "mnist":
        x_train, y_train, x_test, y_test = _read_cache_file(paths[0], _read_mnist_npz)
        return (
            _checked_split(paths[0], paths[0], x_train, y_train),
            _checked_split(paths[0], paths[0], x_test, y_test),
        )
    if name == "fashion_mnist":
        y_train, x_train, y_test, x_test = (_read_cache_file(p, read_idx) for p in paths)
        return (
            _checked_split(paths[1], paths[0], x_train, y_train),
            _checked_split(paths[3], paths[2], x_test, y_test),
        )
    batches = [
        _checked_split(path, path, *_read_cache_file(path, _read_cifar_batch)) for path in paths
    ]
    x_train = np.concatenate([images for images, _ in batches[:-1]])
    y_train = np.concatenate([labels for _, labels in batches[:-1]])
    return (x_train, y_train), batches[-1]


def _load_keras_dataset(name):
    """A Keras dataset from the cache, read here; Keras is asked only when nothing is there."""
    directory = keras_cache_dir()
    paths = _cached_paths(name, directory)
    if paths is not None:
        (x_train, y_train), (x_test, y_test) = _read_keras_cache(name, paths)
    else:
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
        except Exception as error:  # no network, a proxy, a refused download...
            expected = [os.path.join(directory, f) for f in KERAS_CACHE_FILES[name]]
            missing = [p for p in expected if not os.path.isfile(p)]
            raise DataError(
                f"dataset '{name}' is not in Keras's cache and could not be downloaded "
                f"({type(error).__name__}). Missing: {', '.join(missing)}. Download it on a "
                f"machine with internet (keras.datasets.{name}.load_data()) and copy the "
                f"file(s) to {directory}, or set KERAS_HOME to a folder that has them."
            ) from None
    return Dataset(
        name,
        CLASS_NAMES[name],
        Split(to_unit_float(x_train), np.asarray(y_train).ravel().astype("int64")),
        Split(to_unit_float(x_test), np.asarray(y_test).ravel().astype("int64")),
    )


for _name in KERAS_CACHE_FILES:  # one registration per Keras dataset
    register_dataset(_name)(lambda name=_name: _load_keras_dataset(name))

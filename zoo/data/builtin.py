"""The named datasets: scikit-learn's digits (embedded) and Keras's cached sets.

- ``"digits"``: scikit-learn's 1,797 real 8x8 handwritten digits (shipped
  inside scikit-learn, no download), with a fixed stratified 80/20 split.
- ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``: read from Keras's cache
  (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``); if the file is
  not there, Keras's own loader downloads it once, and offline the error names
  the file and where to put it.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

from zoo.data.dataset import (
    TEST_FRACTION,
    DataError,
    Dataset,
    Split,
    register_dataset,
    stratified_split,
)
from zoo.data.files import read_idx
from zoo.data.images import to_unit_float

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
    return Dataset(
        name,
        CLASS_NAMES[name],
        Split(to_unit_float(x_train), np.asarray(y_train).ravel().astype("int64")),
        Split(to_unit_float(x_test), np.asarray(y_test).ravel().astype("int64")),
    )


for _name in KERAS_CACHE_FILES:  # one registration per Keras dataset
    register_dataset(_name)(lambda name=_name: _load_keras_dataset(name))

"""Datasets from your own files: an ``.npz``, a folder of MNIST IDX files, a folder of images.

- an ``.npz`` file with ``x_train, y_train, x_test, y_test`` (and optionally
  ``class_names``);
- a folder of MNIST IDX files (``*-images-idx3-ubyte[.gz]`` and
  ``*-labels-idx1-ubyte[.gz]``); a test set alone is split in two;
- a folder of class subfolders of images (PNG/JPEG), optionally with
  ``train/`` and ``test/`` above them; the images stay on disk and are read
  one batch at a time.

Each is registered as a kind of path, tried in this order.
"""

from __future__ import annotations

import glob
import gzip
import os

import numpy as np

from zoo.data.dataset import (
    TEST_FRACTION,
    DataError,
    Dataset,
    Split,
    ordered_split,
    register_dataset,
    stratified_split,
)
from zoo.data.images import IMAGE_EXTENSIONS, checked_split

__all__ = ["read_idx"]


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


@register_dataset("npz", matches=lambda path: os.path.isfile(path) and path.endswith(".npz"))
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
    train = checked_split(arrays["x_train"], arrays["y_train"], path, "x_train/y_train")
    test = checked_split(arrays["x_test"], arrays["y_test"], path, "x_test/y_test")
    count = int(max(train.labels.max(initial=-1), test.labels.max(initial=-1))) + 1
    names = [str(n) for n in arrays.get("class_names", [str(i) for i in range(count)])]
    return Dataset(os.path.basename(path), names, train, test)


def _find_idx(directory, kind):
    pattern = "*-images-idx3-ubyte*" if kind == "images" else "*-labels-idx1-ubyte*"
    return sorted(glob.glob(os.path.join(directory, pattern)))


def _is_idx_folder(path):
    return os.path.isdir(path) and bool(_find_idx(path, "images") and _find_idx(path, "labels"))


@register_dataset("idx", matches=_is_idx_folder)
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
        first, last = ordered_split(len(y))
        train, test = (x[first], y[first]), (x[last], y[last])
    train = checked_split(*train, directory, "training")
    test = checked_split(*test, directory, "test")
    count = int(max(train.labels.max(), test.labels.max())) + 1
    return Dataset(
        os.path.basename(os.path.normpath(directory)),
        [str(i) for i in range(count)],
        train,
        test,
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


@register_dataset("image_folder", matches=os.path.isdir, fallback=True)
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
    return Dataset(
        os.path.basename(os.path.normpath(directory)),
        class_names,
        Split(train_files, y_train),
        Split(test_files, y_test),
    )

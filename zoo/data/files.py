"""Datasets from your own files: an `.npz`, a folder of MNIST IDX files, a folder of images.

- an `.npz` file with `x_train, y_train, x_test, y_test` (and optionally
  `class_names`);
- a folder of MNIST IDX files (`*-images-idx3-ubyte[.gz]` and
  `*-labels-idx1-ubyte[.gz]`); a training or test set alone is split in two;
- a folder of class subfolders of images (PNG/JPEG), optionally with
  `train/` and `test/` above them; the images stay on disk and are read
  one batch at a time.

Each is registered as a kind of path, tried in this order. A file that cannot
be read (empty, truncated, a bad header) is one [`DataError`][] naming it;
pixel arrays are scaled by `zoo.data.arrays.PIXEL_RULE`, and labels
must be the classes 0..K-1 ([`zoo.data.labels.check_class_labels`][]).
"""

from __future__ import annotations

import glob
import gzip
import math
import os
import sys
import zlib

import numpy as np

from zoo.data.arrays import checked_split
from zoo.data.dataset import DataError, Dataset, Split, register_dataset
from zoo.data.images import IMAGE_EXTENSIONS
from zoo.data.labels import TEST_FRACTION, check_class_labels, ordered_split, stratified_split
from zoo.errors import first_line

__all__ = ["NPZ_KEYS", "is_idx_folder", "read_idx", "read_npz"]

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")  # the arrays of an .npz dataset


# --------------------------------------------------------------------------- .npz


def read_npz(path):
    """Every array of an `.npz` as a dict, or one error naming the file and the fix.

    `allow_pickle=False`: an array of Python objects could run code when
    loaded, so it is refused rather than read.
    """
    if os.path.getsize(path) == 0:
        raise DataError(f"{path} is empty (0 bytes); write it again with np.savez.")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(
                f"{path} holds a single array (.npy), not an .npz of named arrays; save "
                "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)."
            )
        with loaded as f:
            return {key: f[key] for key in f.files}
    except DataError:
        raise
    except Exception as error:  # damaged bytes surface as many kinds: zip, zlib, EOF, parse
        if isinstance(error, ValueError) and "allow_pickle" in str(error):
            raise DataError(
                f"{path} holds object arrays (pickled Python objects), which the zoo does not "
                "load because unpickling can run code; save plain numeric and string arrays."
            ) from None
        reason = first_line(error, 120) or type(error).__name__
        raise DataError(
            f"cannot read {path} as .npz ({reason}): the file is truncated or damaged; write "
            "it again with np.savez."
        ) from None


@register_dataset("npz", matches=lambda path: os.path.isfile(path) and path.endswith(".npz"))
def _load_npz(path):
    arrays = read_npz(path)
    missing = set(NPZ_KEYS) - set(arrays)
    if missing:
        raise DataError(
            f"{path} lacks {', '.join(sorted(missing))}: an .npz dataset needs "
            "x_train, y_train, x_test and y_test (and may add class_names)."
        )
    train = checked_split(arrays["x_train"], arrays["y_train"], path, "x_train/y_train")
    test = checked_split(arrays["x_test"], arrays["y_test"], path, "x_test/y_test")
    names = _class_names(arrays.get("class_names"), path)
    labelled = {f"{path} y_train": train.labels, f"{path} y_test": test.labels}
    count = check_class_labels(labelled, names)
    return Dataset(os.path.basename(path), names or [str(i) for i in range(count)], train, test)


def _class_names(names, path):
    if names is None:
        return None
    if np.ndim(names) != 1:
        raise DataError(
            f"{path}: class_names has shape {np.shape(names)}; store one name per class, "
            "e.g. np.array(['cat', 'dog'])."
        )
    return [str(name) for name in names]


# --------------------------------------------------------------------------- IDX


def read_idx(path):
    """Read an MNIST IDX file (`.gz` or not) into a NumPy array; a damaged file is one error."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"cannot read IDX file {path}: {error}. The file is damaged or truncated; "
            "download or copy it again."
        ) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(
            f"{path} is not an IDX file of unsigned bytes (bad magic number); give the "
            "MNIST-format *-images-idx3-ubyte and *-labels-idx1-ubyte files."
        )
    dims, start = data[3], 4 + 4 * data[3]
    if dims == 0 or len(data) < start:
        raise DataError(
            f"{path} has a bad IDX header ({dims} dimensions in {len(data)} bytes); "
            "download or copy it again."
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if len(data) - start != math.prod(shape):
        raise DataError(
            f"{path} is truncated: its header says {shape}, {math.prod(shape)} values, but it "
            f"holds {len(data) - start}; download or copy it again."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape)


def _find_idx(directory, kind):
    pattern = "*-images-idx3-ubyte*" if kind == "images" else "*-labels-idx1-ubyte*"
    return sorted(glob.glob(os.path.join(directory, pattern)))


def is_idx_folder(path):
    """Whether `path` is a folder holding MNIST IDX images and labels (`.gz` or not)."""
    return os.path.isdir(path) and bool(_find_idx(path, "images") and _find_idx(path, "labels"))


def _idx_pairs(directory):
    """`{"train": (images, labels), "test": ...}` file paths; an unmatched file is refused."""
    images, labels = _find_idx(directory, "images"), _find_idx(directory, "labels")
    pairs = {}
    for role, prefixes in (("train", ("train",)), ("test", ("t10k", "test"))):
        found = [
            [p for p in files if os.path.basename(p).startswith(prefixes)]
            for files in (images, labels)
        ]
        if all(found):
            pairs[role] = (found[0][0], found[1][0])
        elif any(found):
            alone, lacking = (found[0][0], "labels") if found[0] else (found[1][0], "images")
            raise DataError(
                f"{alone} has no matching {role} {lacking} file beside it (named like "
                f"{prefixes[0]}-{lacking}-idx{'3' if lacking == 'images' else '1'}-ubyte.gz); "
                f"add it, or move {os.path.basename(alone)} away."
            )
    return pairs or {"test": (images[0], labels[0])}  # one set with other names


def _read_idx_pair(images_path, labels_path, directory, role):
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise DataError(
            f"{images_path} has shape {images.shape} in its header; an images file holds "
            "(N, rows, columns). Download or copy it again."
        )
    if labels.ndim != 1:
        raise DataError(
            f"{labels_path} has shape {labels.shape} in its header; a labels file holds one "
            "label per image, (N,). Download or copy it again."
        )
    return checked_split(images, labels, directory, role)


@register_dataset("idx", matches=is_idx_folder)
def _load_idx_folder(directory):
    pairs = _idx_pairs(directory)
    splits = {role: _read_idx_pair(*paths, directory, role) for role, paths in pairs.items()}
    count = check_class_labels({pairs[role][1]: s.labels for role, s in splits.items()})
    if len(splits) == 1:  # a set alone: first 80 % to train, last 20 % to test
        (alone,) = splits.values()
        first, last = ordered_split(len(alone))
        splits = {"train": alone.subset(first), "test": alone.subset(last)}
    return Dataset(
        os.path.basename(os.path.normpath(directory)),
        [str(i) for i in range(count)],
        splits["train"],
        splits["test"],
    )


# --------------------------------------------------------------------------- image folders


def _visible(name):
    """False for what the user does not see as data: dot-names and macOS's `__MACOSX`."""
    return not name.startswith(".") and name != "__MACOSX"


def _class_folders(directory):
    return sorted(
        d
        for d in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, d)) and _visible(d)
    )


def _is_image(name):
    return _visible(name) and name.lower().endswith(IMAGE_EXTENSIONS)


def _images_in(folder):
    """Every image file under `folder`, sorted, skipping hidden files and folders.

    A `.ipynb_checkpoints` copy or macOS's `._photo.jpg` resource file
    would otherwise be read as a training image.
    """
    found = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(d for d in folders if _visible(d))
        found += [os.path.join(root, n) for n in sorted(names) if _is_image(n)]
    return found


def _warn(line):
    print(f"warning: {line}", file=sys.stderr)


def _images_by_class(directory):
    """`{class name: [files]}` for the class folders of `directory` that hold images.

    Empty class folders and images beside the class folders are left out,
    each kind with one warning line naming them.
    """
    found = {name: _images_in(os.path.join(directory, name)) for name in _class_folders(directory)}
    empty = [name for name, files in found.items() if not files]
    if empty and len(empty) < len(found):
        _warn(
            f"leaving out {len(empty)} class folder(s) of {directory} with no "
            f"{'/'.join(IMAGE_EXTENSIONS)} images: {', '.join(empty[:10])}"
        )
    loose = [n for n in os.listdir(directory) if _is_image(n)]
    if loose and found:
        _warn(f"leaving out {len(loose)} image file(s) in {directory} outside any class folder")
    return {name: files for name, files in found.items() if files}


def _labelled(found, class_names):
    """Files and labels, class by class, in the order of `class_names`."""
    files = [file for name in class_names for file in found.get(name, [])]
    labels = [label for label, name in enumerate(class_names) for _ in found.get(name, [])]
    return files, np.array(labels, dtype="int64")


def _train_test_folders(directory, subfolders):
    """The class files of `train/` and `test/`; a class in `test/` alone is refused."""
    if not {"train", "test"} <= set(subfolders):
        present, missing = ("train", "test") if "train" in subfolders else ("test", "train")
        raise DataError(
            f"{directory} has a {present}/ folder but no {missing}/: give both, each with the "
            f"same class folders, or put the class folders directly in {directory} for an "
            "automatic 80/20 split."
        )
    others = [d for d in subfolders if d not in ("train", "test")]
    if others:
        _warn(f"using train/ and test/ of {directory}; leaving out {', '.join(others[:10])}")
    train = _images_by_class(os.path.join(directory, "train"))
    test = _images_by_class(os.path.join(directory, "test"))
    test_only = sorted(set(test) - set(train))
    if test_only:
        raise DataError(
            f"{directory}/test has classes with no training images: {', '.join(test_only[:10])}; "
            "the model could never predict them. Add them to train/ or remove them from test/."
        )
    train_only = sorted(set(train) - set(test))
    if train_only and test:
        _warn(
            f"{len(train_only)} class(es) have no test images, so the test accuracy leaves them "
            f"out: {', '.join(train_only[:10])}"
        )
    return train, test


@register_dataset("image_folder", matches=os.path.isdir, fallback=True)
def _load_image_folder(directory):
    subfolders = _class_folders(directory)
    if "train" in subfolders or "test" in subfolders:
        train, test = _train_test_folders(directory, subfolders)
        class_names = sorted(train)
        train_files, y_train = _labelled(train, class_names)
        test_files, y_test = _labelled(test, class_names)
    else:
        found = _images_by_class(directory)
        class_names = sorted(found)
        files, labels = _labelled(found, class_names)
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

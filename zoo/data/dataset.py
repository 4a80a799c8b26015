"""One dataset type, and the registry that finds a loader for a name or a path.

A [`Dataset`][] is a name, the class names and two [`Split`][] s,
`train` and `test`. A split holds its images either in memory (a
`float32` array `(N, H, W, C)` in [0, 1]) or as a list of image files
read batch by batch, and the integer labels.

Loaders register with one decorator line. A *named* dataset's loader takes no
argument; a *kind of path* gives a test that recognises it, and its loader
takes the path:

```python
@register_dataset("digits")
def load_digits() -> Dataset: ...

@register_dataset("npz", matches=lambda path: path.endswith(".npz"))
def load_npz(path) -> Dataset: ...
```

[`load_dataset`][] tries the names first, then each kind of path in the
order they were registered. The checks on labels and the train/test splits
are in [`zoo.data.labels`][].
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from zoo.errors import ZooError, first_line

__all__ = [
    "DataError",
    "Split",
    "Dataset",
    "register_dataset",
    "load_dataset",
    "list_datasets",
    "scan_images",
    "limited_indices",
]


class DataError(ZooError):
    """A dataset could not be found or read; the message says what to do."""


@dataclass(frozen=True)
class Split:
    """Images and their labels. `images`: an array `(N, H, W, C)` or a list of file paths.

    A split unpacks as `images, labels = split`.
    """

    images: object
    labels: np.ndarray

    @property
    def streaming(self):
        """True when the images are files, read one batch at a time."""
        return isinstance(self.images, list)

    def subset(self, indices):
        """The split restricted to `indices`."""
        if self.streaming:
            return Split([self.images[i] for i in indices], self.labels[indices])
        return Split(self.images[indices], self.labels[indices])

    def __len__(self):
        return len(self.labels)

    def __iter__(self):
        return iter((self.images, self.labels))


@dataclass(frozen=True)
class Dataset:
    """A named dataset: class names, a `train` and a `test` [`Split`][]."""

    name: str
    class_names: list
    train: Split
    test: Split

    @property
    def input_shape(self):
        """`(H, W, C)` of in-memory images; `None` for files (each is resized when read)."""
        return None if self.train.streaming else tuple(self.train.images.shape[1:])

    @property
    def size(self):
        """`{"train": N, "test": M}`: how many images each split holds."""
        return {"train": len(self.train), "test": len(self.test)}

    def with_train(self, split):
        return replace(self, train=split)


@dataclass(frozen=True)
class _Loader:
    name: str
    load: Callable
    matches: Callable | None = None
    fallback: bool = False


_NAMED: dict[str, _Loader] = {}
_PATH_KINDS: list[_Loader] = []


def register_dataset(name, *, matches=None, fallback=False):
    """Decorator: register a loader under `name` (or, with `matches`, for a kind of path).

    Args:
        name: the dataset's name (`--dataset NAME`), or the kind's name.
        matches: `matches(path) -> bool` recognises paths this loader reads;
            without it the loader takes no argument and answers to `name`.
        fallback: try this kind after every other kind (the built-in image
            folder, which matches any folder, is one).
    """

    def decorate(load):
        if name in _NAMED or any(kind.name == name for kind in _PATH_KINDS):
            raise DataError(f"a dataset loader named '{name}' is already registered.")
        loader = _Loader(name, load, matches, fallback)
        if matches is None:
            _NAMED[name] = loader
        else:
            _PATH_KINDS.append(loader)
        return load

    return decorate


def list_datasets():
    """The registered dataset names, then the kinds of path, in the order they are tried."""
    return {"names": sorted(_NAMED), "paths": [kind.name for kind in _PATH_KINDS]}


def _find_loader(source):
    """The loader for `source` and its arguments; a name that is also a path here is refused."""
    if source in _NAMED:
        if os.path.exists(source):
            kind = "folder" if os.path.isdir(source) else "file"
            raise DataError(
                f"'{source}' is both a built-in dataset and the {kind} "
                f"{os.path.abspath(source)}: pass ./{source} (--dataset ./{source}) for the "
                f"{kind}, or rename or move the {kind} to use the built-in '{source}'."
            )
        return _NAMED[source].load, ()
    if os.path.exists(source):
        for kind in sorted(_PATH_KINDS, key=lambda kind: kind.fallback):  # stable: in order
            if kind.matches(source):
                return kind.load, (source,)
        raise DataError(
            f"{source} is not a dataset the zoo can read: give a folder of class subfolders "
            "of images, an .npz with x_train, y_train, x_test, y_test, or a folder of IDX files."
        )
    raise DataError(
        f"unknown dataset '{source}': not one of {', '.join(sorted(_NAMED))} and no such file "
        "or folder. Give a built-in name or a path to your data."
    )


def load_dataset(source, limit=None, skip_bad_images=False, seed=0):
    """Load a dataset by name or path.

    Args:
        source: a registered name (`"digits"`, `"mnist"`, ...) or a path
            to a folder of images, an `.npz` file or an IDX folder.
        limit: keep only `limit` training images (quick runs), a sample
            chosen by `seed` that keeps every class's share (see
            [`limited_indices`][]).
        skip_bad_images: for image files, leave out those that cannot be read
            (one warning line) instead of refusing the dataset.
        seed: chooses the `limit` sample; the same seed, the same images.

    Images on disk are all checked before training starts (see
    [`scan_images`][]); every unreadable file is named.

    Returns:
        A [`Dataset`][].

    Raises:
        DataError: unknown name, missing path or cache file, unreadable files.
    """
    source = os.fspath(source)
    load, arguments = _find_loader(source)
    data = load(*arguments)
    if len(data.train) == 0 or len(data.test) == 0:
        raise DataError(f"dataset '{source}' has no training or no test images.")
    present = np.unique(data.train.labels)
    if len(present) < 2:
        raise DataError(
            f"dataset '{source}' has {len(present)} class in its training images "
            f"({', '.join(str(c) for c in present) or 'none'}); a classifier needs at least 2."
        )
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit must be at least 1, got {limit}.")
        data = data.with_train(data.train.subset(limited_indices(data.train.labels, limit, seed)))
    if data.train.streaming:
        data = _without_bad_images(data, skip_bad_images)
    return data


def limited_indices(labels, limit, seed=0):
    """`limit` indices of `labels` drawn by `seed`, every class keeping its share; sorted.

    Files are listed class by class, so the first `limit` would all be one
    class. Each class's members are shuffled and ranked by how far into
    their class they fall (rank / class size); taking the lowest ranks first
    gives every class one image before any class gets a second (when
    `limit` allows), then images in proportion to the class sizes.
    """
    labels = np.asarray(labels)
    if limit >= len(labels):
        return np.arange(len(labels))
    order = np.random.default_rng(seed).permutation(len(labels))
    place = np.empty(len(labels))
    for label in np.unique(labels):
        members = order[labels[order] == label]  # this class, in shuffled order
        place[members] = np.arange(len(members)) / len(members)
    chosen = order[np.argsort(place[order], kind="stable")[:limit]]
    return np.sort(chosen)


def _without_bad_images(data, skip):
    """Check every image file; refuse naming the bad ones, or (`skip`) leave them out."""
    bad = scan_images([*data.train.images, *data.test.images])
    if not bad:
        return data
    if not skip:
        shown = "; ".join(f"{path} ({why})" for path, why in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise DataError(
            f"{len(bad)} image file(s) cannot be read: {shown}{more}. Fix or remove them, or "
            "pass --skip-bad-images to train without them."
        )
    broken = {path for path, _ in bad}
    print(f"warning: leaving out {len(bad)} unreadable image file(s)", file=sys.stderr)

    def keep(split):
        return split.subset([i for i, path in enumerate(split.images) if path not in broken])

    return replace(data, train=keep(data.train), test=keep(data.test))


def scan_images(paths, progress_every=500):
    """Decode every image in full; return `[(path, reason), ...]` for the unreadable ones.

    Pillow's `verify` checks a file's structure (a PNG's checksums) but
    decodes no pixels, so a truncated JPEG passed it and failed only when the
    test images were read after training. Each file is therefore verified
    and then decoded (`load`), as training will read it. With many files a
    progress line is printed on stderr.
    """
    from PIL import Image

    bad, total = [], len(paths)
    for index, path in enumerate(paths, start=1):
        try:
            with Image.open(path) as image:
                image.verify()
            with Image.open(path) as image:
                image.load()
        except Exception as error:  # Pillow raises many kinds for a damaged file
            bad.append((path, first_line(error, 80) or type(error).__name__))
        if total >= progress_every and (index % progress_every == 0 or index == total):
            end = "\n" if index == total else ""
            print(f"\rchecking images {index}/{total}", end=end, file=sys.stderr, flush=True)
    return bad

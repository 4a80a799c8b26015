"""Labels: the checks that make them the classes 0..K-1, and the splits drawn from them.

A loader calls [`check_class_labels`][] on what a file stored (a stray
label would add a class no image shows), training calls
[`check_label_range`][] against the model's class count, and
[`stratified_split`][] or [`ordered_split`][] cut a set that came without
a test split.
"""

from __future__ import annotations

import numpy as np

from zoo.data.dataset import DataError

__all__ = [
    "TEST_FRACTION",
    "check_class_labels",
    "check_label_range",
    "ordered_split",
    "rare_class_warnings",
    "stratified_split",
]

TEST_FRACTION = 0.2


def check_label_range(labels, classes, split="training"):
    """Raise [`DataError`][] unless every label of `split` is in `[0, classes)`."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(
            f"{split} labels run from {labels.min()} to {labels.max()}, but the model has "
            f"{classes} classes (labels 0..{classes - 1}). Pass --classes "
            f"{max(int(labels.max()) + 1, classes)} or fix the labels."
        )


def check_class_labels(labelled, class_names=None):
    """The class count K, once every label is a class 0..K-1 and no class is missing.

    `labelled` maps a name for each label array (the file and the split,
    for the message) to its integer labels. The classes are the distinct
    labels of all the arrays, and they must be 0..K-1; with `class_names`,
    K is the number of names. Counting classes as the largest label plus one
    let one stray 255 among the digits 0..9 make a 256-class model in which
    246 classes never appear, with only a "rare class" warning.
    """
    arrays = {name: np.asarray(labels).ravel() for name, labels in labelled.items()}
    present = np.unique(np.concatenate(list(arrays.values())))
    if present.size and present[0] < 0:
        name, index = _first(arrays, lambda labels: labels < 0)
        raise DataError(
            f"{name}: label {arrays[name][index]} at index {index} is negative; labels must be "
            "the class indices 0..K-1."
        )
    if class_names is not None:
        return _check_named_classes(arrays, present, list(class_names))
    gaps = np.setdiff1d(np.arange(present[-1] + 1 if present.size else 0), present)
    if gaps.size:
        name, index = _first(arrays, lambda labels: labels > gaps[0])
        raise DataError(
            f"{name}: label {arrays[name][index]} at index {index} leaves a gap: label(s) "
            f"{_spans(gaps)} never appear, and the classes must be the labels 0..K-1 with none "
            "missing. Fix or remove the stray label(s), or renumber the classes 0..K-1."
        )
    return int(present.size)


def _check_named_classes(arrays, present, class_names):
    count = len(class_names)
    if present.size and present[-1] >= count:
        name, index = _first(arrays, lambda labels: labels >= count)
        raise DataError(
            f"{name}: label {arrays[name][index]} at index {index} is past the {count} "
            f"class_names (labels 0..{count - 1}); fix the label or add its class name."
        )
    gaps = np.setdiff1d(np.arange(count), present)
    if gaps.size:
        names = ", ".join(repr(class_names[i]) for i in gaps[:5]) + (
            " ..." if gaps.size > 5 else ""
        )
        raise DataError(
            f"{', '.join(arrays)}: label(s) {_spans(gaps)} ({names}) never appear, so the model "
            "would have classes it never sees; add their images or remove those class_names."
        )
    return count


def _first(arrays, test):
    """`(name, index)` of the first label, array by array, for which `test` holds."""
    for name, labels in arrays.items():
        hits = np.flatnonzero(test(labels))
        if hits.size:
            return name, int(hits[0])
    raise AssertionError("no label matched")  # the callers test that one does


def _spans(values, most=4):
    """Sorted integers as runs, e.g. `10..254` or `3, 7`; the first `most` runs."""
    runs, start = [], values[0]
    for before, value in zip(values, [*values[1:], None], strict=True):
        if value != before + 1:
            runs.append(f"{start}" if start == before else f"{start}..{before}")
            start = value
    return ", ".join(runs[:most]) + (" ..." if len(runs) > most else "")


def rare_class_warnings(labels, class_names, validation_fraction):
    """A line naming the classes too small for a validation split to hold (empty if none)."""
    labels, counts = np.unique(labels, return_counts=True)
    rare = [int(label) for label, count in zip(labels, counts, strict=True)
            if validation_fraction and count * validation_fraction < 1]  # fmt: skip
    if not rare:
        return []
    names = [class_names[i] if i < len(class_names) else str(i) for i in rare]
    shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
    return [
        f"{len(rare)} class(es) ({shown}) have fewer than {int(np.ceil(1 / validation_fraction))} "
        f"training images: a {validation_fraction:.0%} validation split will seldom hold them."
    ]


def stratified_split(labels, test_fraction=TEST_FRACTION, seed=0):
    """Indices `(train, test)` holding `test_fraction` of every class in test.

    Deterministic for a given `seed`; both index lists come back sorted.
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


def ordered_split(count, test_fraction=TEST_FRACTION):
    """First `1 - test_fraction` for training, the rest for testing (MNIST t10k: 8,000/2,000)."""
    cut = int(round(count * (1 - test_fraction)))
    return np.arange(cut), np.arange(cut, count)

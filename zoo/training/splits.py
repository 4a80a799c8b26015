"""The data of one run: the dataset's splits, and the validation images held out of train.

The dataset comes from :func:`zoo.data.load_dataset` (a registered name or a
path); :func:`load_data` holds a seeded random share of its training images
out for validation, so the same seed holds out the same images on every
backend and when a run is resumed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from zoo.data.dataset import Split
from zoo.training import TrainingError

__all__ = ["Splits", "load_data"]


@dataclass(frozen=True)
class Splits:
    """The data of one run: the dataset's splits and the validation images held out of train."""

    name: str
    class_names: list
    train: Split
    validation: Split | None
    test: Split


def load_data(config):
    """Read the dataset and hold out the validation split (a seeded random choice)."""
    import numpy as np

    from zoo.data import load_dataset, rare_class_warnings

    data = load_dataset(
        config.dataset,
        limit=config.limit,
        skip_bad_images=config.skip_bad_images,
        seed=config.seed,
    )
    count, fraction = len(data.train), config.validation_split
    held = int(round(count * fraction))
    if held >= count and fraction > 0:
        raise TrainingError(f"--validation-split {fraction} leaves no training images.")
    order = np.random.default_rng(config.seed).permutation(count)
    validation = data.train.subset(np.sort(order[:held])) if held else None
    train_split = data.train.subset(np.sort(order[held:]))
    for warning in rare_class_warnings(data.train.labels, data.class_names, fraction):
        print(f"warning: {warning}", file=sys.stderr)
    return Splits(config.dataset, list(data.class_names), train_split, validation, data.test)

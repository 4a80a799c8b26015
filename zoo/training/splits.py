"""The data of one run: the dataset's splits, and the validation images held out of train.

The dataset comes from [`zoo.data.load_dataset`][] (a registered name or a
path); [`load_data`][] holds a seeded random share of its training images
out for validation, so the same seed holds out the same images on every
backend and when a run is resumed.

`--augment digits` makes a model robust to how people draw a digit: each training image is
turned by up to 20 degrees, scaled by 0.8 to 1.2, made narrower or wider (0.75 to 1.35), slanted
(a shear of up to 0.25) and shifted by up to a tenth of its size (one affine transform, so the
image is interpolated once), and its strokes are thickened or thinned now and then (a 3x3
maximum, or half-way towards a 3x3 minimum, per channel). Where the model will be given
digits through [`zoo.preprocess_digit`][zoo.data.digit.preprocess_digit] (data prepared
as MNIST was), each changed image goes through it too, so training sees what prediction
will: a slanted or shrunken digit fitted and centred again. It suits what
MNIST looks like, bright ink on a dark (0) background, which is also what the shifted-in border
is filled with. The changes happen in the data, between the dataset and `model.fit`:
[`augmented_batches`][] wraps the training split in a `keras.utils.PyDataset` whose
batches are changed by `keras.ops` (`keras.ops.image.affine_transform`,
`keras.ops.max_pool`), so it runs on every backend, and the model trained, saved and
checkpointed is the plain model. Validation, test and prediction see the images as they are.
The random draws come from NumPy, seeded by the run's seed, the epoch and the batch, so a
batch is the same on every backend, when Keras asks for it twice, and when a run resumes at a
later epoch.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from zoo.data.dataset import Split
from zoo.training import TrainingError
from zoo.training.config import AUGMENTATIONS

__all__ = ["AUGMENTATIONS", "Splits", "augment_digits", "augmented_batches", "load_data"]


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


# --------------------------------------------------------------------------- --augment

MAX_DEGREES = 20.0  # rotation, either way
SCALE = (0.8, 1.2)  # zoom out / in
WIDTH = (0.75, 1.35)  # how much wider the input read is than the output: narrower / wider digits
MAX_SHEAR = 0.25  # slant, either way
MAX_SHIFT = 0.1  # of the height and of the width, either way
THICKER, THINNER = 0.3, 0.2  # the chance that an image's strokes are thickened, or thinned


def digit_transforms(rng, count, height, width):
    """`(count, 8)` transforms for `keras.ops.image.affine_transform`: rotate, scale, shift,
    narrow or widen, slant.

    Each row maps a point of the output to the point of the input it is read from: first a
    random width and slant about the image's centre, then, about the centre, the inverse of a
    rotation by a random angle and a random zoom, after a random shift.
    """
    angle = np.deg2rad(rng.uniform(-MAX_DEGREES, MAX_DEGREES, count))
    scale = rng.uniform(*SCALE, count)
    shift_x = rng.uniform(-MAX_SHIFT, MAX_SHIFT, count) * width
    shift_y = rng.uniform(-MAX_SHIFT, MAX_SHIFT, count) * height
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    moved_x, moved_y = centre_x + shift_x, centre_y + shift_y
    rows = [
        cos,
        sin,
        centre_x - (cos * moved_x + sin * moved_y),
        -sin,
        cos,
        centre_y - (-sin * moved_x + cos * moved_y),
        np.zeros(count),
        np.zeros(count),
    ]
    return _narrowed_and_slanted(np.stack(rows, axis=1), rng, count, height, width)


def _narrowed_and_slanted(transforms, rng, count, height, width):
    """`transforms` applied after `x -> stretch * (x - cx) + shear * (y - cy) + cx`."""
    stretch = rng.uniform(*WIDTH, count)
    shear = rng.uniform(-MAX_SHEAR, MAX_SHEAR, count)
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    offset = centre_x - stretch * centre_x - shear * centre_y
    out = transforms.copy()
    for row in (0, 3):  # the x and the y of the input point, each read from the stretched x
        a, b, c = transforms[:, row], transforms[:, row + 1], transforms[:, row + 2]
        out[:, row], out[:, row + 1], out[:, row + 2] = a * stretch, a * shear + b, a * offset + c
    return out.astype("float32")


def augment_digits(images, rng):
    """`images` (`(N, H, W, C)` float32, ink bright on 0) changed at random, as NumPy.

    `rng` is a `numpy.random.Generator`: it draws every random choice, and the arithmetic
    is `keras.ops` on the current backend.
    """
    import keras

    ops = keras.ops
    count, height, width, _ = images.shape
    stroke = rng.uniform(size=count)
    transforms = digit_transforms(rng, count, height, width)
    x = ops.convert_to_tensor(images, dtype="float32")
    pool = dict(pool_size=3, strides=1, padding="same", data_format="channels_last")
    thicker = ops.max_pool(x, **pool)
    thinner = (x - ops.max_pool(-x, **pool)) / 2  # half-way to the 3x3 minimum
    pick = ops.convert_to_tensor(stroke.reshape(count, 1, 1, 1), dtype="float32")
    x = ops.where(pick < THICKER, thicker, ops.where(pick < THICKER + THINNER, thinner, x))
    x = ops.image.affine_transform(
        x, ops.convert_to_tensor(transforms), interpolation="bilinear", fill_mode="constant"
    )
    return ops.convert_to_numpy(x).astype("float32")


def augmented_batches(x, y, batch_size, seed, first_epoch=0, prepare=None):
    """The training data `fit` takes, changed by [`augment_digits`][], each epoch anew.

    `(x, y)` is what [`zoo.data.make_inputs`][] returned: arrays, or a `PyDataset` of
    batches and `None` (its own shuffle stays). Arrays are shuffled each epoch here, from
    `seed`. `first_epoch` is the epoch `fit` starts at (a resumed run's). `prepare`
    ([`zoo.preprocess_digit`][zoo.data.digit.preprocess_digit]) then prepares each changed
    image, as prediction will; an image it refuses (a stroke thinned to nothing) is kept as it is.
    """
    import keras

    class AugmentedBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = first_epoch
            self.order = self.shuffled()

        def shuffled(self):
            return np.random.default_rng([seed, self.epoch]).permutation(len(x))

        def __len__(self):
            return len(x) if y is None else math.ceil(len(x) / batch_size)

        def __getitem__(self, index):
            if y is None:
                images, labels = x[index]
            else:
                chosen = self.order[index * batch_size : (index + 1) * batch_size]
                images, labels = x[chosen], y[chosen]
            rng = np.random.default_rng([seed, self.epoch, index])
            changed = augment_digits(np.asarray(images, dtype="float32"), rng)
            return (changed if prepare is None else prepared(changed, prepare)), labels

        def on_epoch_end(self):
            self.epoch += 1
            self.order = self.shuffled()
            if y is None:
                x.on_epoch_end()

    return AugmentedBatches()


def prepared(images, prepare):
    """Each of `images` through `prepare`, or as it is where `prepare` refuses it."""
    from zoo.errors import ZooError

    out = np.empty_like(images)
    for index, image in enumerate(images):
        try:
            out[index] = prepare(image)
        except ZooError:
            out[index] = image
    return out

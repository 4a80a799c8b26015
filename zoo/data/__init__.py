"""Datasets for training: an embedded default, Keras's cached sets, and your own files.

``load_dataset(source)`` returns a :class:`Dataset` for a registered name
(``"digits"``, ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``) or a path (an
``.npz``, a folder of IDX files, a folder of images); see
:mod:`zoo.data.builtin` and :mod:`zoo.data.files`.

Adding a dataset is one function and one decorator line, in any file you
import before training::

    from zoo.data import Dataset, Split, register_dataset

    @register_dataset("squares")
    def load_squares():
        ...
        return Dataset("squares", ["small", "large"], Split(x_train, y_train),
                       Split(x_test, y_test))

Then ``zoo-train --dataset squares`` (or ``zoo.train(dataset="squares")``)
trains on it. The list below is how the built-in loaders register: importing
this package imports them (``zoo.data.dataset`` never imports them back).
"""

from zoo.data import builtin as _builtin  # noqa: F401  (registers digits and Keras's sets)
from zoo.data import files as _files  # noqa: F401  (registers .npz, IDX and image folders)
from zoo.data.builtin import CLASS_NAMES, KERAS_CACHE_FILES, keras_cache_dir
from zoo.data.dataset import (
    TEST_FRACTION,
    DataError,
    Dataset,
    Split,
    check_label_range,
    list_datasets,
    load_dataset,
    ordered_split,
    rare_class_warnings,
    register_dataset,
    scan_images,
    stratified_split,
)
from zoo.data.files import read_idx
from zoo.data.images import (
    IMAGE_EXTENSIONS,
    convert_channels,
    load_image_file,
    make_inputs,
    prepare_arrays,
    resize_images,
    to_unit_float,
)

BUILTIN_DATASETS = tuple(list_datasets()["names"])

__all__ = [
    "BUILTIN_DATASETS",
    "CLASS_NAMES",
    "DataError",
    "Dataset",
    "IMAGE_EXTENSIONS",
    "KERAS_CACHE_FILES",
    "Split",
    "TEST_FRACTION",
    "check_label_range",
    "convert_channels",
    "keras_cache_dir",
    "list_datasets",
    "load_dataset",
    "load_image_file",
    "make_inputs",
    "ordered_split",
    "prepare_arrays",
    "rare_class_warnings",
    "read_idx",
    "register_dataset",
    "resize_images",
    "scan_images",
    "stratified_split",
    "to_unit_float",
]

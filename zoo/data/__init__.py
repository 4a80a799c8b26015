"""Datasets for training: an embedded default, Keras's cached sets, and your own files.

`load_dataset(source)` returns a [`Dataset`][] for a registered name
(`"digits"`, `"mnist"`, `"fashion_mnist"`, `"cifar10"`) or a path (an
`.npz`, a folder of IDX files, a folder of images); see
[`zoo.data.builtin`][] and [`zoo.data.files`][].

Adding a dataset is one function and one decorator line, in any file you
import before training:

```python
from zoo.data import Dataset, Split, register_dataset

@register_dataset("squares")
def load_squares():
    ...
    return Dataset("squares", ["small", "large"], Split(x_train, y_train),
                   Split(x_test, y_test))
```

Then `zoo-train --dataset squares` (or `zoo.train(dataset="squares")`)
trains on it. The list below is how the built-in loaders register: importing
this package imports them (`zoo.data.dataset` never imports them back).

The modules: [`zoo.data.dataset`][] (the types and the registry),
[`zoo.data.labels`][] (label checks and splits), [`zoo.data.images`][]
(image files, resizing, batches, memory), [`zoo.data.arrays`][] (pixel
arrays from files), [`zoo.data.builtin`][] and [`zoo.data.files`][] (the
loaders).
"""

from zoo.data import builtin as _builtin  # noqa: F401  (registers digits and Keras's sets)
from zoo.data import files as _files  # noqa: F401  (registers .npz, IDX and image folders)
from zoo.data.arrays import to_unit_float
from zoo.data.builtin import CLASS_NAMES, KERAS_CACHE_FILES, keras_cache_dir
from zoo.data.dataset import (
    DataError,
    Dataset,
    Split,
    list_datasets,
    load_dataset,
    register_dataset,
    scan_images,
)
from zoo.data.files import read_idx
from zoo.data.images import (
    IMAGE_EXTENSIONS,
    convert_channels,
    load_image_file,
    make_inputs,
    prepare_arrays,
    resize_images,
)
from zoo.data.labels import (
    TEST_FRACTION,
    check_label_range,
    ordered_split,
    rare_class_warnings,
    stratified_split,
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

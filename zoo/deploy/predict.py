"""Classify image files with a trained zoo model.

Command line:

```bash
zoo-predict runs/lenet5/model.keras digit.png another.png --top 3
zoo-predict runs/lenet5/model.keras my_digits/ --batch-size 64
zoo-predict lenet5_modern:mnist my_digit.png --json
```

Images are read as `zoo-train` reads them (`preprocess="scale"`), or prepared as MNIST's
digits were (`"digit"`, [`zoo.preprocess_digit`][zoo.data.digit.preprocess_digit]),
or scaled and then normalised for torchvision's weights (`"torch"`); class names come from
the `classes.json` written beside `model.keras`. A folder stands for the image files under
it. Images go through the model a batch at a time, and a file that cannot be read, or a digit
image that is blank, is reported on its own line while the rest are classified.

The model argument ([`open_source`][]) is read as a path when that path exists, and
otherwise as `MODEL:WEIGHTS` (`lenet5_modern:mnist`): the registered model built with
that preset, its class names from the dataset it was trained on, and its preparation from
the preset's `prepare`. A `model.keras` that `zoo-train` wrote has its class names in
`classes.json` and its preparation in `preprocessing.json` beside it; a folder from an
older zoo without that record is prepared by scaling, as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from zoo.deploy.model_file import DeployError, keras_outputs, load_zoo_model
from zoo.weights.presets.declaration import PREPARATIONS

__all__ = [
    "PREPARATIONS",
    "PREPROCESSING_FILE",
    "UNSURE_BELOW",
    "Source",
    "classify",
    "collect_images",
    "load_class_names",
    "open_source",
    "predict_files",
    "preset_inputs",
    "recorded_preparation",
]

UNSURE_BELOW = 0.5  # a top probability below this is marked as unsure
BATCH_SIZE = 32  # images in memory at a time: 32 x 227 x 227 x 3 float32 (AlexNet) = 20 MB
EXIT_SOME_FAILED = 1  # some images were predicted, others could not be read


def load_class_names(model_path, classes_path, count):
    """Class names from `classes.json` (beside the model unless given), else the
    ImageNet names for a 1000-class model, else the indices."""
    path = classes_path or os.path.join(
        os.path.dirname(os.path.abspath(model_path)), "classes.json"
    )
    if not os.path.isfile(path):
        if classes_path:
            raise DeployError(f"class names file not found: {classes_path}.")
        if count == 1000:
            from zoo.weights.imagenet import class_names

            return class_names(), True
        return [str(i) for i in range(count)], False
    try:
        with open(path, encoding="utf-8") as handle:
            names = json.load(handle)
    except (OSError, ValueError) as error:
        raise DeployError(f"cannot read class names from {path}: {error}.") from None
    if not isinstance(names, list) or len(names) != count:
        raise DeployError(
            f"{path} should list {count} class names (the model's outputs), "
            f"found {len(names) if isinstance(names, list) else type(names).__name__}."
        )
    return [str(name) for name in names], True


def classify(model, image_paths, top=5, preprocess="scale", batch_size=BATCH_SIZE):
    """Top `top` classes of each image: a list of `[(class_index, probability), ...]`.

    Images are read as `zoo-train` reads them: converted to the model's
    channels, resized (bilinear) to its input and scaled to [0, 1]. With
    `preprocess="digit"` they are prepared by
    [`zoo.preprocess_digit`][zoo.data.digit.preprocess_digit] instead (then resized to
    the input if it is not 28x28). With `preprocess="torch"`
    (torchvision's ImageNet weights) they are then normalised by
    [`zoo.weights.imagenet.preprocess_input`][]. They go through the model
    `batch_size` at a time. A file that cannot be read raises
    [`DeployError`][]; [`predict_files`][] skips it instead.
    """
    results = []
    for _, best, problem in predict_files(model, image_paths, top, preprocess, batch_size):
        if problem is not None:
            raise DeployError(problem)
        results.append(best)
    return results


def predict_files(model, image_paths, top=5, preprocess="scale", batch_size=BATCH_SIZE):
    """Yield `(path, best, None)` per image, or `(path, None, problem)` for a bad file.

    Files are read and classified `batch_size` at a time, so memory stays
    bounded however many there are, and one unreadable file costs only itself.
    """
    shape = tuple(model.inputs[0].shape[1:])
    for start in range(0, len(image_paths), batch_size):
        chunk = image_paths[start : start + batch_size]
        loaded = [_read_image(path, shape, preprocess) for path in chunk]
        good = [image for image in loaded if not isinstance(image, str)]
        ranked = iter(_top_classes(model, good, top, preprocess) if good else [])
        for path, image in zip(chunk, loaded, strict=True):
            if isinstance(image, str):
                yield path, None, image
            else:
                yield path, next(ranked), None


def _read_image(path, shape, preprocess="scale"):
    """The image at `path` as the model takes it, or one line saying why it cannot be."""
    from PIL import Image

    from zoo.data import DataError, load_image_file

    if not os.path.isfile(path):
        return f"image not found: {path}."
    try:
        if preprocess == "digit":
            return _as_input(_digit(path), shape)
        return load_image_file(path, shape)
    except DataError as error:
        return str(error)
    except Image.DecompressionBombError as error:  # Pillow refuses before decoding
        return f"cannot read image {path}: {error} Refused; resize it first."
    except MemoryError:
        return f"cannot read image {path}: it does not fit in memory. Resize it first."
    except Exception as error:  # a decoder's own failure: this file only
        return f"cannot read image {path}: {type(error).__name__}: {error}."


def _digit(path):
    from zoo.data.dataset import DataError
    from zoo.data.digit import preprocess_digit

    try:
        return preprocess_digit(path)
    except DataError as error:  # say which file: the digit's own message does not
        message = str(error)
        raise DataError(message if path in message else f"{path}: {message}") from None


def _as_input(digit, shape):
    """A `(28, 28, 1)` prepared digit resized (bilinear) and given the model's channels."""
    height, width, channels = shape
    if (height, width) != digit.shape[:2]:
        from PIL import Image

        picture = Image.fromarray(digit[..., 0], mode="F").resize((width, height), Image.BILINEAR)
        digit = np.asarray(picture, dtype="float32")[..., None]
    return np.repeat(digit, channels, axis=-1) if channels != 1 else digit


def _top_classes(model, images, top, preprocess):
    """The `top` (class index, probability) pairs of each image in one batch."""
    images = np.stack(images).astype("float32")
    if preprocess == "torch":
        from zoo.weights.imagenet import preprocess_input

        images = preprocess_input(images * 255.0, mode="torch")
    probabilities = _as_probabilities(keras_outputs(model, images))
    order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top]
    return [
        [(int(i), float(row[i])) for i in best]
        for row, best in zip(probabilities, order, strict=True)
    ]


def collect_images(paths):
    """The image files `paths` name, each folder replaced by the images under it, sorted.

    Returns `(files, problems)`: `problems` holds `(folder, line)` for each folder
    without any image. Hidden files and folders (names starting with a dot)
    inside a folder are skipped; a file named on the command line is kept
    whatever its name, so that a missing or unreadable one is reported, not
    dropped.
    """
    from zoo.data import IMAGE_EXTENSIONS

    files, problems = [], []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        found = []
        for root, folders, names in os.walk(path):
            folders[:] = [folder for folder in folders if not folder.startswith(".")]
            found += [
                os.path.join(root, name)
                for name in names
                if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
            ]
        files += sorted(found)
        if not found:
            kinds = ", ".join(IMAGE_EXTENSIONS)
            problems.append((path, f"no image files ({kinds}) in folder {path}."))
    return files, problems


def _as_probabilities(scores):
    """Softmax outputs pass through; logits (`classifier_activation=None`) get a softmax."""
    if np.all(scores >= 0) and np.allclose(scores.sum(axis=-1), 1.0, atol=1e-3):
        return scores
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- what to predict with

PREPROCESSING_FILE = "preprocessing.json"  # written by zoo-train beside model.keras
DEFAULT_PREPARATION = "scale"


@dataclass
class Source:
    """A model to predict with. `names`: one per output for a preset; `None` for a
    model file ([`load_class_names`][] reads them); `prepare`: what it asks for."""

    model: object
    names: list | None
    prepare: str
    label: str  # what messages call it


def open_source(argument):
    """The [`Source`][] that `argument` (a path, or `MODEL:WEIGHTS`) names.

    A path that exists, a `.keras` name, or a name with a folder in it before its first
    colon (`C:\\runs\\model.keras`, `runs/a:b/model.keras`) is read as a path.
    """
    path = os.fspath(argument)
    name = path.split(":", 1)[0]
    if os.path.exists(path) or ":" not in path or path.endswith(".keras") or "/" in name:
        model = load_zoo_model(path)
        return Source(model, None, recorded_preparation(path), path)
    name, weights = path.split(":", 1)
    return _preset_source(name, weights)


def recorded_preparation(model_path):
    """The preparation `zoo-train` recorded beside `model_path`; `"scale"` if none."""
    record = os.path.join(os.path.dirname(os.path.abspath(model_path)), PREPROCESSING_FILE)
    if not os.path.isfile(record):
        return DEFAULT_PREPARATION
    try:
        with open(record, encoding="utf-8") as handle:
            prepare = json.load(handle).get("prepare")
    except (OSError, ValueError, AttributeError) as error:
        raise DeployError(
            f"cannot read {record}: {error}. Fix or remove it, or pass --preprocess."
        ) from None
    if prepare not in PREPARATIONS:
        raise DeployError(
            f"{record} asks for preparation {prepare!r}, not one of {', '.join(PREPARATIONS)}; "
            "pass --preprocess to choose one."
        )
    return prepare


def _preset_source(name, weights):
    import zoo.models  # noqa: F401  (registers the models)
    from zoo.registry import get_model, list_models
    from zoo.weights.presets import PRESETS, find

    shipped = ", ".join(f"{model}:{preset}" for model, preset in sorted(PRESETS))
    if name not in list_models():
        raise DeployError(
            f"'{name}:{weights}' is neither an existing file nor a known MODEL:WEIGHTS: no "
            f"model named '{name}'. Presets: {shipped}."
        )
    preset = find(name, weights)
    if preset is None:
        raise DeployError(
            f"'{name}:{weights}' is neither an existing file nor a known MODEL:WEIGHTS: "
            f"{name} has no preset '{weights}'. Presets: {shipped}."
        )
    model = get_model(name, weights=weights)
    return Source(model, _preset_class_names(preset), preset.prepare, f"{name}:{weights}")


def _preset_class_names(preset):
    """The class names of the dataset the preset was trained on, else the indices (never a
    `classes.json` that happens to lie in the working folder)."""
    from zoo.data.builtin import CLASS_NAMES

    names = CLASS_NAMES.get(preset.dataset)
    if names is None and preset.dataset == "digits":
        names = [str(d) for d in range(10)]
    if names is None and preset.classes == 1000:
        from zoo.weights.imagenet import class_names

        names = class_names()
    if names is None or len(names) != preset.classes:
        return [str(i) for i in range(preset.classes)]
    return list(names)


def preset_inputs():
    """One line per shipped preset: `MODEL:WEIGHTS` and the input it expects."""
    from zoo.weights.presets import PRESETS

    return [
        f"  {model}:{name}  ({preset.prepare}) {preset.preprocessing}"
        for (model, name), preset in sorted(PRESETS.items())
    ]

"""Classify image files with a trained zoo model.

Command line::

    zoo-predict runs/lenet5/model.keras digit.png another.png --top 3

Images are read as ``zoo-train`` reads them; class names come from the
``classes.json`` written beside ``model.keras``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from zoo.errors import run_command
from zoo.model_file import DeployError, keras_outputs, load_zoo_model

__all__ = ["classify", "load_class_names", "main"]


def load_class_names(model_path, classes_path, count):
    """Class names from ``classes.json`` (beside the model unless given), else the
    ImageNet names for a 1000-class model, else the indices."""
    path = classes_path or os.path.join(
        os.path.dirname(os.path.abspath(model_path)), "classes.json"
    )
    if not os.path.isfile(path):
        if classes_path:
            raise DeployError(f"class names file not found: {classes_path}.")
        if count == 1000:
            from zoo.imagenet import class_names

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


def classify(model, image_paths, top=5, preprocess="scale"):
    """Top ``top`` classes of each image: a list of ``[(class_index, probability), ...]``.

    Images are read as ``zoo-train`` reads them: converted to the model's
    channels, resized (bilinear) to its input and scaled to [0, 1]. With
    ``preprocess="torch"`` (torchvision's ImageNet weights) they are then
    normalised by :func:`zoo.imagenet.preprocess_input`.
    """
    from zoo.data import DataError, load_image_file

    shape = tuple(model.inputs[0].shape[1:])
    batch = []
    for path in image_paths:
        if not os.path.isfile(path):
            raise DeployError(f"image not found: {path}.")
        try:
            batch.append(load_image_file(path, shape))
        except DataError as error:
            raise DeployError(str(error)) from None
    images = np.stack(batch).astype("float32")
    if preprocess == "torch":
        from zoo.imagenet import preprocess_input

        images = preprocess_input(images * 255.0, mode="torch")
    scores = keras_outputs(model, images)
    probabilities = _as_probabilities(scores)
    order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top]
    return [
        [(int(i), float(row[i])) for i in best]
        for row, best in zip(probabilities, order, strict=True)
    ]


def _as_probabilities(scores):
    """Softmax outputs pass through; logits (``classifier_activation=None``) get a softmax."""
    if np.all(scores >= 0) and np.allclose(scores.sum(axis=-1), 1.0, atol=1e-3):
        return scores
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _predict_parser():
    parser = argparse.ArgumentParser(
        prog="zoo-predict",
        description="Classify images with a trained zoo model; class names come from the "
        "classes.json that zoo-train wrote beside model.keras (a 1000-class model without "
        "one gets the ImageNet names).",
    )
    parser.add_argument("model", help="a .keras file, e.g. runs/lenet5/model.keras")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--top", type=int, default=3, help="how many classes to print per image")
    parser.add_argument("--classes", default=None, help="class names JSON (default: beside model)")
    parser.add_argument(
        "--preprocess",
        choices=("scale", "torch"),
        default="scale",
        help="scale: pixels to [0, 1], as zoo-train reads them (default); torch: then the "
        "ImageNet mean and std, for torchvision's weights",
    )
    return parser


def main(argv=None):
    """``zoo-predict``: one line on stderr and exit code 2 for bad input."""
    return run_command("zoo-predict", _predict_command, argv)


def _predict_command(argv):
    options = _predict_parser().parse_args(argv)
    if options.top < 1:
        raise DeployError(f"--top must be at least 1, got {options.top}.")
    model = load_zoo_model(options.model)
    count = int(model.outputs[0].shape[-1])
    names, found = load_class_names(options.model, options.classes, count)
    results = classify(model, options.images, min(options.top, count), options.preprocess)
    if not found:
        print("note: no classes.json beside the model; printing class indices", file=sys.stderr)
    for path, best in zip(options.images, results, strict=True):
        print(path)
        for index, probability in best:
            print(f"  {probability:7.4f}  {names[index]}")
    return 0

"""What ``zoo-predict`` classifies with: a ``model.keras`` or a shipped preset, and how each
wants its images prepared.

The model argument is read as a path when that path exists, and otherwise as
``MODEL:WEIGHTS`` (``lenet5_modern:mnist``): the registered model built with that preset
(:func:`zoo.get_model`), its class names from the dataset it was trained on, and its
preparation from the preset's ``prepare``. A ``model.keras`` that ``zoo-train`` wrote has
its class names in ``classes.json`` and its preparation in ``preprocessing.json`` beside it;
a folder from an older zoo without that record is prepared by scaling, as before.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from zoo.deploy.model_file import DeployError, load_zoo_model

__all__ = [
    "PREPARATIONS",
    "PREPROCESSING_FILE",
    "Source",
    "open_source",
    "preset_inputs",
    "recorded_preparation",
]

PREPARATIONS = ("scale", "digit", "torch")  # as zoo.weights.presets.declaration's
PREPROCESSING_FILE = "preprocessing.json"  # written by zoo-train beside model.keras
DEFAULT_PREPARATION = "scale"


@dataclass
class Source:
    """A model to predict with. ``names``: one per output, or ``None`` (the caller's
    fallback: classes.json, ImageNet names, indices); ``prepare``: what it asks for."""

    model: object
    names: list | None
    prepare: str
    label: str  # what messages call it


def open_source(argument):
    """The :class:`Source` that ``argument`` (a path, or ``MODEL:WEIGHTS``) names."""
    path = os.fspath(argument)
    if os.path.exists(path) or ":" not in path:
        model = load_zoo_model(path)
        return Source(model, None, recorded_preparation(path), path)
    name, weights = path.split(":", 1)
    return _preset_source(name, weights)


def recorded_preparation(model_path):
    """The preparation ``zoo-train`` recorded beside ``model_path``; ``"scale"`` if none."""
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
    """The class names of the dataset the preset was trained on, when the zoo knows them."""
    from zoo.data.builtin import CLASS_NAMES

    names = CLASS_NAMES.get(preset.dataset)
    if names is None and preset.dataset == "digits":
        names = [str(d) for d in range(10)]
    if names is None and preset.classes == 1000:
        from zoo.weights.imagenet import class_names

        names = class_names()
    return list(names) if names is not None and len(names) == preset.classes else None


def preset_inputs():
    """One line per shipped preset: ``MODEL:WEIGHTS`` and the input it expects."""
    from zoo.weights.presets import PRESETS

    return [
        f"  {model}:{name}  ({preset.prepare}) {preset.preprocessing}"
        for (model, name), preset in sorted(PRESETS.items())
    ]

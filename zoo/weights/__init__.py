"""Pretrained weights: loading them into a built model, and checking the files the zoo ships.

Besides `None`, `weights=` takes, as in `keras.applications`:

- a **preset name**, declared in [`zoo.weights.presets`][]: `"digits"` and `"mnist"`
  for `lenet5` and `lenet5_modern`, trained by the zoo's own recipe and shipped in the
  package, checked against its SHA-256 before loading; `"imagenet"` for `alexnet_torchvision`,
  torchvision's `alexnet-owt-7be5be79.pth` from the PyTorch hub cache
  (`$TORCH_HOME/hub/checkpoints`), if the user has it. The zoo never downloads anything.
- a **file**: a `.weights.h5` (`model.save_weights`), or for a model that declares a
  PyTorch layout (`alexnet_torchvision`) a state dict (`.pth` / `.pt`), read by
  [`zoo.weights.torchvision`][]. Only that read needs torch; `zoo-convert SRC.pth
  DST.weights.h5` ([`zoo.weights.convert`][]) turns it once into a file every backend loads.

A shipped preset loads straight into the model being built (`model.load_weights`). Its
classes and channels are checked against the declaration first, as `keras.applications`
refuses `weights="imagenet"` with other `classes`: for a new head, build with
`include_top=False` (the features load at any input size) and add one.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from importlib import resources

from zoo.errors import ZooError
from zoo.weights.presets import TORCH_LAYOUTS, find, preset_names, torch_layout
from zoo.weights.presets.alexnet import IMAGENET_FILE
from zoo.weights.torchvision import TORCH_SUFFIXES, read_torch_state_dict

__all__ = [
    "IMAGENET_FILE",
    "KERAS_SUFFIX",
    "TORCH_SUFFIXES",
    "assign_by_name",
    "available_weights",
    "load_weights",
    "preset_path",
    "sha256_of",
]

KERAS_SUFFIX = ".weights.h5"


def available_weights(model_name):
    """The names `weights=` accepts for a registered model, besides `None` and a path."""
    return list(preset_names(model_name))


# --- the entry point the builders call ------------------------------------------------------


def load_weights(model, weights, model_name):
    """Load `weights` (a preset name or a file) into `model`; return `model`.

    `model_name` is the registry name of the architecture (`"lenet5"`,
    `"alexnet_torchvision"`...): its declarations say which presets and file kinds apply.
    """
    if not isinstance(weights, (str, os.PathLike)):
        raise ZooError(_weights_usage(model_name, weights))
    path = os.fspath(weights)
    preset = find(model_name, path)
    if preset is not None:
        return _load_preset(model, preset)
    if path.endswith(TORCH_SUFFIXES):
        return _load_torch_file(model, path, model_name)
    if path.endswith(KERAS_SUFFIX):
        return _load_keras_file(model, path)
    raise ZooError(_weights_usage(model_name, weights))


def _weights_usage(model_name, weights):
    names = ", ".join(repr(n) for n in available_weights(model_name)) or "none"
    kinds = "a '.weights.h5' file (saved with model.save_weights)"
    layout = torch_layout(model_name)
    if layout is not None:
        kinds += f" or a {layout.source} state dict ('.pth' / '.pt')"
    return (
        f"weights must be None, a preset name ({names} for {model_name}) or a path to {kinds}, "
        f"got {weights!r}."
    )


def _load_keras_file(model, path):
    if not os.path.isfile(path):
        raise ZooError(f"weights file {path!r} does not exist. Check the path.")
    try:
        _keras_load(model, path)
    except Exception as error:  # Keras raises several types for a mismatch
        raise ZooError(
            f"weights file {path!r} does not match model '{model.name}': {error}. "
            "Build the model with the same variant, input_shape, classes and include_top "
            "as the one that saved the weights."
        ) from None
    return model


def _keras_load(model, path):
    """`model.load_weights(path)`, without the warning Keras gives before a mismatch error.

    That warning blames a file "saved with a Keras version that did not serialize sublayers";
    the error that follows says what is wrong, and the zoo's message how to fix it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping nested container")
        model.load_weights(path)


# --- presets --------------------------------------------------------------------------------


def preset_path(preset):
    """The file of `preset`: a shipped one checked against its SHA-256, or the torch cache's."""
    if preset.location == "torch_hub":
        return _torch_hub_file(preset)
    path = str(resources.files("zoo.weights.presets").joinpath(preset.file))
    if not os.path.isfile(path):
        raise ZooError(
            f"the '{preset.name}' weights of {preset.model} are missing from the installed "
            f"package ({path}). Reinstall the zoo, or regenerate them with `make weights`."
        )
    digest = sha256_of(path)
    if digest != preset.sha256:
        raise ZooError(
            f"the '{preset.name}' weights of {preset.model} ({path}) fail their checksum: "
            f"SHA-256 {digest}, expected {preset.sha256}. The file is damaged or was "
            "replaced: reinstall the zoo, or regenerate it with `make weights`."
        )
    return path


def sha256_of(path):
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _torch_hub_file(preset):
    """Where `torch.hub` keeps `preset.file` ($TORCH_HOME/hub/checkpoints); never fetched."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch"
    )
    path = os.path.join(home, "hub", "checkpoints", preset.file)
    if not os.path.isfile(path):
        raise ZooError(
            f"weights={preset.name!r} loads {preset.file}, which is not in the PyTorch cache "
            f"({path}); the zoo never downloads. Fetch it once ({preset.fetch}) and pass "
            "weights=PATH."
        )
    return path


def _load_preset(model, preset):
    """Load the (verified) file of `preset` into `model` itself, or say why it cannot."""
    path = preset_path(preset)
    if path.endswith(TORCH_SUFFIXES):
        return _load_torch_file(model, path, preset.model)
    _check_preset_fits(model, preset)
    try:
        _keras_load(model, path)
    except Exception:  # Keras raises several types for a mismatch
        height, width, _ = preset.input_shape
        raise ZooError(
            f"the '{preset.name}' weights of {preset.model} were trained at input_shape="
            f"{preset.input_shape!r} and do not fit a model built at "
            f"{tuple(model.input_shape[1:])!r}: use that input_shape (resize images to "
            f"{height}x{width}), or include_top=False for features at any size."
        ) from None
    return model


def _check_preset_fits(model, preset):
    """Refuse other input channels, or other classes when the model has the head."""
    from zoo.registry import model_spec

    channels = model.input_shape[-1]
    if channels != preset.input_shape[-1]:
        raise ZooError(
            f"the '{preset.name}' weights of {preset.model} were trained on "
            f"{preset.input_shape[-1]}-channel images (input_shape={preset.input_shape!r}), "
            f"and this model takes {channels} channels: build it with "
            f"input_shape=(height, width, {preset.input_shape[-1]})."
        )
    head = _layer(model, model_spec(preset.model).classifier)
    classes = head.weights[0].shape[-1] if head is not None else preset.classes
    if classes != preset.classes:
        raise ZooError(
            f"the '{preset.name}' weights of {preset.model} have {preset.classes} classes and "
            f"this model {classes}: build it with classes={preset.classes}, or with "
            "include_top=False and put your own head on its features."
        )


def _layer(model, name):
    return next((layer for layer in model.layers if name and layer.name == name), None)


# --- PyTorch files and named arrays ---------------------------------------------------------


def _load_torch_file(model, path, model_name):
    from zoo.registry import model_spec

    layout = torch_layout(model_name)
    if layout is None:
        readers = ", ".join(f"{name} ({each.source})" for name, each in TORCH_LAYOUTS.items())
        example = next(iter(TORCH_LAYOUTS), "MODEL")
        raise ZooError(
            f"a PyTorch file loads only into {readers or 'no model'}, not {model_name}. "
            f"Use zoo.get_model({example!r}, weights={path!r})."
        )
    weighted = [layer.name for layer in model.layers if layer.weights]
    arrays = layout.to_keras(read_torch_state_dict(path), path, weighted)
    hint = f"Build {model_name} with the defaults of the model that saved the file."
    return assign_by_name(model, arrays, path, hint, head=model_spec(model_name).classifier)


def assign_by_name(model, arrays, source, hint="", head=None):
    """Set each weighted layer of `model` from `arrays[layer.name]` (Keras layout).

    A `head` layer (the spec's `classifier`) whose number of classes differs keeps
    its initialisation, with one warning. Any other shape difference is one `ZooError`
    naming the layer, both shapes and `hint`.
    """
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in arrays:
            raise ZooError(f"{source} has no weights for layer '{layer.name}' of {model.name}.")
        values = arrays[layer.name]
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(v.shape) for v in values]
        if found == expected:
            layer.set_weights(values)
        elif layer.name == head and found[0][:-1] == expected[0][:-1]:
            warnings.warn(
                f"{source} has {found[0][-1]} classes and the model {expected[0][-1]}: the head "
                f"'{head}' keeps its random initialisation (train it, e.g. with zoo-train).",
                stacklevel=4,
            )
        else:
            raise ZooError(
                f"{source}: layer '{layer.name}' has weights of shapes {found}, but "
                f"{model.name} needs {expected}. {hint}".strip()
            )
    return model

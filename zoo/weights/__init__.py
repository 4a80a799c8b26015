"""Pretrained weights: the shipped presets, torchvision's AlexNet files, and ``zoo-convert``.

Three kinds of ``weights=`` a builder accepts besides ``None``:

- a **preset name**: ``"digits"`` for ``lenet5`` and ``lenet5_modern``, weights the
  zoo's own recipe trained on the embedded digits (``make weights`` remakes them). The
  file ships inside the package and is checked against its SHA-256 before loading.
- ``"imagenet"`` for ``alexnet_torchvision``: torchvision's ``alexnet-owt-7be5be79.pth``
  from the PyTorch hub cache (``$TORCH_HOME/hub/checkpoints``), if the user has it. The
  zoo never downloads anything.
- a **file**: a ``.weights.h5`` (``model.save_weights``), or for ``alexnet_torchvision``
  a torchvision AlexNet state dict (``.pth`` / ``.pt``), read with
  ``torch.load(weights_only=True)``. Only that read needs PyTorch; ``zoo-convert
  SRC.pth DST.weights.h5`` (:mod:`zoo.weights.convert`) turns it once into a file every
  backend loads.

PyTorch stores tensors in another layout than a channels-last Keras model
(torchvision's ``AlexNet``, Krizhevsky et al. 2012 as "one weird trick", Krizhevsky 2014)::

    convolution  torch (out, in, kh, kw)  ->  Keras (kh, kw, in, out)
    dense        torch (out, in)          ->  Keras (in, out)

and torchvision flattens pool5 as ``(C, H, W)`` where this model flattens ``(H, W, C)``,
so fc1's 9216 input rows are reordered as well: see :func:`torch_fc1_to_keras`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from dataclasses import dataclass
from importlib import resources

from zoo.errors import ZooError

__all__ = [
    "PRESETS",
    "Preset",
    "available_weights",
    "load_weights",
    "read_torch_state_dict",
    "torch_fc1_to_keras",
    "torchvision_to_keras",
]

TORCH_SUFFIXES = (".pth", ".pt")
KERAS_SUFFIX = ".weights.h5"

# zoo layer name -> torchvision AlexNet state-dict prefix (nn.Sequential indices).
TORCHVISION_ALEXNET = {
    "conv1": "features.0",
    "conv2": "features.3",
    "conv3": "features.6",
    "conv4": "features.8",
    "conv5": "features.10",
    "fc1": "classifier.1",
    "fc2": "classifier.4",
    "predictions": "classifier.6",
}
CLASSIFIER = ("fc1", "fc2", "predictions")
POOL_GRID = (6, 6)  # torchvision's AdaptiveAvgPool2d((6, 6)) before fc1

# torchvision's ImageNet AlexNet; the 8 hex digits in the name begin its file's SHA-256.
IMAGENET_FILE = "alexnet-owt-7be5be79.pth"
IMAGENET_URL = "https://download.pytorch.org/models/" + IMAGENET_FILE


@dataclass(frozen=True)
class Preset:
    """A weights file shipped in ``zoo/weights/presets``; its facts are in ``presets.json``."""

    model: str
    name: str
    file: str
    sha256: str
    dataset: str
    test_accuracy: float
    input_shape: tuple
    classes: int


def _manifest():
    manifest = resources.files("zoo.weights.presets").joinpath("presets.json")
    text = manifest.read_text(encoding="utf-8")
    return json.loads(text)


def _presets():
    return {
        (entry["model"], entry["name"]): Preset(
            **{**entry, "input_shape": tuple(entry["input_shape"])}
        )
        for entry in _manifest()["presets"]
    }


PRESETS = _presets()


def available_weights(model_name):
    """The names ``weights=`` accepts for a registered model, besides ``None`` and a path."""
    names = [name for model, name in PRESETS if model == model_name]
    if model_name == "alexnet_torchvision":
        names.append("imagenet")
    return sorted(names)


# --- the entry point the builders call ------------------------------------------------------


def load_weights(model, weights, model_name):
    """Load ``weights`` (a preset name, ``"imagenet"`` or a file) into ``model``.

    ``model_name`` is the registry name of the architecture (``"lenet5"``,
    ``"alexnet_torchvision"``...), which says which presets and file kinds apply.
    """
    if not isinstance(weights, (str, os.PathLike)):
        raise ZooError(_weights_usage(model_name, weights))
    path = os.fspath(weights)
    if (model_name, path) in PRESETS:
        return _load_preset(model, PRESETS[(model_name, path)])
    if path == "imagenet" and model_name == "alexnet_torchvision":
        path = _imagenet_file()
    if path.endswith(TORCH_SUFFIXES):
        return _load_torch_file(model, path, model_name)
    if path.endswith(KERAS_SUFFIX):
        return _load_keras_file(model, path)
    raise ZooError(_weights_usage(model_name, weights))


def _weights_usage(model_name, weights):
    names = ", ".join(repr(n) for n in available_weights(model_name)) or "none"
    kinds = "a '.weights.h5' file (saved with model.save_weights)"
    if model_name == "alexnet_torchvision":
        kinds += " or a torchvision AlexNet state dict ('.pth' / '.pt')"
    return (
        f"weights must be None, a preset name ({names} for {model_name}) or a path to {kinds}, "
        f"got {weights!r}."
    )


def _load_keras_file(model, path):
    if not os.path.isfile(path):
        raise ZooError(f"weights file {path!r} does not exist. Check the path.")
    try:
        model.load_weights(path)
    except Exception as error:  # Keras raises several types for a mismatch
        raise ZooError(
            f"weights file {path!r} does not match model '{model.name}': {error}. "
            "Build the model with the same variant, input_shape, classes and include_top "
            "as the one that saved the weights."
        ) from None
    return model


# --- copying named arrays into a model ------------------------------------------------------


def assign_by_name(model, arrays, source, hint=""):
    """Set each weighted layer of ``model`` from ``arrays[layer.name]`` (Keras layout).

    Layers the model lacks (the classifier of an ``include_top=False`` model)
    are skipped. A ``predictions`` layer whose number of classes differs keeps
    its initialisation, with one warning. Any other shape difference is one
    ``ZooError`` naming the layer, both shapes and ``hint``.
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
        elif layer.name == "predictions" and found[0][:-1] == expected[0][:-1]:
            warnings.warn(
                f"{source} has {found[0][-1]} classes and the model {expected[0][-1]}: the head "
                "'predictions' keeps its random initialisation (train it, e.g. with zoo-train).",
                stacklevel=4,
            )
        else:
            raise ZooError(
                f"{source}: layer '{layer.name}' has weights of shapes {found}, but "
                f"{model.name} needs {expected}. {hint}".strip()
            )
    return model


def _layer_arrays(model):
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


# --- presets --------------------------------------------------------------------------------


def preset_path(preset):
    """The installed file of ``preset``, checked against its SHA-256."""
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


def _load_preset(model, preset):
    from zoo.registry import get_model

    trained = get_model(preset.model, input_shape=preset.input_shape, classes=preset.classes)
    trained.load_weights(preset_path(preset))
    height, width, channels = preset.input_shape
    hint = (
        f"The '{preset.name}' weights were trained at input_shape={preset.input_shape!r} with "
        f"{preset.classes} classes: use that input_shape (resize images to {height}x{width}), "
        "or include_top=False for features at any size."
    )
    return assign_by_name(model, _layer_arrays(trained), f"preset '{preset.name}'", hint)


# --- torchvision AlexNet --------------------------------------------------------------------


def _imagenet_file():
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch"
    )
    path = os.path.join(home, "hub", "checkpoints", IMAGENET_FILE)
    if not os.path.isfile(path):
        raise ZooError(
            f"weights='imagenet' loads torchvision's {IMAGENET_FILE}, which is not in the "
            f"PyTorch cache ({path}); the zoo never downloads. Fetch it once ({IMAGENET_URL}, "
            "or torchvision.models.alexnet(weights='IMAGENET1K_V1')) and pass weights=PATH."
        )
    return path


# Our own words for a file torch's safe loader refused: torch's own message suggests turning
# that safety off, which would run whatever code the file carries. The zoo never does.
_NOT_PLAIN = (
    "{path} is not a plain state dict of tensors: it holds other Python objects, and it was "
    "not loaded because loading them could run code. Re-save it as a state dict where it was "
    "made: torch.save(model.state_dict(), path)."
)


def _first_line(error):
    """The first line of ``error``, never one that talks about ``weights_only``."""
    text = str(error).strip()
    line = text.splitlines()[0][:200] if text else ""
    return "" if "weights_only" in line else line


def read_torch_state_dict(path):
    """``{key: float32 array}`` from a PyTorch state-dict file (``torch.load(weights_only=True)``).

    Only this function imports torch, and only when called.
    """
    if not os.path.isfile(path):
        raise ZooError(f"weights file {path!r} does not exist. Check the path.")
    try:
        import torch
    except ImportError:
        raise ZooError(
            f"reading the PyTorch file {path} needs torch, which is not installed. Convert it "
            f"once on a machine with torch: zoo-convert {path} alexnet.weights.h5, then pass "
            "weights='alexnet.weights.h5' (it loads on every backend without torch)."
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only met an object other than tensors
        raise ZooError(_NOT_PLAIN.format(path=path)) from None
    except Exception as error:  # zip and torch errors
        raise ZooError(
            f"cannot read {path} as a PyTorch state dict ({type(error).__name__}: "
            f"{_first_line(error)}). Save one with torch.save(model.state_dict(), path)."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint that wraps the state dict
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ZooError(
            f"{path} holds a {type(state).__name__}, not a state dict of tensors. Save one "
            "with torch.save(model.state_dict(), path)."
        )
    return {
        key.removeprefix("module."): value.detach().cpu().float().numpy()
        for key, value in state.items()
    }


def torch_fc1_to_keras(weight, channels, grid=POOL_GRID):
    """torchvision's fc1 ``(out, C*H*W)`` -> a Keras kernel ``(H*W*C, out)``.

    Row ``c*H*W + h*W + w`` of torch's input is the pooled value at ``(h, w, c)``;
    a channels-last ``Flatten`` puts that value at ``h*W*C + w*C + c``.
    """
    height, width = grid
    out = weight.shape[0]
    grid_kernel = weight.reshape(out, channels, height, width).transpose(2, 3, 1, 0)
    return grid_kernel.reshape(height * width * channels, out)


def torchvision_to_keras(state, source, include_classifier=True):
    """Keras-layout arrays per zoo layer from a torchvision AlexNet state dict.

    Returns ``{"conv1": [kernel (11, 11, 3, 64), bias (64,)], ...,
    "predictions": [kernel (4096, classes), bias (classes,)]}``.
    """
    expected = {
        f"{prefix}.{kind}" for prefix in TORCHVISION_ALEXNET.values() for kind in ("weight", "bias")
    }
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        raise ZooError(
            f"{source} is not a torchvision AlexNet state dict: "
            f"{'missing ' + ', '.join(missing[:4]) if missing else ''}"
            f"{'; ' if missing and extra else ''}"
            f"{'unexpected ' + ', '.join(extra[:4]) if extra else ''}. Save "
            "torchvision.models.alexnet(...).state_dict()."
        )
    arrays = {}
    for layer, prefix in TORCHVISION_ALEXNET.items():
        if layer in CLASSIFIER and not include_classifier:
            continue
        weight, bias = state[prefix + ".weight"], state[prefix + ".bias"]
        ndim = 4 if layer.startswith("conv") else 2
        if weight.ndim != ndim or bias.shape != (weight.shape[0],):
            raise ZooError(
                f"{source}: {prefix}.weight {weight.shape} and {prefix}.bias {bias.shape} "
                f"cannot be layer '{layer}' (a {'convolution' if ndim == 4 else 'dense'} "
                "layer). Is it a torchvision AlexNet?"
            )
        arrays[layer] = [_to_keras(layer, weight, state, source), bias]
    return arrays


def _to_keras(layer, weight, state, source):
    if layer.startswith("conv"):
        return weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if layer != "fc1":
        return weight.T
    channels = state[TORCHVISION_ALEXNET["conv5"] + ".weight"].shape[0]
    inputs = channels * POOL_GRID[0] * POOL_GRID[1]
    if weight.shape[1] != inputs:
        raise ZooError(
            f"{source}: layer 'fc1' ({TORCHVISION_ALEXNET['fc1']}.weight) has "
            f"{weight.shape[1]} inputs; after conv5's {channels} channels pooled to "
            f"{POOL_GRID[0]}x{POOL_GRID[1]} it must have {inputs}."
        )
    return torch_fc1_to_keras(weight, channels)


def _load_torch_file(model, path, model_name):
    if model_name != "alexnet_torchvision":
        raise ZooError(
            f"a PyTorch file loads only into alexnet_torchvision (torchvision's layout), not "
            f"{model_name}. Use zoo.get_model('alexnet_torchvision', weights={path!r})."
        )
    include_classifier = any(layer.name == "fc1" for layer in model.layers)
    arrays = torchvision_to_keras(read_torch_state_dict(path), path, include_classifier)
    hint = "Build alexnet_torchvision with the defaults of the model that saved the file."
    return assign_by_name(model, arrays, path, hint)

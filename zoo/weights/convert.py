"""``zoo-convert``: a torchvision AlexNet ``.pth`` into a ``.weights.h5`` any backend loads,
and ``make weights``: the shipped presets, trained again.

Command line::

    zoo-convert ~/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth alexnet.weights.h5
    KERAS_BACKEND=jax python -c "from zoo.weights.convert import make_presets; make_presets()"

Then, on any backend and without torch::

    model = zoo.get_model("alexnet_torchvision", weights="alexnet.weights.h5")

The layout changes themselves are in :mod:`zoo.weights`.
"""

from __future__ import annotations

import json
import os
import re
from importlib import resources

from zoo._io import dead_leftovers, disk_full
from zoo.errors import ZooError
from zoo.weights import (
    KERAS_SUFFIX,
    TORCH_SUFFIXES,
    assign_by_name,
    read_torch_state_dict,
    sha256_of,
    torchvision_to_keras,
)

__all__ = ["convert", "make_presets"]


def convert(source, destination, overwrite=False):
    """Convert a torchvision AlexNet ``.pth`` into a Keras ``.weights.h5``; return the classes.

    The result loads with ``zoo.get_model("alexnet_torchvision", classes=N,
    weights=destination)`` on every backend, without torch. An existing
    ``destination`` is refused unless ``overwrite``, and a folder always; the
    file is written to a temporary name in the same folder and renamed, so it
    is never half-written. Temporaries that killed conversions left in that
    folder are removed first.
    """
    from zoo.models import get_model

    source, destination = os.fspath(source), os.fspath(destination)
    _check_destination(destination, overwrite)
    if not source.endswith(TORCH_SUFFIXES):
        raise ZooError(f"the source must be a PyTorch '.pth' or '.pt' file, got {source!r}.")
    folder = os.path.dirname(os.path.abspath(destination))
    if not os.path.isdir(folder):
        raise ZooError(f"the destination folder {folder} does not exist; create it first.")
    remove_dead_temporaries(folder)
    arrays = torchvision_to_keras(read_torch_state_dict(source), source)
    classes = int(arrays["predictions"][1].shape[0])
    model = get_model("alexnet_torchvision", input_shape=(None, None, 3), classes=classes)
    assign_by_name(model, arrays, source)
    _save_atomically(model, destination)
    return classes


def _check_destination(destination, overwrite):
    """Refuse a destination that is not a ``.weights.h5`` name, or one that must not be replaced.

    ``--overwrite`` replaces a file, never a folder (a folder would be lost whole).
    """
    if not destination.endswith(KERAS_SUFFIX):
        raise ZooError(f"the destination must end in '{KERAS_SUFFIX}', got {destination!r}.")
    if os.path.isdir(destination):
        inside = os.path.join(destination, "alexnet" + KERAS_SUFFIX)
        raise ZooError(
            f"{destination} is a folder; zoo-convert writes one file and never replaces a "
            f"folder. Choose a file name, e.g. {inside}."
        )
    if os.path.lexists(destination) and not overwrite:
        raise ZooError(f"{destination} already exists; pass --overwrite to replace it.")


# --- making the presets (make weights) ------------------------------------------------------


# The settings the shipped presets were trained with, where they differ from today's
# defaults: lenet5_modern's recipe became a 5-epoch warm-up-cosine one tuned for MNIST, and
# its preset keeps the 15 constant-rate, unsmoothed epochs it was made with; both keep the native
# convolution (auto's faster formulas agree only to about 1e-6, and training amplifies the
# difference). The JAX max pooling by reshape (zoo.accel.jax_pooling)
# shares a tied maximum's gradient,
# so lenet5_modern's file was written again with it (same test accuracy, 0.9526).
PRESET_TRAINING = {
    "lenet5": dict(conv_impl="native"),
    "lenet5_modern": dict(
        epochs=15,
        batch_size=64,
        learning_rate=1e-3,
        schedule="constant",
        label_smoothing=0.0,
        conv_impl="native",
    ),
}


def make_presets(folder=None, seed=0):
    """Train every preset with the zoo's own recipe and write it into ``folder``.

    For each of ``lenet5`` and ``lenet5_modern``: ``zoo.training.run`` on the embedded
    digits (8x8 images resized to 28x28, the stratified train split, 10% of it
    held out for validation) with the model's recipe (or :data:`PRESET_TRAINING`)
    and ``seed``, then the
    weights, their SHA-256 and the test accuracy go into ``presets.json``.
    ``make weights`` runs this on JAX; the same seed gives the same file.
    """
    import tempfile

    import keras

    from zoo.models import get_model
    from zoo.training.run import train

    folder = folder or str(resources.files("zoo.weights.presets"))
    entries = []
    for model in ("lenet5", "lenet5_modern"):
        with tempfile.TemporaryDirectory() as scratch:
            settings = PRESET_TRAINING.get(model, {})
            result = train(
                model=model, dataset="digits", seed=seed, output=scratch, quiet=True, **settings
            )
        file = f"{model}-digits{KERAS_SUFFIX}"
        plain = get_model(model)  # the weights alone, without the optimizer's state
        plain.set_weights(result.model.get_weights())
        _save_atomically(plain, os.path.join(folder, file))
        entries.append(
            {
                "model": model,
                "name": "digits",
                "file": file,
                "sha256": sha256_of(os.path.join(folder, file)),
                "dataset": "digits",
                "test_accuracy": round(float(result.metrics["test_accuracy"]), 4),
                "input_shape": list(result.model.input_shape[1:]),
                "classes": int(result.model.output_shape[-1]),
            }
        )
        print(f"{model}: test accuracy {entries[-1]['test_accuracy']:.4f} on digits -> {file}")
    manifest = {
        "made_by": f"make weights (zoo.weights.make_presets, seed {seed}) on Keras "
        f"{keras.__version__}, backend {keras.backend.backend()}",
        "presets": entries,
    }
    path = os.path.join(folder, "presets.json")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
    os.replace(path + ".tmp", path)
    return entries


# The temporary a conversion writes first: .NAME.PID.tmp.weights.h5, beside the destination.
TEMPORARY = re.compile(r"\..+\.(?P<pid>[0-9]+)\.tmp" + re.escape(KERAS_SUFFIX))


def remove_dead_temporaries(folder):
    """Remove the temporaries that killed conversions left in ``folder``.

    Only names of the :data:`TEMPORARY` form whose process has died: a
    conversion still running elsewhere keeps its file.
    """
    for path in dead_leftovers(folder, TEMPORARY):
        if os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)


def _save_atomically(model, destination):
    """Write to a temporary name, then rename: never half a file at ``destination``."""
    folder = os.path.dirname(os.path.abspath(destination))
    temporary = os.path.join(folder, f".{os.path.basename(destination)}.{os.getpid()}.tmp")
    temporary += KERAS_SUFFIX
    try:
        model.save_weights(temporary)
        os.replace(temporary, destination)
    except OSError as error:
        if not disk_full(error):
            raise
        raise ZooError(
            f"the disk is full: cannot write {destination} ({error.strerror or 'no space left'})"
            ". Free some space, or write to another disk; nothing was written."
        ) from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)

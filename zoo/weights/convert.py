"""`zoo-convert`: a torchvision AlexNet `.pth` into a `.weights.h5` any backend loads.

Reading a `.pth` needs torch; the `.weights.h5` it becomes does not. Command line:

```bash
zoo-convert ~/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth alexnet.weights.h5
```

Then, on any backend and without torch:

```python
model = zoo.get_model("alexnet_torchvision", weights="alexnet.weights.h5")
```

The reading and the layout changes are in [`zoo.weights.torchvision`][], and which model
reads that layout is declared in [`zoo.weights.presets.alexnet`][].
"""

from __future__ import annotations

import os
import re

from zoo._io import dead_leftovers, disk_full
from zoo.errors import ZooError
from zoo.weights import KERAS_SUFFIX, assign_by_name
from zoo.weights.presets import torch_layout
from zoo.weights.torchvision import TORCH_SUFFIXES, read_torch_state_dict

__all__ = ["MODEL", "convert", "remove_dead_temporaries", "save_atomically"]

# The model zoo-convert writes files for: the one whose PyTorch layout is torchvision's AlexNet.
MODEL = "alexnet_torchvision"


def convert(source, destination, overwrite=False):
    """Convert a torchvision AlexNet `.pth` into a Keras `.weights.h5`; return the classes.

    The result loads with `zoo.get_model("alexnet_torchvision", classes=N,
    weights=destination)` on every backend, without torch. An existing
    `destination` is refused unless `overwrite`, and a folder always; the
    file is written to a temporary name in the same folder and renamed, so it
    is never half-written. Temporaries that killed conversions left in that
    folder are removed first.
    """
    from zoo.models import get_model, model_spec

    source, destination = os.fspath(source), os.fspath(destination)
    _check_destination(destination, overwrite)
    if not source.endswith(TORCH_SUFFIXES):
        raise ZooError(f"the source must be a PyTorch '.pth' or '.pt' file, got {source!r}.")
    folder = os.path.dirname(os.path.abspath(destination))
    if not os.path.isdir(folder):
        raise ZooError(f"the destination folder {folder} does not exist; create it first.")
    remove_dead_temporaries(folder)
    arrays = torch_layout(MODEL).to_keras(read_torch_state_dict(source), source)
    head = model_spec(MODEL).classifier
    classes = int(arrays[head][1].shape[0])
    model = get_model(MODEL, input_shape=(None, None, 3), classes=classes)
    assign_by_name(model, arrays, source, head=head)
    save_atomically(model, destination)
    return classes


def _check_destination(destination, overwrite):
    """Refuse a destination that is not a `.weights.h5` name, or one that must not be replaced.

    `--overwrite` replaces a file, never a folder (a folder would be lost whole).
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


# The temporary a conversion writes first: .NAME.PID.tmp.weights.h5, beside the destination.
TEMPORARY = re.compile(r"\..+\.(?P<pid>[0-9]+)\.tmp" + re.escape(KERAS_SUFFIX))


def remove_dead_temporaries(folder):
    """Remove the temporaries that killed conversions left in `folder`.

    Only names of the `TEMPORARY` form whose process has died: a
    conversion still running elsewhere keeps its file.
    """
    for path in dead_leftovers(folder, TEMPORARY):
        if os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)


def save_atomically(model, destination):
    """Write to a temporary name, then rename: never half a file at `destination`."""
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

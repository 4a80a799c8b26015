"""What one declaration of weights holds: a [`Preset`][], or a [`TorchLayout`][].

A preset is a named set of weights a model accepts (`weights="digits"`), declared once, as
data, in its family's file beside the shipped files (`zoo/weights/presets/lenet.py`): the
way torchvision declares each `AlexNet_Weights` entry (its file, transforms and metadata)
beside `alexnet`, and keras-hub a `bert_presets.py` beside BERT. The registry's list of
names, the loader, the SHA-256 check and `make weights` all read the same object, so
nothing about a preset is typed twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from zoo.errors import ZooError

__all__ = ["LOCATIONS", "PREPARATIONS", "Preset", "TorchLayout"]

# Where a preset's file lies: shipped inside this package (and checked by SHA-256 on load), or
# in the PyTorch hub cache ($TORCH_HOME/hub/checkpoints), where torch.hub and torchvision keep
# what they download. The zoo itself never downloads.
LOCATIONS = ("package", "torch_hub")
PREPARATIONS = ("scale", "digit", "torch")


@dataclass(frozen=True)
class Preset:
    """One named set of weights of one registered model.

    Attributes:
        model: the registry name of the model (`"lenet5"`).
        name: what `weights=` says (`"digits"`).
        file: the file's name in `location`: a `.weights.h5`, or a PyTorch state dict
            that the model's [`TorchLayout`][] reads.
        dataset: what it was trained on (a `zoo.data` name where the zoo trained it).
        input_shape: `(height, width, channels)` it was trained at.
        classes: output units of the head it was trained with.
        preprocessing: what inputs these weights expect, in words.
        prepare: how `zoo-predict` prepares an image file for them, one of
            `PREPARATIONS`: `"scale"` (resized to the input, pixels to [0, 1]),
            `"digit"` ([`zoo.preprocess_digit`][zoo.data.digit.preprocess_digit], MNIST's
            recipe) or `"torch"` (scaled, then ImageNet's mean and standard deviation).
        made_by: who made the file, and how (the credit).
        sha256: the file's SHA-256, checked before every load of a shipped file.
        test_accuracy: on `dataset`'s test split, as `make weights` measured it;
            `None` where the zoo did not measure it.
        location: one of `LOCATIONS`.
        fetch: for a file the zoo does not ship, how the user gets it.
        data_path: for `make weights`, where a dataset that is not a `zoo.data` name
            lies: a folder relative to the repository's root (the folder that holds
            `zoo/`), `""` for a `zoo.data` name. `make weights` skips the preset,
            saying so, where the folder is absent.
        training: for `make weights`: the keywords of `zoo.training.run.train` besides
            `model` and `dataset` (the seed, and what differs from the model's recipe).
    """

    model: str
    name: str
    file: str
    dataset: str
    input_shape: tuple
    classes: int
    preprocessing: str
    made_by: str
    sha256: str = ""
    test_accuracy: float | None = None
    prepare: str = "scale"
    location: str = "package"
    fetch: str = ""
    data_path: str = ""
    training: Mapping = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if self.location not in LOCATIONS:
            raise ZooError(
                f"preset '{self.name}' of {self.model}: location must be one of "
                f"{', '.join(LOCATIONS)}, got {self.location!r}."
            )
        if self.prepare not in PREPARATIONS:
            raise ZooError(
                f"preset '{self.name}' of {self.model}: prepare must be one of "
                f"{', '.join(PREPARATIONS)}, got {self.prepare!r}."
            )
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "training", MappingProxyType(dict(self.training)))


@dataclass(frozen=True)
class TorchLayout:
    """A model that reads another library's PyTorch state dicts (`weights="file.pth"`).

    `to_keras(state, source, layers)` returns Keras-layout arrays per layer name, for the
    layers named in `layers` (all it maps when `None`); `source` names the layout in
    messages (`"torchvision AlexNet"`).
    """

    model: str
    source: str
    to_keras: Callable

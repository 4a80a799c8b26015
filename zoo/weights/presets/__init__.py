"""Every named set of weights the zoo knows, each declared once, as data beside its family.

`zoo/weights/presets/FAMILY.py` declares `PRESETS`, a tuple of
[`zoo.weights.presets.declaration.Preset`][], and where a model of the family reads
PyTorch files, `TORCH_LAYOUTS`; the files the package ships lie beside them. Everything
else is derived from these declarations: each `ModelSpec.weights` and so
`zoo.model_info(name)["weights"]` ([`preset_names`][]), what
[`zoo.weights.load_weights`][] accepts and from where, the SHA-256 it checks, and what
`make weights` trains. Adding a preset is one `Preset(...)` in its family's file plus
its file (`make weights` writes it and prints its SHA-256 and test accuracy); adding a
family is its file and one entry in `FAMILIES`.
"""

from zoo.errors import ZooError
from zoo.weights.presets import alexnet, lenet
from zoo.weights.presets.declaration import Preset, TorchLayout

__all__ = [
    "FAMILIES",
    "PRESETS",
    "TORCH_LAYOUTS",
    "Preset",
    "TorchLayout",
    "collect",
    "find",
    "preset_names",
    "torch_layout",
]

FAMILIES = (lenet, alexnet)


def collect(declarations):
    """`{(model, name): preset}` and `{model: layout}` from `declarations`.

    `declarations` holds [`Preset`][] and [`TorchLayout`][] objects. A second
    declaration of the same preset, file or layout is refused: each is declared once.
    """
    presets, layouts, files = {}, {}, {}
    for item in declarations:
        if isinstance(item, TorchLayout):
            if item.model in layouts:
                raise ZooError(f"{item.model}'s PyTorch layout is declared twice.")
            layouts[item.model] = item
            continue
        key, place = (item.model, item.name), (item.location, item.file)
        if key in presets:
            raise ZooError(f"preset '{item.name}' of {item.model} is declared twice.")
        if place in files:
            raise ZooError(f"{item.file} is the file of two presets: {files[place]} and {key}.")
        presets[key], files[place] = item, key
    return presets, layouts


PRESETS, TORCH_LAYOUTS = collect(
    item for family in FAMILIES for item in (*family.PRESETS, *getattr(family, "TORCH_LAYOUTS", ()))
)


def find(model, name):
    """The [`Preset`][] `name` of `model`, or `None`."""
    return PRESETS.get((model, name))


def preset_names(model):
    """The preset names `model` accepts as `weights=`, sorted (`("digits",)`)."""
    return tuple(sorted(name for owner, name in PRESETS if owner == model))


def torch_layout(model):
    """The [`TorchLayout`][] by which `model` reads PyTorch state dicts, or `None`."""
    return TORCH_LAYOUTS.get(model)

"""The model registry: every model in the zoo under one name, described by a [`ModelSpec`][].

A spec is plain data about one named model: its family and paper, the builder
and the arguments it fixes, its training recipe, and the facts a user asks
for before building anything (default and minimum input, parameter count).
A model family's file registers its specs with one decorator line each:

```python
@register_model(ModelSpec("lenet5", family="LeNet", paper=LENET_PAPER, ...))
def lenet(input_shape=(28, 28, 1), classes=10, variant="classic", ...):
    ...
```

This module never imports the model files: `zoo/models/__init__.py` lists
them, and importing `zoo.models` (which `zoo.get_model` and friends do)
registers them. Users reach the models through [`list_models`][],
[`get_model`][] and [`model_info`][].
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from zoo.errors import ZooError

__all__ = [
    "Paper",
    "Recipe",
    "ModelSpec",
    "register_model",
    "list_models",
    "get_model",
    "model_info",
    "model_spec",
    "models_table",
]


@dataclass(frozen=True)
class Paper:
    """Where a model comes from."""

    title: str
    authors: str
    year: int


@dataclass(frozen=True)
class Recipe:
    """The training defaults `zoo-train` uses for a model (each flag can override them).

    `learning_rate` is the peak rate and `schedule` `"constant"` or
    `"warmup-cosine"` (see [`zoo.training.compile.learning_rate_schedule`][]).
    `label_smoothing` ε trains toward `1 - ε + ε/K` for the true class and
    `ε/K` for each of the other `K - 1` (Szegedy et al., 2016, "Rethinking
    the Inception architecture"); 0 is plain cross-entropy. `min_steps`: when
    `--epochs` is left out and `epochs` would take fewer optimizer steps than this
    on the data at hand (a small dataset), `zoo-train` runs just enough more epochs
    ([`zoo.training.recipe.epochs_for_data`][]); 0 keeps `epochs` on any data.
    """

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    schedule: str = "constant"
    label_smoothing: float = 0.0
    min_steps: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """Everything the zoo knows about one named model without building it.

    Attributes:
        name: the registry name (lower case, e.g. `"alexnet_torchvision"`).
        family: the model family (`"LeNet"`, `"AlexNet"`).
        paper: the [`Paper`][] it comes from.
        description: one line for listings.
        recipe: the [`Recipe`][] `zoo-train` uses.
        fixed: builder arguments this name always uses (e.g. `variant`);
            a user's override in [`get_model`][] still wins.
        default_input_shape, min_input_shape: `(height, width, channels)`.
        params: parameters at the default input and classes.
        classes: output units at the defaults.
        weights: the preset names `weights=` accepts besides `None` and a file path
            (`"digits"`, `"imagenet"`). Never typed by hand: a family passes
            `zoo.weights.presets.preset_names(name)`, read from the presets' declarations.
        classifier: the name of the classifier head's layer (`"predictions"` in the zoo's
            families, as in `keras.applications`), or `None`; the weights code finds the
            head by it, as timm's `pretrained_cfg["classifier"]` names a model's head.
        builder: the function that builds it (set by [`register_model`][]).
    """

    name: str
    family: str
    paper: Paper
    default_input_shape: tuple
    min_input_shape: tuple
    params: int
    classes: int
    description: str = ""
    recipe: Recipe = field(default_factory=Recipe)
    fixed: Mapping = field(default_factory=dict)
    weights: tuple = ()
    classifier: str | None = None
    builder: Callable | None = None


_SPECS: dict[str, ModelSpec] = {}


def register_model(spec):
    """Decorator: register `spec` with the decorated function as its builder.

    Stack several to register several names on one builder. Registering a
    name twice is refused.
    """

    def decorate(builder):
        if spec.name in _SPECS:
            raise ZooError(f"a model named '{spec.name}' is already registered.")
        _SPECS[spec.name] = replace(spec, builder=builder)
        return builder

    return decorate


def model_spec(name):
    """The [`ModelSpec`][] registered as `name`; the error suggests close names."""
    if name in _SPECS:
        return _SPECS[name]
    close = difflib.get_close_matches(str(name), _SPECS, n=3, cutoff=0.4)
    hint = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    known = ", ".join(list_models()) or "none yet (import zoo.models, or use zoo.get_model)"
    raise ZooError(f"Unknown model '{name}'. {hint}Registered models: {known}.")


def list_models(pattern="*"):
    """Sorted names of the registered models matching a shell-style `pattern`."""
    return sorted(n for n in _SPECS if fnmatch.fnmatchcase(n, pattern))


def get_model(name, **overrides):
    """Build the registered model `name`; keyword `overrides` go to its builder.

    Example: `zoo.get_model("lenet5", classes=3, input_shape=(32, 32, 1))`.
    """
    spec = model_spec(name)
    return spec.builder(**{"name": name, **spec.fixed, **overrides})


def model_info(name):
    """Facts about a registered model, as a dict, read from its spec (nothing is built).

    Keys: `name`, `family`, `paper` (title, authors, year),
    `description`, `default_input_shape`, `min_input_shape`, `params`
    (at the default input and classes), `output_shape`, `recipe`
    (training defaults), `weights` (the pretrained weights `weights=` can name),
    `classifier` (the head's layer name) and `defaults` (the builder's keyword defaults).
    """
    spec = model_spec(name)
    defaults = {
        key: p.default
        for key, p in inspect.signature(spec.builder).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    defaults.update(spec.fixed, name=name)
    return {
        "name": name,
        "family": spec.family,
        "paper": vars(spec.paper).copy(),
        "description": spec.description,
        "default_input_shape": spec.default_input_shape,
        "min_input_shape": spec.min_input_shape,
        "params": spec.params,
        "output_shape": (spec.classes,),
        "recipe": vars(spec.recipe).copy(),
        "weights": list(spec.weights),
        "classifier": spec.classifier,
        "defaults": defaults,
    }


def models_table():
    """A Markdown table of every registered model (the README embeds it)."""
    rows = [
        "| name | family | default input | min input | parameters | paper |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    for name in list_models():
        spec = _SPECS[name]
        rows.append(
            f"| `{name}` | {spec.family} | {_shape(spec.default_input_shape)} "
            f"| {_shape(spec.min_input_shape)} | {spec.params:,} "
            f"| {spec.paper.authors.split(',')[0]} et al., {spec.paper.year} |"
        )
    return "\n".join(rows)


def _shape(shape):
    return "×".join(str(s) for s in shape)

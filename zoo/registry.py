"""The model registry: every model in the zoo under one name.

A model family's file registers each named model with one decorator line on
its builder; keyword arguments after ``paper`` fix builder arguments::

    @register_model("lenet5_modern", family="LeNet", paper=LENET_PAPER, variant="modern")
    @register_model("lenet5", family="LeNet", paper=LENET_PAPER, variant="classic")
    def lenet(input_shape=(28, 28, 1), classes=10, variant="classic", ...):
        ...

and users reach it through :func:`list_models`, :func:`get_model` and
:func:`model_info`.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect

from zoo.errors import ZooError

__all__ = ["register_model", "list_models", "get_model", "model_info"]

_REGISTRY = {}


def register_model(name, *, family, paper, description="", recipe=None, **fixed):
    """Decorator that adds a builder to the registry under ``name``.

    Args:
        name: the registry name (lower case, e.g. ``"alexnet_torchvision"``).
        family: the model family (``"LeNet"``, ``"AlexNet"``).
        paper: a dict with ``title``, ``authors`` and ``year``.
        description: one line shown by :func:`model_info`.
        recipe: the training defaults ``zoo-train`` uses for this model
            (``epochs``, ``batch_size``, ``learning_rate``, ``optimizer``).
        **fixed: builder arguments this name always uses (e.g. ``variant``);
            a user's override in :func:`get_model` still wins.
    """

    def decorate(builder):
        if name in _REGISTRY:
            raise ZooError(f"a model named '{name}' is already registered.")
        _REGISTRY[name] = {
            "builder": builder,
            "family": family,
            "paper": dict(paper),
            "description": description,
            "fixed": dict(fixed),
            "recipe": dict(recipe or {}),
        }
        return builder

    return decorate


def _load_model_families():
    """Import the built-in model files; their decorators fill the registry."""
    import zoo.models  # noqa: F401


def _entry(name):
    _load_model_families()
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(str(name), _REGISTRY, n=3, cutoff=0.4)
    hint = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ZooError(f"Unknown model '{name}'. {hint}Registered models: {', '.join(list_models())}.")


def list_models(pattern="*"):
    """Sorted names of the registered models matching a shell-style ``pattern``."""
    _load_model_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_model(name, **overrides):
    """Build the registered model ``name``; keyword ``overrides`` go to its builder.

    Example: ``zoo.get_model("lenet5", classes=3, input_shape=(32, 32, 1))``.
    """
    entry = _entry(name)
    kwargs = {"name": name, **entry["fixed"], **overrides}
    return entry["builder"](**kwargs)


@functools.cache
def _measured(name):
    """Build the model once at its defaults to read its shapes and parameter count."""
    from zoo._builder import min_input_shape

    model = get_model(name)
    return {
        "default_input_shape": tuple(model.input_shape[1:]),
        "min_input_shape": min_input_shape(model.layers, model.input_shape[-1]),
        "params": int(model.count_params()),
        "output_shape": tuple(model.output_shape[1:]),
    }


def model_info(name):
    """Facts about a registered model, as a dict.

    Keys: ``name``, ``family``, ``paper`` (title, authors, year),
    ``description``, ``default_input_shape``, ``min_input_shape``, ``params``
    (at the default input and classes), ``output_shape`` and ``defaults``
    (the builder's keyword defaults) and ``recipe`` (training defaults).
    """
    entry = _entry(name)
    defaults = {
        key: p.default
        for key, p in inspect.signature(entry["builder"]).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    defaults.update(entry["fixed"], name=name)
    return {
        "name": name,
        "family": entry["family"],
        "paper": dict(entry["paper"]),
        "description": entry["description"],
        **_measured(name),
        "recipe": dict(entry["recipe"]),
        "defaults": defaults,
    }


def models_table():
    """A Markdown table of every registered model (the README embeds it)."""
    rows = [
        "| name | family | default input | min input | parameters | paper |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    for name in list_models():
        info = model_info(name)
        paper = info["paper"]
        rows.append(
            f"| `{name}` | {info['family']} | {_shape(info['default_input_shape'])} "
            f"| {_shape(info['min_input_shape'])} | {info['params']:,} "
            f"| {paper['authors'].split(',')[0]} et al., {paper['year']} |"
        )
    return "\n".join(rows)


def _shape(shape):
    return "×".join(str(s) for s in shape)

"""A run's defaults: the flags a user leaves out, filled in from the model's recipe.

Each registered model carries a [`zoo.registry.Recipe`][], the epochs,
batch size, optimizer, learning rate, schedule and label smoothing it trains
well with (see [`zoo.models`][]); [`resolve_recipe`][] fills every flag left
at `None` from it. How those settings become a compiled model is
[`zoo.training.compile`][]'s.
"""

from __future__ import annotations

import os

__all__ = ["resolve_names", "resolve_recipe"]

DEFAULT_MODEL, DEFAULT_DATASET = "lenet5", "digits"
VALIDATION_SPLIT = 0.1  # of the training images, unless --validation-split says otherwise


def resolve_names(config, backend):
    """Fill in the model, dataset and output folder.

    On `--resume` only the output folder: the model, dataset and recipe come
    from its checkpoint ([`zoo.training.resume.settings`][]), read once the run holds
    the folder.
    """
    model, dataset = config.model or DEFAULT_MODEL, config.dataset or DEFAULT_DATASET
    name = os.path.basename(os.path.normpath(dataset))
    output = config.output or os.path.join("runs", f"{model}-{name}-{backend}")
    if config.resume:
        return config.replace(output=output)
    return config.replace(model=model, dataset=dataset, output=output)


def resolve_recipe(config):
    """Fill the flags left at `None` from the model's recipe (unknown model: one error)."""
    from zoo.models import model_spec

    recipe = {**vars(model_spec(config.model).recipe), "validation_split": VALIDATION_SPLIT}
    recipe["augment"] = "none"
    return config.replace(**{k: v for k, v in recipe.items() if getattr(config, k) is None})

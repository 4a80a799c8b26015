"""A run's defaults: the flags a user leaves out, filled in from the model's recipe.

Each registered model carries a [`zoo.registry.Recipe`][], the epochs,
batch size, optimizer, learning rate, schedule and label smoothing it trains
well with (see [`zoo.models`][]); [`resolve_recipe`][] fills every flag left
at `None` from it. How those settings become a compiled model is
[`zoo.training.compile`][]'s. Only the number of epochs may depend on the
data, through the recipe's `min_steps` ([`epochs_for_data`][]); nothing
depends on the backend.
"""

from __future__ import annotations

import math
import os

__all__ = ["epochs_for_data", "resolve_names", "resolve_recipe"]

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
    del recipe["min_steps"]  # not a flag: epochs_for_data reads it once the data is loaded
    return config.replace(**{k: v for k, v in recipe.items() if getattr(config, k) is None})


def epochs_for_data(config, train_images):
    """`(config, note)`: the recipe's epochs, raised to reach its `min_steps` on this data.

    Call only when `--epochs` was left out of a new run. A recipe tuned on MNIST's
    60,000 images takes 5 epochs; on the 1,300 digits the same 5 epochs are ~100
    optimizer steps and under-train. With `min_steps` 400 the digits run 20 epochs
    and MNIST keeps its 5. `note` says so for the banner (empty when unchanged).
    """
    from zoo.models import model_spec

    min_steps = model_spec(config.model).recipe.min_steps
    steps_per_epoch = math.ceil(train_images / config.batch_size)
    needed = math.ceil(min_steps / max(steps_per_epoch, 1))
    if needed <= config.epochs:
        return config, ""
    note = (
        f"{needed}, not the recipe's {config.epochs}: it asks for {min_steps} steps at least, "
        f"and {train_images:,} training images make {steps_per_epoch} an epoch (--epochs "
        "sets them)"
    )
    return config.replace(epochs=needed), note

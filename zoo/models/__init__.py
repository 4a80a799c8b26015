"""The model families of the zoo, one file each, and the functions that find them.

The list below is the whole discovery mechanism: importing this package
imports each family's file, whose `@register_model` lines fill
[`zoo.registry`][]. To add a family, write `zoo/models/NAME.py` and add
one line here. `zoo.registry` never imports this package, so the import
graph has no cycle: `zoo.models -> zoo.models.<family> -> zoo.registry`.
"""

from zoo.models import alexnet as _alexnet_family  # noqa: F401  (registers alexnet*)
from zoo.models import lenet as _lenet_family  # noqa: F401  (registers lenet5*)
from zoo.models.alexnet import alexnet
from zoo.models.lenet import lenet
from zoo.registry import (
    ModelSpec,
    Paper,
    Recipe,
    get_model,
    list_models,
    model_info,
    model_spec,
    models_table,
    register_model,
)

__all__ = [
    "ModelSpec",
    "Paper",
    "Recipe",
    "alexnet",
    "get_model",
    "lenet",
    "list_models",
    "model_info",
    "model_spec",
    "models_table",
    "register_model",
]

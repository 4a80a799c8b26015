"""Make ``keras.saving.load_model`` find the zoo's own layers after a plain ``import zoo``.

A saved model that uses :mod:`zoo.layers` names them (``zoo>AdaptiveAveragePooling2D``),
and Keras finds such classes only once they are registered, which importing
:mod:`zoo.layers` does. ``import zoo`` must not import Keras (the backend could
not be chosen afterwards), so instead it asks to be told when Keras is
imported: a finder on ``sys.meta_path`` wraps Keras's own loader and imports
``zoo.layers`` right after Keras has finished loading. If Keras is already
imported, ``zoo.layers`` is imported at once.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself; on ``import keras`` it adds a step after Keras's own loading."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # once: let the other finders find Keras
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            importlib.import_module("zoo.layers")

        spec.loader.exec_module = exec_module
        return spec


def register_layers_when_keras_loads():
    """Import :mod:`zoo.layers` now if Keras is loaded, else right after it is."""
    if "keras" in sys.modules:
        importlib.import_module("zoo.layers")
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())

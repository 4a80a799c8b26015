"""Modules that are also functions: ``zoo.train(...)`` and ``zoo.export(...)``.

``zoo/train.py`` and ``zoo/export.py`` are modules, and the README calls
``zoo.train(...)`` and ``zoo.export(...)``. Python sets ``zoo.train`` to the
*module* as soon as anything imports ``zoo.train``, so instead of fighting
that, the module itself is made callable: calling it calls its main function.
"""

import sys
import types


def make_module_callable(module_name, function):
    """Let ``module(*args, **kwargs)`` call ``function(*args, **kwargs)``."""

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return function(*args, **kwargs)

    CallableModule.__call__.__doc__ = function.__doc__
    sys.modules[module_name].__class__ = CallableModule

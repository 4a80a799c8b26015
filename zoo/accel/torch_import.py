"""PyTorch only: import Keras without TorchDynamo, which only `torch.compile` needs.

Keras's PyTorch backend imports `torch._dynamo` (TorchDynamo, the tracer behind
`torch.compile`) for one decorator: its two random-seed helpers are marked
`torch._dynamo.disable()`, because `torch.Generator` cannot be traced.
Importing TorchDynamo takes about a second of a run's start-up on a 2-core CPU
(BENCHMARKS.md, "Start-up"), in a process that never compiles anything.

[`dynamo_deferred`][] lends Keras a stand-in `torch._dynamo` while it imports,
from [`zoo.accel.runtime.import_keras_lean`][] (in a process the zoo owns,
never a user's session). The stand-in's `disable` wraps each helper with
[`disable_once_dynamo_loads`][]: called straight through while TorchDynamo is
not loaded (nothing can be compiling then), and through the real
`torch._dynamo.disable` from the first call after it is (`torch.compile`,
Keras's `jit_compile=True`, `keras.utils.clear_session` import it), as Keras
meant. Any other name asked of the stand-in imports the real TorchDynamo.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import types

__all__ = ["DYNAMO", "disable_once_dynamo_loads", "dynamo_deferred"]

DYNAMO = "torch._dynamo"


def _real_dynamo():
    """The real TorchDynamo if it is imported, else `None`."""
    module = sys.modules.get(DYNAMO)
    return None if isinstance(module, _StandIn) else module


def disable_once_dynamo_loads(fn=None, recursive=True, **options):
    """`torch._dynamo.disable(fn, ...)`, decided at `fn`'s first call after TorchDynamo loads.

    Used as Keras uses the real one: `@disable_once_dynamo_loads()` or
    `disable_once_dynamo_loads(fn)`. Returns `fn` wrapped.
    """
    if fn is None:
        return functools.partial(disable_once_dynamo_loads, recursive=recursive, **options)
    disabled = []

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not disabled:
            dynamo = _real_dynamo()
            if dynamo is None:  # TorchDynamo is not loaded, so nothing is being compiled
                return fn(*args, **kwargs)
            disabled.append(dynamo.disable(fn, recursive=recursive, **options))
        return disabled[0](*args, **kwargs)

    return call


class _StandIn(types.ModuleType):
    """`torch._dynamo` while Keras imports: `disable` deferred, anything else the real one."""

    def __init__(self):
        super().__init__(DYNAMO, "The zoo's stand-in for TorchDynamo while Keras imports.")
        self.disable = disable_once_dynamo_loads

    def __getattr__(self, name):
        if name.startswith("__"):  # probes such as `inspect.getmodule`'s `__file__`
            raise AttributeError(name)
        if sys.modules.get(DYNAMO) is self:
            del sys.modules[DYNAMO]
        return getattr(importlib.import_module(DYNAMO), name)


@contextlib.contextmanager
def dynamo_deferred():
    """Within this block, `import torch._dynamo` gives the stand-in, unless already imported."""
    if DYNAMO in sys.modules:
        yield
        return
    stand_in = _StandIn()
    sys.modules[DYNAMO] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(DYNAMO) is stand_in:
            del sys.modules[DYNAMO]

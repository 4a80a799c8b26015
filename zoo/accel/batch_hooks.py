"""Every backend: `fit` without the per-batch callback calls that no callback listens to.

After every training step Keras's `fit` calls its callbacks' `on_train_batch_end`
with the step's logs, and on JAX and PyTorch it does that on a worker thread:
each step hands a task to a thread pool, which turns the logs into Python
numbers and calls every callback's hook, even when none of them does anything
with it (`History`, or a callback that only watches epochs). On a 2-core CPU
that hand-off costs about as much as a small network's loss and metrics
(BENCHMARKS.md, "Batch hooks").

[`quiet_fit`][] gives Keras's `fit` a `CallbackList` it builds exactly as Keras
would ([`BatchHooksWhenHeard`][]), whose per-batch calls (`on_train_batch_*`,
`on_test_batch_*`) go ahead only when some callback in it overrides that hook
(or the legacy `on_batch_*` it forwards to). Only the plain case takes this path:
`verbose=0` (a progress bar listens to every batch), callbacks as a list, and
`x` an array batched by `fit` itself, with no `validation_split` or
`steps_per_epoch`; anything else is Keras's own call. The training is Keras's
exactly: nothing listened to what is skipped (a test compares every weight).
"""

from __future__ import annotations

import functools
import inspect
import math

import keras

from zoo.accel.predict import DEFAULT_BATCH_SIZE  # Keras's own, when batch_size is left out

__all__ = [
    "BatchHooksWhenHeard",
    "HOOKS",
    "call_arguments",
    "listens",
    "quiet_fit",
    "use_quiet_batch_hooks",
]

# Each `CallbackList` hook skipped when unheard, and the `Callback` methods it may reach.
HOOKS = {
    "on_train_batch_begin": ("on_train_batch_begin", "on_batch_begin"),
    "on_train_batch_end": ("on_train_batch_end", "on_batch_end"),
    "on_test_batch_begin": ("on_test_batch_begin",),
    "on_test_batch_end": ("on_test_batch_end",),
}


def listens(callback, hook):
    """Whether `callback` does anything in `hook` (a `CallbackList` method of `HOOKS`)."""
    for name in HOOKS[hook]:
        method = getattr(callback, name)
        if getattr(method, "__func__", None) is not getattr(keras.callbacks.Callback, name):
            return True  # overridden by its class, or replaced on the instance
    return False


class BatchHooksWhenHeard(keras.callbacks.CallbackList):
    """Keras's `CallbackList`, calling a per-batch hook only if one of its callbacks listens."""

    def heard(self, hook):
        """Whether a callback in this list overrides `hook` (a key of `HOOKS`)."""
        return any(listens(callback, hook) for callback in self.callbacks)

    def on_train_batch_begin(self, batch, logs=None):
        if self.heard("on_train_batch_begin"):
            super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if self.heard("on_train_batch_end"):
            super().on_train_batch_end(batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        if self.heard("on_test_batch_begin"):
            super().on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if self.heard("on_test_batch_end"):
            super().on_test_batch_end(batch, logs)


def call_arguments(method, model, args, kwargs):
    """The arguments of a Keras `method` call (`fit`, `evaluate`) by name, positional ones too."""
    bound = inspect.signature(method).bind(model, *args, **kwargs)
    arguments = dict(bound.arguments)
    del arguments[next(iter(arguments))]  # the model itself
    arguments.update(arguments.pop("kwargs", {}))
    return arguments


def _is_array(x):
    return hasattr(x, "shape") and hasattr(x, "__len__") and len(x) > 0


def _takes_quiet_path(arguments):
    return (
        arguments.get("verbose", "auto") == 0
        and isinstance(arguments.get("callbacks") or [], (list, tuple))
        and _is_array(arguments.get("x"))
        and not arguments.get("validation_split")
        and arguments.get("steps_per_epoch") is None
    )


def quiet_fit(self, fit, *args, **kwargs):
    """`fit(*args, **kwargs)` (`keras.Model.fit`'s arguments and result), its callbacks in a
    [`BatchHooksWhenHeard`][] list where the call takes the plain path (module docstring)."""
    arguments = call_arguments(keras.Model.fit, self, args, kwargs)
    if not _takes_quiet_path(arguments):
        return fit(*args, **kwargs)
    size = arguments.get("batch_size") or DEFAULT_BATCH_SIZE
    arguments["callbacks"] = BatchHooksWhenHeard(  # as keras.Model.fit makes its own
        list(arguments.get("callbacks") or []),
        add_history=True,
        add_progbar=False,
        verbose=0,
        epochs=arguments.get("epochs", 1),
        steps=math.ceil(len(arguments["x"]) / size),
        model=self,
    )
    return fit(**arguments)


def use_quiet_batch_hooks(model):
    """Make `model.fit` (Keras's, or a speed-up's already in place) a [`quiet_fit`][];
    returns whether it did. Once per model: a second call changes nothing."""
    if getattr(model, "_zoo_quiet_batch_hooks", False):
        return True
    model.fit = functools.partial(quiet_fit, model, model.fit)
    model._zoo_quiet_batch_hooks = True
    return True

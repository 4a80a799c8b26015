"""PyTorch only: Keras's `CosineDecay` learning rate computed from the step as plain numbers.

A backend-specific speed-up, used only when Keras runs on PyTorch. An optimizer
given a schedule asks it for the rate at every step. Keras's `CosineDecay`
answers with a dozen `keras.ops` calls on scalar tensors (casts, a minimum, a
`cond`, a cosine), each paying Keras's and PyTorch's dispatch, at every step: a
few per cent of a LeNet-5 step at batch 64 (BENCHMARKS.md, "Issue 32, 2026-12-06,
time to accuracy"). On PyTorch those ops run eagerly, one after the other, so the
same arithmetic can be done on NumPy float32 scalars instead, in the same order,
with PyTorch's own float32 cosine: the rate is Keras's to the last bit (a test
compares every step of several schedules).

Only the optimizer *instance*'s `_get_current_learning_rate` is replaced, and
only while its schedule is exactly a `keras.optimizers.schedules.CosineDecay`
(the zoo's `warmup-cosine`); any other schedule, or one set later, is Keras's
own. The optimizer and its schedule keep their classes: a saved model is plain
Keras.
"""

from __future__ import annotations

import math
import types

import keras
import numpy as np
import torch

__all__ = ["cosine_decay_rate", "use_plain_schedule"]

_F32 = np.float32


def cosine_decay_rate(schedule, step):
    """The rate a Keras `CosineDecay` gives at `step`, as Keras computes it in float32.

    Args:
        schedule: a `keras.optimizers.schedules.CosineDecay`.
        step: the optimizer's iteration count, an integer from 0.

    Returns:
        The learning rate, a NumPy float32 scalar.
    """
    initial = _F32(schedule.initial_learning_rate)
    decay_steps = _F32(schedule.decay_steps)
    step = _F32(step)
    if schedule.warmup_target is None:
        return _decayed(schedule, min(step, decay_steps), decay_steps, initial)
    target = _F32(schedule.warmup_target)
    warmup_steps = _F32(schedule.warmup_steps)
    step = min(step, decay_steps + warmup_steps)
    if step < warmup_steps:
        return (target - initial) * (step / warmup_steps) + initial
    return _decayed(schedule, step - warmup_steps, decay_steps, target)


def _decayed(schedule, step, decay_steps, peak):
    """Half a cosine from `peak` down to `alpha * peak` over `decay_steps`."""
    angle = _F32(math.pi) * (step / decay_steps)
    cosine = _F32(torch.cos(torch.tensor(angle)).item())  # PyTorch's float32 cosine, as Keras's
    decayed = _F32(1 - schedule.alpha) * (_F32(0.5) * (_F32(1.0) + cosine)) + _F32(schedule.alpha)
    return peak * decayed


def _current_rate(optimizer):
    """`optimizer`'s rate now: [`cosine_decay_rate`][] for a `CosineDecay`, else Keras's."""
    schedule = optimizer._learning_rate
    if type(schedule) is not keras.optimizers.schedules.CosineDecay:
        return type(optimizer)._get_current_learning_rate(optimizer)
    rate = cosine_decay_rate(schedule, int(optimizer.iterations.value))
    return keras.ops.convert_to_tensor(rate)  # a float32 tensor, as Keras's schedule returns


def use_plain_schedule(optimizer):
    """Make `optimizer` compute a `CosineDecay` rate with [`cosine_decay_rate`][];
    returns whether its schedule is one (PyTorch only)."""
    if keras.backend.backend() != "torch":
        return False
    optimizer._get_current_learning_rate = types.MethodType(_current_rate, optimizer)
    return type(optimizer._learning_rate) is keras.optimizers.schedules.CosineDecay

"""PyTorch only: max pooling before a convolution's ReLU, in the lean training step.

A backend-specific speed-up, used only when Keras runs on PyTorch. LeNet-5 and
AlexNet follow a `Conv2D(activation="relu")` with a `MaxPooling2D`: the ReLU
runs on every pixel of the convolution's output, and in the backward pass its
gradient again on every pixel, before pooling keeps a quarter of them (a 2x2
window) or fewer. ReLU never decreases, so the largest value of a window is
still the largest after it: `maxpool(relu(z)) == relu(maxpool(z))` exactly.
The gradient is Keras's too: where a window's maximum is positive it goes to
the same pixel (the first of equal maxima in either order), and where it is not,
ReLU's gradient is zero in either order.

[`pair_up`][] finds each such pair in a functional model: a `Conv2D` whose
activation is `keras.activations.relu` and which runs the zoo's fused-bias call
([`zoo.accel.torch_conv`][]), whose output goes to one `MaxPooling2D` and
nowhere else. [`operations`][] gives the lean step ([`zoo.accel.torch_step`][])
the convolution without its ReLU and the pooling followed by it, for the pairs
that still hold when the step runs. What it saves on LeNet-5 is measured by
`benchmarks/speedups_ab.py --without pool-first` (BENCHMARKS.md); tests compare outputs,
gradients and trained weights with Keras's order.
"""

from __future__ import annotations

import keras

from zoo.accel.torch_conv import convolve, has_fused_bias

__all__ = ["operations", "pair_up", "use_pool_first"]


def _only_consumer(layer):
    """The one layer `layer`'s single output goes to, or `None`."""
    if len(layer._inbound_nodes) != 1 or len(layer._outbound_nodes) != 1:
        return None
    return layer._outbound_nodes[0].operation


def _its_pool(conv, model_outputs):
    """The `MaxPooling2D` that `conv`'s ReLU can follow, or `None`."""
    if type(conv) is not keras.layers.Conv2D or conv.activation is not keras.activations.relu:
        return None
    pool = _only_consumer(conv)
    if type(pool) is not keras.layers.MaxPooling2D or len(pool._inbound_nodes) != 1:
        return None
    if id(conv.output) in model_outputs or not has_fused_bias(conv):
        return None
    return pool


def pair_up(model):
    """`((conv, pool), ...)`: the convolutions whose ReLU can follow their max pooling."""
    model_outputs = {id(tensor) for tensor in model.outputs}
    pools = [(layer, _its_pool(layer, model_outputs)) for layer in model.layers]
    return tuple((conv, pool) for conv, pool in pools if pool is not None)


def use_pool_first(model):
    """Note `model`'s pairs for the lean step; returns the names of the convolutions."""
    model._zoo_pool_first = pair_up(model)
    return tuple(conv.name for conv, _ in model._zoo_pool_first)


def operations(model, inputs):
    """`{id(layer): callable}` replacing each noted pair's two calls, for `inputs`.

    A pair is left to Keras's order when its convolution no longer runs the
    fused-bias call (LoRA enabled, quantised, another implementation) or its
    activation has changed since [`use_pool_first`][].
    """
    calls = {}
    for conv, pool in getattr(model, "_zoo_pool_first", ()):
        if conv.activation is keras.activations.relu and has_fused_bias(conv, inputs):
            calls[id(conv)] = lambda x, conv=conv: convolve(conv, x)
            calls[id(pool)] = lambda x, conv=conv, pool=pool: conv.activation(pool.call(x))
    return calls

"""Native JAX baseline: the zoo's LeNet-5 (modern) and AlexNet as pure functions under ``jax.jit``.

Not part of the ``zoo`` package: ``benchmarks/bench.py`` starts this file in a
subprocess. The layers are written with ``jax.lax`` in NHWC, the layout Keras
uses on JAX, so this is the speed a JAX user gets by hand: same filters,
kernels, strides, padding, ReLU, dropout, Glorot-uniform kernels with zero
biases, cross-entropy, and Adam written out as Keras does it (learning rate
1e-3, betas 0.9 and 0.999, epsilon 1e-7).
"""

from __future__ import annotations

import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness  # noqa: E402
from bench import load_arrays  # noqa: E402  (the job's arrays; NumPy only)

# Each layer: ("conv", filters, kernel, stride, padding) | ("pool", size, stride)
# | ("flatten",) | ("dropout", rate) | ("dense", units, relu?)
LENET5_MODERN = [
    ("conv", 6, 5, 1, "SAME"),
    ("pool", 2, 2),
    ("conv", 16, 5, 1, "VALID"),
    ("pool", 2, 2),
    ("flatten",),
    ("dense", 120, True),
    ("dense", 84, True),
    ("dense", "classes", False),
]
ALEXNET = [
    ("conv", 96, 11, 4, "VALID"),
    ("pool", 3, 2),
    ("conv", 256, 5, 1, "SAME"),
    ("pool", 3, 2),
    ("conv", 384, 3, 1, "SAME"),
    ("conv", 384, 3, 1, "SAME"),
    ("conv", 256, 3, 1, "SAME"),
    ("pool", 3, 2),
    ("flatten",),
    ("dropout", 0.5),
    ("dense", 4096, True),
    ("dropout", 0.5),
    ("dense", 4096, True),
    ("dense", "classes", False),
]


def glorot(key, shape, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


def init_params(layers, input_shape, classes, key):
    """Glorot-uniform kernels and zero biases, walking the shapes through ``layers``."""
    params, (height, width, channels) = [], input_shape
    features = None
    for layer in layers:
        key, sub = jax.random.split(key)
        if layer[0] == "conv":
            _, filters, kernel, stride, padding = layer
            shape = (kernel, kernel, channels, filters)
            fan_in, fan_out = kernel * kernel * channels, kernel * kernel * filters
            params.append({"w": glorot(sub, shape, fan_in, fan_out), "b": jnp.zeros(filters)})
            if padding == "VALID":
                height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
            else:
                height, width = -(-height // stride), -(-width // stride)
            channels = filters
        elif layer[0] == "pool":
            _, size, stride = layer
            height, width = (height - size) // stride + 1, (width - size) // stride + 1
            params.append({})
        elif layer[0] == "flatten":
            features = height * width * channels
            params.append({})
        elif layer[0] == "dense":
            units = classes if layer[1] == "classes" else layer[1]
            params.append(
                {"w": glorot(sub, (features, units), features, units), "b": jnp.zeros(units)}
            )
            features = units
        else:
            params.append({})
    return params


def forward(layers, params, x, key=None):
    """Logits for NHWC images ``x``; dropout is active when ``key`` is given."""
    for layer, p in zip(layers, params, strict=True):
        kind = layer[0]
        if kind == "conv":
            stride, padding = layer[3], layer[4]
            x = lax.conv_general_dilated(
                x, p["w"], (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
            x = jax.nn.relu(x + p["b"])
        elif kind == "pool":
            window = (1, layer[1], layer[1], 1)
            x = lax.reduce_window(x, -jnp.inf, lax.max, window, (1, layer[2], layer[2], 1), "VALID")
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "dropout" and key is not None:
            key, sub = jax.random.split(key)
            keep = jax.random.bernoulli(sub, 1 - layer[1], x.shape)
            x = jnp.where(keep, x / (1 - layer[1]), 0.0)
        elif kind == "dense":
            x = x @ p["w"] + p["b"]
            x = jax.nn.relu(x) if layer[2] else x
    return x


def cross_entropy(layers, params, x, y, key):
    log_probs = jax.nn.log_softmax(forward(layers, params, x, key))
    return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))


def adam_update(params, grads, state, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-7):
    """One Adam step the way Keras writes it (bias correction folded into the step size)."""
    step = state["step"] + 1
    m = jax.tree.map(lambda m, g: beta1 * m + (1 - beta1) * g, state["m"], grads)
    v = jax.tree.map(lambda v, g: beta2 * v + (1 - beta2) * g * g, state["v"], grads)
    alpha = learning_rate * jnp.sqrt(1 - beta2**step) / (1 - beta1**step)
    params = jax.tree.map(lambda p, m, v: p - alpha * m / (jnp.sqrt(v) + eps), params, m, v)
    return params, {"step": step, "m": m, "v": v}


class JaxSteps:
    """Jitted train and predict steps; data lives on the device once."""

    def __init__(self, job):
        arrays = load_arrays(job)
        self.data = {"y_train": arrays["y_train"], "y_test": arrays["y_test"]}
        self.x_train, self.x_test = jnp.asarray(arrays["x_train"]), jnp.asarray(arrays["x_test"])
        self.y_train = jnp.asarray(arrays["y_train"], dtype=jnp.int32)
        self.layers = LENET5_MODERN if job["model"] == "lenet5_modern" else ALEXNET
        self.job, self.key = job, jax.random.PRNGKey(job["seed"])
        self._train = jax.jit(functools.partial(self._train_step, self.layers))
        self._predict = jax.jit(functools.partial(forward, self.layers))
        self.reset()

    @staticmethod
    def _train_step(layers, params, state, x, y, key):
        loss, grads = jax.value_and_grad(functools.partial(cross_entropy, layers))(
            params, x, y, key
        )
        params, state = adam_update(params, grads, state)
        return params, state, loss

    def reset(self):
        self.key, sub = jax.random.split(self.key)
        shape = tuple(self.x_train.shape[1:])
        self.params = init_params(self.layers, shape, self.job["classes"], sub)
        zeros = jax.tree.map(jnp.zeros_like, self.params)
        self.state = {"step": jnp.zeros((), jnp.float32), "m": zeros, "v": zeros}

    def train_batch(self, chosen):
        self.key, sub = jax.random.split(self.key)
        index = jnp.asarray(chosen)
        self.params, self.state, self.loss = self._train(
            self.params, self.state, self.x_train[index], self.y_train[index], sub
        )

    def predict(self, chosen):
        return np.asarray(self._predict(self.params, self.x_test[jnp.asarray(chosen)]))

    def sync(self):
        jax.block_until_ready(self.params)


def main():
    job = _harness.read_job()
    _harness.run_job("jax-jit", job, JaxSteps(job))


if __name__ == "__main__":
    main()

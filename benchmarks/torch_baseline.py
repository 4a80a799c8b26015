"""Native PyTorch baseline: the zoo's LeNet-5 (modern) and AlexNet, trained by a plain loop.

Not part of the ``zoo`` package: ``benchmarks/bench.py`` starts this file in a
subprocess to compare the zoo's Keras training path with what a PyTorch user
would write by hand. ``"compile": true`` in the job wraps the model in
``torch.compile``; ``"channels_last": true`` keeps weights and images in
PyTorch's channels-last memory format, the one Keras's PyTorch backend
converts every convolution's input to.

The networks match the zoo's layer for layer (kernel sizes, strides, padding,
filters, ReLU, dropout 0.5 in AlexNet) and parameter for parameter; weights use
the same scheme as Keras (Glorot-uniform kernels, zero biases), the loss is
cross-entropy and the optimizer Adam with Keras's defaults (learning rate
1e-3, epsilon 1e-7). Tensors are NCHW, PyTorch's native layout, so the
flattened features are ordered channel-first: a fixed permutation of the
zoo's inputs to the first dense layer, with no effect on speed or accuracy.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness  # noqa: E402
from bench import load_arrays  # noqa: E402  (the job's arrays; NumPy only)


def lenet5_modern(classes=10):
    """LeNet-5 with ReLU and max pooling; (N, 1, 28, 28) -> (N, classes) logits."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, classes),
    )


def alexnet(classes=1000, image_size=227):
    """AlexNet as in the paper, one stream; (N, 3, S, S) -> (N, classes) logits (S = 227)."""
    side = (image_size - 11) // 4 + 1  # conv1, then three 3x3 stride-2 poolings
    for _ in range(3):
        side = (side - 3) // 2 + 1

    def conv(cin, cout, kernel, stride=1, padding=0):
        return [nn.Conv2d(cin, cout, kernel, stride, padding), nn.ReLU()]

    return nn.Sequential(
        *conv(3, 96, 11, stride=4),
        nn.MaxPool2d(3, 2),
        *conv(96, 256, 5, padding=2),
        nn.MaxPool2d(3, 2),
        *conv(256, 384, 3, padding=1),
        *conv(384, 384, 3, padding=1),
        *conv(384, 256, 3, padding=1),
        nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(256 * side * side, 4096),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Linear(4096, classes),
    )


def keras_style_init(model):
    """Glorot-uniform kernels and zero biases, as Keras's Conv2D and Dense start."""
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class TorchSteps:
    """Train and predict steps of a plain eager (or ``torch.compile``) loop."""

    def __init__(self, job):
        torch.manual_seed(job["seed"])
        arrays = load_arrays(job)
        self.data = {"y_train": arrays["y_train"], "y_test": arrays["y_test"]}
        self.memory_format = (
            torch.channels_last if job.get("channels_last") else torch.contiguous_format
        )
        self.x_train, self.x_test = (
            torch.from_numpy(arrays[key])
            .permute(0, 3, 1, 2)
            .contiguous(memory_format=self.memory_format)
            for key in ("x_train", "x_test")
        )
        self.y_train = torch.from_numpy(arrays["y_train"]).long()
        self.job = job
        self.reset()

    def reset(self):
        build = lenet5_modern if self.job["model"] == "lenet5_modern" else alexnet
        self.model = build(self.job["classes"])
        keras_style_init(self.model)
        self.model = self.model.to(memory_format=self.memory_format)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3, eps=1e-7)
        self.forward = torch.compile(self.model) if self.job.get("compile") else self.model

    def train_batch(self, chosen, rate=None, label_smoothing=0.0):
        """One Adam step on the images ``chosen``, at ``rate`` when given.

        ``label_smoothing`` is Keras's: targets ``(1 - ε) one_hot + ε / classes``.
        """
        if rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = rate
        index = torch.from_numpy(chosen)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        images = self.x_train[index].contiguous(memory_format=self.memory_format)
        logits = self.forward(images)
        loss = nn.functional.cross_entropy(
            logits, self.y_train[index], label_smoothing=label_smoothing
        )
        loss.backward()
        self.optimizer.step()

    def predict(self, chosen):
        self.model.eval()
        with torch.no_grad():
            images = self.x_test[torch.from_numpy(chosen)]
            return self.forward(images.contiguous(memory_format=self.memory_format)).numpy()

    def sync(self):
        """Eager CPU work is synchronous: nothing to wait for."""


def main():
    job = _harness.read_job()
    np.random.seed(job["seed"])
    runner = "torch-compile" if job.get("compile") else "torch-eager"
    runner += "-channels-last" if job.get("channels_last") else ""
    if job.get("mode") == "tta":
        runner += "-zoo-recipe" if job.get("recipe") == "zoo" else ""
        _harness.run_time_to_accuracy(runner, job, TorchSteps(job))
    else:
        _harness.run_job(runner, job, TorchSteps(job))


if __name__ == "__main__":
    main()

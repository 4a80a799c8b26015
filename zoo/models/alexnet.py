"""AlexNet, channels-last, in the style of `keras.applications`.

Reference:
- A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet classification with
  deep convolutional neural networks", NeurIPS 2012.

Two variants:

`"original"` (the paper, as one stream instead of two GPUs), 62,378,344
parameters at 227x227x3 with 1000 classes:

```text
(227, 227, 3)
conv1 96 @ 11x11 stride 4 valid   -> (55, 55, 96)   [LRN]  pool1 3x3/2 -> (27, 27, 96)
conv2 256 @ 5x5 same              -> (27, 27, 256)  [LRN]  pool2 3x3/2 -> (13, 13, 256)
conv3 384, conv4 384, conv5 256 @ 3x3 same -> (13, 13, 256)  pool5 3x3/2 -> (6, 6, 256)
flatten (9216,) -> dropout -> fc1 4096 -> dropout -> fc2 4096 -> predictions
```

`"torchvision"` (`torchvision.models.alexnet`), 61,100,840 parameters at
224x224x3 with 1000 classes:

```text
(224, 224, 3)
pad 2, conv1 64 @ 11x11 stride 4  -> (55, 55, 64)   pool1 3x3/2 -> (27, 27, 64)
conv2 192 @ 5x5 same              -> (27, 27, 192)  pool2 3x3/2 -> (13, 13, 192)
conv3 384, conv4 256, conv5 256 @ 3x3 same -> (13, 13, 256)  pool5 3x3/2 -> (6, 6, 256)
adaptive average pool to (6, 6, 256) -> flatten (9216,)
dropout -> fc1 4096 -> dropout -> fc2 4096 -> predictions
```

Every convolution and hidden dense layer uses ReLU. The adaptive pooling
makes the torchvision classifier accept any input at or above the minimum.
"""

from __future__ import annotations

import keras

import zoo.models._builder as _builder
from zoo.layers import AdaptiveAveragePooling2D, LocalResponseNormalization
from zoo.models._builder import CHANNELS_LAST
from zoo.registry import ModelSpec, Paper, Recipe, register_model
from zoo.weights.presets import preset_names

# Adam (not the paper's SGD at 1e-2, which needs far more data and epochs to leave the majority
# class), its rate rising to 1e-3 over the first tenth of the steps and then following half a
# cosine to zero, with label smoothing 0.1: LeNet's fast recipe at AlexNet's batch size. On the
# benchmark's MNIST split at 67x67 (benchmarks/recipe_search.py --model alexnet, PyTorch) it
# reached 0.98 test accuracy in epoch 3 for seeds 0 and 1 and ended at 0.9915 and 0.992, where
# the former recipe (a constant 3e-4 for 10 epochs) took 4 and 3 epochs and fell back to 0.970
# in epoch 4; on the embedded digits at 67x67 these 5 epochs gave 0.969, the former 10 epochs
# 0.967 (BENCHMARKS.md).
ALEXNET_RECIPE = Recipe(
    epochs=5,
    batch_size=32,
    learning_rate=1e-3,
    optimizer="adam",
    schedule="warmup-cosine",
    label_smoothing=0.1,
)

ALEXNET_PAPER = Paper(
    title="ImageNet classification with deep convolutional neural networks",
    authors="A. Krizhevsky, I. Sutskever, G. E. Hinton",
    year=2012,
)

# variant: filters of conv1..conv5, and conv1's explicit zero padding.
VARIANTS = {
    "original": {"filters": (96, 256, 384, 384, 256), "conv1_padding": 0},
    "torchvision": {"filters": (64, 192, 384, 256, 256), "conv1_padding": 2},
}

DEFAULT_INPUT_SHAPES = {"original": (227, 227, 3), "torchvision": (224, 224, 3)}


def _conv(filters, kernel_size, name, strides=1, padding="same"):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        activation="relu",
        data_format=CHANNELS_LAST,
        name=name,
    )


def _max_pool(name):
    return keras.layers.MaxPooling2D(3, strides=2, data_format=CHANNELS_LAST, name=name)


def alexnet_features(variant="original", local_response_norm=False):
    """The five convolutional layers and three max pools, as (unbuilt) layers."""
    spec = VARIANTS[variant]
    f1, f2, f3, f4, f5 = spec["filters"]
    layers = []
    if spec["conv1_padding"]:
        # PyTorch-style symmetric padding; Keras "same" would pad 3 and 4 here.
        layers.append(
            keras.layers.ZeroPadding2D(
                spec["conv1_padding"], data_format=CHANNELS_LAST, name="conv1_pad"
            )
        )
    layers.append(_conv(f1, 11, "conv1", strides=4, padding="valid"))
    if local_response_norm:
        layers.append(LocalResponseNormalization(name="norm1"))
    layers += [_max_pool("pool1"), _conv(f2, 5, "conv2")]
    if local_response_norm:
        layers.append(LocalResponseNormalization(name="norm2"))
    layers += [
        _max_pool("pool2"),
        _conv(f3, 3, "conv3"),
        _conv(f4, 3, "conv4"),
        _conv(f5, 3, "conv5"),
        _max_pool("pool5"),
    ]
    return layers


def alexnet_classifier(variant, classes, classifier_activation, dropout):
    """(Adaptive pooling,) flatten, dropout, 4096, dropout, 4096, output."""
    layers = []
    if variant == "torchvision":
        layers.append(AdaptiveAveragePooling2D((6, 6), name="adaptive_pool"))
    return layers + [
        keras.layers.Flatten(data_format=CHANNELS_LAST, name="flatten"),
        keras.layers.Dropout(dropout, name="dropout1"),
        keras.layers.Dense(4096, activation="relu", name="fc1"),
        keras.layers.Dropout(dropout, name="dropout2"),
        keras.layers.Dense(4096, activation="relu", name="fc2"),
        _builder.prediction_head(classes, classifier_activation),
    ]


# The same for both variants; tests/test_registry.py checks the numbers against built models.
ALEXNET_FACTS = dict(
    family="AlexNet",
    paper=ALEXNET_PAPER,
    recipe=ALEXNET_RECIPE,
    classes=1000,
    classifier=_builder.HEAD,
)


@register_model(
    ModelSpec(
        "alexnet_torchvision",
        description="AlexNet as in torchvision: 64-192-384-256-256 filters, adaptive pooling",
        fixed={"variant": "torchvision"},
        default_input_shape=(224, 224, 3),
        min_input_shape=(63, 63, 3),
        params=61_100_840,
        **ALEXNET_FACTS,
        weights=preset_names("alexnet_torchvision"),
    )
)
@register_model(
    ModelSpec(
        "alexnet",
        description="AlexNet as in the paper, one stream: 96-256-384-384-256 filters",
        fixed={"variant": "original"},
        default_input_shape=(227, 227, 3),
        min_input_shape=(67, 67, 3),
        params=62_378_344,
        **ALEXNET_FACTS,
        weights=preset_names("alexnet"),
    )
)
def alexnet(
    input_shape=None,
    classes=1000,
    variant="original",
    include_top=True,
    pooling=None,
    classifier_activation="softmax",
    input_tensor=None,
    weights=None,
    name=None,
    dropout=0.5,
    local_response_norm=False,
    feature_extractor=False,
):
    """Build AlexNet (Krizhevsky, Sutskever and Hinton, 2012), channels-last.

    Args:
        input_shape: `(height, width, channels)`; at least 67x67 for
            `"original"` and 63x63 for `"torchvision"`. `None` (as in
            `keras.applications`): the default size, 227x227x3 for `"original"`
            and 224x224x3 for `"torchvision"`, or `(None, None, 3)` with
            `include_top=False`. The `"torchvision"` classifier accepts
            `(None, None, 3)` too: its adaptive pooling makes pool5 6x6 at any size.
        classes: number of output units (used when `include_top=True`).
        variant: `"original"` (the paper) or `"torchvision"`.
        include_top: build the classifier; `False` gives a feature extractor
            whose output is `pool5`, `(batch, h', w', 256)`.
        pooling: for `include_top=False`: `None`, `"avg"` or `"max"`.
        classifier_activation: activation of the output layer; `None` gives logits.
        input_tensor: optional Keras tensor to use as the model's input.
        weights: `None` (random initialisation), a `.weights.h5` path, or for
            `"torchvision"`: `"imagenet"` (torchvision's `alexnet-owt-7be5be79.pth`
            from the PyTorch cache) or the path of a torchvision AlexNet `.pth` file
            (see [`zoo.weights.presets.alexnet`][]; inputs then go through
            `zoo.preprocess_input(x, mode="torch")`).
        name: model name (default `"alexnet"` or `"alexnet_torchvision"`).
        dropout: dropout rate before each hidden dense layer, in `[0, 1)`.
        local_response_norm: add the paper's local response normalisation
            after conv1 and conv2 (no parameters).
        feature_extractor: return a dict of named feature maps instead:
            `conv1` ... `conv5`, `pool1`, `pool2`, `pool5` (and `norm*` is
            left out), plus `predictions` (or `avg_pool` / `max_pool`).

    Returns:
        A `keras.Model` mapping `(batch, H, W, C)` to `(batch, classes)`
        (float32 predictions, even under a mixed precision policy).
    """
    _builder.check_choice("variant", variant, tuple(VARIANTS))
    _builder.check_choice("pooling", pooling, (None, "avg", "max"))
    _builder.check_classes(classes, include_top)
    if not 0 <= dropout < 1:
        raise _builder.ZooError(f"dropout must be a rate in [0, 1), got {dropout!r}.")
    name = name or ("alexnet" if variant == "original" else "alexnet_torchvision")
    return _builder.assemble(
        name,
        alexnet_features(variant, local_response_norm),
        alexnet_classifier(variant, classes, classifier_activation, dropout),
        input_shape=input_shape,
        input_tensor=input_tensor,
        include_top=include_top,
        pooling=pooling,
        weights=weights,
        weights_for="alexnet" if variant == "original" else "alexnet_torchvision",
        default_input_shape=DEFAULT_INPUT_SHAPES[variant],
        dynamic_top=variant == "torchvision",
        feature_extractor=feature_extractor,
    )

"""LeNet-5, channels-last, in the style of `keras.applications`.

Reference:
- Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning
  applied to document recognition", Proceedings of the IEEE, 1998.

Two variants, both 61,706 parameters at 28x28x1 with 10 classes:

```text
layer        "classic"                "modern"
conv1        6 @ 5x5, same, sigmoid   6 @ 5x5, same, ReLU
pool1        2x2 average, stride 2    2x2 max, stride 2
conv2        16 @ 5x5, valid, sigmoid 16 @ 5x5, valid, ReLU
pool2        2x2 average, stride 2    2x2 max, stride 2
fc1, fc2     120, 84, sigmoid         120, 84, ReLU
predictions  classes                  classes
```

Shapes at the default input: `(28, 28, 1) -> conv1 (28, 28, 6) -> pool1
(14, 14, 6) -> conv2 (10, 10, 16) -> pool2 (5, 5, 16) -> flatten (400,) ->
fc1 (120,) -> fc2 (84,) -> predictions (classes,)`. The 28x28 input with a
"same" first convolution plays the role of the paper's 32x32 input with a
valid one.

`activation=` replaces the variant's activation in conv1, conv2, fc1 and fc2
(the pooling stays the variant's); `"scaled_tanh"` is the paper's
`1.7159 tanh(2a/3)` ([`zoo.layers.scaled_tanh`][]).
"""

from __future__ import annotations

import keras

import zoo.models._builder as _builder
from zoo.errors import ZooError
from zoo.layers import scaled_tanh
from zoo.models._builder import CHANNELS_LAST
from zoo.registry import ModelSpec, Paper, Recipe, register_model
from zoo.weights.presets import preset_names

LENET_PAPER = Paper(
    title="Gradient-based learning applied to document recognition",
    authors="Y. LeCun, L. Bottou, Y. Bengio, P. Haffner",
    year=1998,
)
LENET_FACTS = dict(  # the same for both variants; tests/test_registry.py checks them
    family="LeNet",
    paper=LENET_PAPER,
    default_input_shape=(28, 28, 1),
    min_input_shape=(12, 12, 1),
    params=61_706,
    classes=10,
    classifier=_builder.HEAD,
)

VARIANTS = {
    # variant: (activation, pooling layer class)
    "classic": ("sigmoid", keras.layers.AveragePooling2D),
    "modern": ("relu", keras.layers.MaxPooling2D),
}


# Activations the zoo defines itself; any other name goes to Keras as it is.
ZOO_ACTIVATIONS = {"scaled_tanh": scaled_tanh}


def hidden_activation(variant, activation=None):
    """The activation of conv1, conv2, fc1 and fc2: the variant's, or `activation` instead.

    `"scaled_tanh"` gives [`zoo.layers.scaled_tanh`][] (LeCun et al., 1998,
    Appendix A); any other name must be one Keras knows (`"tanh"`, `"relu"`, ...).
    """
    if activation is None:
        return VARIANTS[variant][0]
    if activation in ZOO_ACTIVATIONS:
        return ZOO_ACTIVATIONS[activation]
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ZooError(
            f"Unknown activation {activation!r}. Use a Keras activation name such as "
            "'sigmoid', 'tanh' or 'relu', or 'scaled_tanh' (the paper's 1.7159 tanh(2a/3))."
        ) from None
    return activation


def lenet_features(variant="classic", activation=None):
    """The convolutional part of LeNet-5 as a list of (unbuilt) layers."""
    _, pool = VARIANTS[variant]
    activation = hidden_activation(variant, activation)
    conv = dict(kernel_size=5, activation=activation, data_format=CHANNELS_LAST)
    return [
        keras.layers.Conv2D(6, padding="same", name="conv1", **conv),
        pool(pool_size=2, strides=2, data_format=CHANNELS_LAST, name="pool1"),
        keras.layers.Conv2D(16, padding="valid", name="conv2", **conv),
        pool(pool_size=2, strides=2, data_format=CHANNELS_LAST, name="pool2"),
    ]


def lenet_classifier(variant, classes, classifier_activation, activation=None):
    """Flatten, two hidden dense layers (120, 84) and the output layer."""
    activation = hidden_activation(variant, activation)
    return [
        keras.layers.Flatten(data_format=CHANNELS_LAST, name="flatten"),
        keras.layers.Dense(120, activation=activation, name="fc1"),
        keras.layers.Dense(84, activation=activation, name="fc2"),
        _builder.prediction_head(classes, classifier_activation),
    ]


@register_model(
    ModelSpec(
        "lenet5_modern",
        description="LeNet-5 with ReLU and max pooling",
        # Warm-up then cosine decay at a peak of 3e-3, label smoothing 0.1: 0.98 test accuracy
        # on the bench's MNIST split (8,000 training images) at epoch 2 or 3 for every seed
        # tried on every backend, where a constant 1e-3 at batch 128 took the plain PyTorch
        # loop 6 to 10 epochs (BENCHMARKS.md, benchmarks/recipe_search.py).
        recipe=Recipe(
            epochs=5,
            batch_size=64,
            learning_rate=3e-3,
            optimizer="adam",
            schedule="warmup-cosine",
            label_smoothing=0.1,
            # 5 epochs are ~600 steps on MNIST-sized data but ~100 on the 1,300 training digits,
            # which left seeds at 0.94-0.96; 400 steps at least (20 epochs there) gives every
            # seed >= 0.96 on every backend (`make accuracy`, BENCHMARKS.md).
            min_steps=400,
        ),
        fixed={"variant": "modern"},
        weights=preset_names("lenet5_modern"),
        **LENET_FACTS,
    )
)
@register_model(
    ModelSpec(
        "lenet5",
        description="LeNet-5 simplified: sigmoid and average pooling, not the paper's scaled tanh, "
        "trained subsampling or RBF outputs",
        # Sigmoid units learn slowly at first: a larger step and more epochs.
        recipe=Recipe(epochs=30, batch_size=32, learning_rate=3e-3, optimizer="adam"),
        fixed={"variant": "classic"},
        weights=preset_names("lenet5"),
        **LENET_FACTS,
    )
)
def lenet(
    input_shape=None,
    classes=10,
    variant="classic",
    include_top=True,
    pooling=None,
    classifier_activation="softmax",
    input_tensor=None,
    weights=None,
    name=None,
    feature_extractor=False,
    activation=None,
):
    """Build LeNet-5 (LeCun et al., 1998), channels-last.

    Args:
        input_shape: `(height, width, channels)`; at least `(12, 12, c)`.
            `None` (as in `keras.applications`): `(28, 28, 1)`, or
            `(None, None, 1)` with `include_top=False`. Ignored when
            `input_tensor` is given.
        classes: number of output units (used when `include_top=True`).
        variant: `"classic"` (sigmoid, average pooling) or `"modern"`
            (ReLU, max pooling).
        include_top: build the dense classifier; `False` gives a feature
            extractor whose output is `pool2`, `(batch, h', w', 16)`.
        pooling: for `include_top=False`: `None` (4-D output), `"avg"`
            or `"max"` (global pooling to `(batch, 16)`).
        classifier_activation: activation of the output layer; `None` gives logits.
        input_tensor: optional Keras tensor to use as the model's input.
        weights: `None` (random initialisation), `"digits"` (the shipped
            preset trained on the embedded 8x8 digits resized to 28x28), `"mnist"` (the
            shipped preset trained on MNIST with augmentation; prepare a person's digit
            with [`zoo.preprocess_digit`][zoo.data.digit.preprocess_digit]), each checked by
            SHA-256, for 1 channel and, with the classifier, 28x28 and 10 classes (see
            [`zoo.weights.presets.lenet`][]), or a `.weights.h5` path.
        name: model name (default `"lenet5"` or `"lenet5_modern"`).
        feature_extractor: return a dict of named feature maps instead:
            `conv1`, `pool1`, `conv2`, `pool2`, plus `predictions`
            (or `avg_pool` / `max_pool`).
        activation: `None` (the variant's: sigmoid or ReLU), or the activation of
            conv1, conv2, fc1 and fc2 instead: a Keras name such as `"tanh"`, or
            `"scaled_tanh"`, the paper's `1.7159 tanh(2a/3)` (LeCun et al., 1998,
            Appendix A; [`zoo.layers.scaled_tanh`][]). Shapes and parameter count
            stay the same; the pooling stays the variant's. The shipped presets were
            trained with the variant's own activation, so they refuse another one.

    Returns:
        A `keras.Model` mapping `(batch, H, W, C)` to `(batch, classes)`
        (float32 predictions, even under a mixed precision policy).
    """
    _builder.check_choice("variant", variant, tuple(VARIANTS))
    _builder.check_choice("pooling", pooling, (None, "avg", "max"))
    _builder.check_classes(classes, include_top)
    weights_for = "lenet5" if variant == "classic" else "lenet5_modern"
    own = activation is None or activation == VARIANTS[variant][0]
    if not own and weights in preset_names(weights_for):
        raise ZooError(
            f"The {weights!r} preset of {weights_for} was trained with "
            f"{VARIANTS[variant][0]}; it does not fit activation={activation!r}. "
            "Leave activation out, or train the model with it."
        )
    name = name or weights_for
    return _builder.assemble(
        name,
        lenet_features(variant, activation),
        lenet_classifier(variant, classes, classifier_activation, activation),
        input_shape=input_shape,
        input_tensor=input_tensor,
        include_top=include_top,
        pooling=pooling,
        weights=weights,
        weights_for=weights_for,
        default_input_shape=LENET_FACTS["default_input_shape"],
        feature_extractor=feature_extractor,
    )

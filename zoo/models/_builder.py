"""Helpers every builder shares: input checks, the classifier head, weights.

Each check raises one `ZooError` (a `ValueError`) whose message names the problem and the
fix. The minimum input size is never written by hand: it comes from the
layers' own kernel, stride and padding settings through `zoo.shapes`.
"""

from __future__ import annotations

import keras

from zoo.accel import accelerate
from zoo.errors import ZooError
from zoo.shapes import SpatialSizeError, min_input_size, trace_spatial_sizes

CHANNELS_LAST = "channels_last"
# The classifier head's layer name in every family, keras.applications' name. Each spec states
# it (ModelSpec.classifier), so code that handles the head (the weights) reads it from there.
HEAD = "predictions"


def check_choice(argument, value, choices):
    """Raise unless `value` is one of `choices`."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ZooError(f"Unknown {argument} {value!r}. Use one of: {options}.")


def check_classes(classes, include_top):
    """`classes` must be a positive integer when the classifier is built."""
    if include_top and (not isinstance(classes, int) or isinstance(classes, bool) or classes < 1):
        raise ZooError(
            f"classes must be an integer >= 1 (the number of output units), got {classes!r}."
        )


def check_input_shape(input_shape, include_top, model_name, dynamic_top=False):
    """Check that `input_shape` is (height, width, channels), channels last.

    `None` height and width are accepted for a feature extractor
    (`include_top=False`), where no flattened size has to be known, and for
    a classifier that pools to a fixed grid first (`dynamic_top`).
    """
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        example = "e.g. (28, 28, 1) for gray images or (224, 224, 3) for RGB"
        if isinstance(input_shape, (tuple, list)) and len(input_shape) == 2:
            height, width = input_shape
            example = f"{(height, width, 1)!r} for gray images or {(height, width, 3)!r} for RGB"
        raise ZooError(
            f"{model_name}: input_shape must be (height, width, channels), got {input_shape!r}. "
            f"Add the channel axis: {example}."
        )
    height, width, channels = input_shape
    for axis, value in (("height", height), ("width", width), ("channels", channels)):
        if value is None and axis != "channels" and (dynamic_top or not include_top):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ZooError(
                f"{model_name}: input_shape {tuple(input_shape)!r} has {axis}={value!r}; "
                "every entry must be a positive integer (None height/width is allowed only "
                "with include_top=False)."
            )
    looks_channels_first = channels > 4 and (height in (1, 3, 4)) and width not in (1, 3, 4, None)
    if looks_channels_first:
        raise ZooError(
            f"{model_name}: input_shape {tuple(input_shape)!r} looks channels-first "
            f"(channels, height, width). The zoo is channels-last: use "
            f"{(width, channels, height)!r}, and transpose arrays with "
            "np.transpose(x, (0, 2, 3, 1))."
        )
    return tuple(input_shape)


def default_shape(default_input_shape, include_top):
    """What `input_shape=None` means, as in `keras.applications`: the model's default
    size with the classifier, any height and width for a feature extractor."""
    if include_top:
        return tuple(default_input_shape)
    return (None, None, default_input_shape[2])


def min_input_shape(layers, channels):
    """`(min_height, min_width, channels)` for a stack of (square-kernel) layers."""
    side = min_input_size(layers)
    return (side, side, channels)


def check_input_size(layers, input_shape, model_name):
    """Raise if a feature map would vanish inside `layers` for this input."""
    height, width, channels = input_shape
    if height is None or width is None:
        return
    try:
        trace_spatial_sizes(layers, height, width)
    except SpatialSizeError as error:
        smallest = min_input_shape(layers, channels)
        raise ZooError(
            f"{model_name}: input {height}x{width} is too small: {str(error).rstrip('.')}. "
            f"The minimum input is {smallest[0]}x{smallest[1]}: use input_shape="
            f"{smallest!r} or larger, or resize your images."
        ) from None


def make_input(input_shape, input_tensor, include_top, model_name, dynamic_top=False):
    """Return `(image_input, input_shape)`, honouring `input_tensor` like keras.applications."""
    if input_tensor is None:
        shape = check_input_shape(input_shape, include_top, model_name, dynamic_top)
        return keras.Input(shape=shape, name="image"), shape
    if not keras.backend.is_keras_tensor(input_tensor):
        raise ZooError(
            f"{model_name}: input_tensor must be a Keras tensor such as "
            f"keras.Input(shape=(h, w, c)), got {type(input_tensor).__name__}."
        )
    shape = check_input_shape(tuple(input_tensor.shape[1:]), include_top, model_name, dynamic_top)
    return input_tensor, shape


def apply(layers, x):
    """Call each layer in turn."""
    for layer in layers:
        x = layer(x)
    return x


def feature_pooling(pooling):
    """The optional global pooling layer for a feature extractor."""
    check_choice("pooling", pooling, (None, "avg", "max"))
    if pooling == "avg":
        return [keras.layers.GlobalAveragePooling2D(data_format=CHANNELS_LAST, name="avg_pool")]
    if pooling == "max":
        return [keras.layers.GlobalMaxPooling2D(data_format=CHANNELS_LAST, name="max_pool")]
    return []


def assemble(
    name,
    features,
    classifier,
    *,
    input_shape,
    input_tensor,
    include_top,
    pooling,
    weights,
    weights_for,
    default_input_shape,
    dynamic_top=False,
    feature_extractor=False,
):
    """Check the input, stack `features` then `classifier` (or the optional global
    pooling of a feature extractor), load `weights` and return the `keras.Model`.

    `input_shape=None` means `default_input_shape` (see `default_shape`).
    `weights_for` is the registry name whose presets `weights` may name.
    With `feature_extractor` the model returns a dict: every convolution's and
    pooling's output by layer name, plus the classifier's (or global pooling's) output.
    The order of that dict's keys is the backend's (some sort them); `model.output`
    lists the names in layer order, on every backend.
    """
    if input_shape is None and input_tensor is None:
        input_shape = default_shape(default_input_shape, include_top)
    image, shape = make_input(input_shape, input_tensor, include_top, name, dynamic_top)
    check_input_size(features, shape, name)
    top = classifier if include_top else feature_pooling(pooling)
    maps = {}
    x = image
    for layer in features:
        x = layer(x)
        if _is_feature(layer):
            maps[layer.name] = x
    outputs = apply(top, x)
    if feature_extractor:
        if top:
            maps[top[-1].name] = outputs
        outputs = maps
    return finish_model(image, input_tensor, outputs, name, weights, weights_for)


def _is_feature(layer):
    """Convolutions and poolings are the feature maps worth showing (not padding or norms)."""
    return layer.name.startswith(("conv", "pool")) and not layer.name.endswith("_pad")


def predictions_dtype():
    """`"float32"` under a mixed precision policy, so predictions (and their softmax)
    come out in float32, as the Keras mixed-precision guide advises; else `None`."""
    policy = keras.config.dtype_policy()
    return "float32" if policy.name.startswith("mixed") else None


def prediction_head(classes, activation):
    """The classifier's last layer, named `HEAD` (the name the weights code and
    `ModelSpec.classifier` use), computing in float32 under mixed precision."""
    return keras.layers.Dense(classes, activation=activation, dtype=predictions_dtype(), name=HEAD)


def finish_model(image_input, input_tensor, outputs, name, weights, weights_for=None):
    """Wrap the graph in a `keras.Model`, give it the backend's speed-ups
    ([`zoo.accel.accelerate`][]: the layers stay plain Keras classes) and load `weights`
    (see [`zoo.weights`][])."""
    inputs = image_input
    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(inputs, outputs, name=name)
    accelerate(model)
    if weights is not None:
        from zoo.weights import load_weights

        load_weights(model, weights, weights_for or name)
    return model

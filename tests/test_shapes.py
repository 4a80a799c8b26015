"""zoo.shapes: the output-size formula and the layer tracer."""

import keras
import pytest

from zoo import shapes


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(size=6, kernel_size=3), 4),
        (dict(size=6, kernel_size=3, stride=2), 2),
        (dict(size=6, kernel_size=3, padding=1), 6),
        (dict(size=6, kernel_size=3, dilation=2), 2),
        (dict(size=227, kernel_size=11, stride=4), 55),
        (dict(size=224, kernel_size=11, stride=4, padding=2), 55),
        (dict(size=224, kernel_size=11, stride=4, padding="same"), 56),
        (dict(size=7, kernel_size=4, stride=2, padding="same"), 4),
        (dict(size=5, kernel_size=3, padding=(0, 2)), 5),
    ],
)
def test_conv_output_size(kwargs, expected):
    assert shapes.conv_output_size(**kwargs) == expected


def test_pool_output_size_defaults_stride_to_pool_size():
    assert shapes.pool_output_size(28, 2) == 14
    assert shapes.pool_output_size(4, 2, stride=1) == 3
    assert shapes.pool_output_size(55, 3, stride=2) == 27
    assert shapes.pool_output_size(5, 2, padding="same") == 3


def test_same_padding_puts_the_odd_pixel_after():
    assert shapes.same_padding(224, 11, stride=4) == (3, 4)
    assert shapes.same_padding(28, 5) == (2, 2)
    assert shapes.same_padding(6, 4) == (1, 2)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(size=4, kernel_size=5), ["kernel covers 5 pixels", "only 4 pixels"]),
        (dict(size=4, kernel_size=3, dilation=2), ["kernel covers 5 pixels", "dilation=2"]),
        (dict(size=6, kernel_size=3, stride=0), ["stride must be an integer >= 1", "0"]),
        (dict(size=6, kernel_size=3, dilation=0), ["dilation must be"]),
        (dict(size=6, kernel_size=3, padding=-1), ["padding values must be integers >= 0"]),
        (dict(size=6, kernel_size=3, padding="full"), ["padding must be 'valid', 'same'"]),
    ],
)
def test_conv_output_size_errors(kwargs, words):
    with pytest.raises(ValueError) as error:
        shapes.conv_output_size(**kwargs)
    for word in words:
        assert word in str(error.value)


def test_trace_and_min_input_size_follow_the_layers():
    layers = [
        keras.layers.ZeroPadding2D(1, name="pad"),
        keras.layers.Conv2D(4, 3, strides=2, name="conv"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(3, name="dense"),
    ]
    trace = shapes.trace_spatial_sizes(layers, 10, 14)
    assert trace == [("pad", (12, 16)), ("conv", (5, 7)), ("pool", (2, 3))]
    # The pool needs 2 pixels, so the conv must give 2: (W + 2 - 3) // 2 + 1 >= 2, W >= 3.
    assert shapes.min_input_size(layers) == 3
    with pytest.raises(ValueError, match="vanishes at layer 'pool'"):
        shapes.trace_spatial_sizes(layers, 2, 2)


def test_trace_a_zoo_model_layer_by_layer():
    import zoo

    trace = dict(shapes.trace_spatial_sizes(zoo.lenet().layers, 28, 28))
    assert trace == {
        "image": (28, 28),
        "conv1": (28, 28),
        "pool1": (14, 14),
        "conv2": (10, 10),
        "pool2": (5, 5),
    }
    model = zoo.alexnet(input_shape=(224, 224, 3), variant="torchvision")
    trace = dict(shapes.trace_spatial_sizes(model.layers, 224, 224))
    assert trace["conv1_pad"] == (228, 228)
    assert trace["conv1"] == (55, 55)
    assert trace["pool5"] == (6, 6)
    assert trace["adaptive_pool"] == (6, 6)
    # The traced sizes agree with what Keras itself built.
    for layer in model.layers[1:]:
        if layer.name in trace:
            assert tuple(layer.output.shape[1:3]) == trace[layer.name]

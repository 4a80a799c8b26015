"""Per-layer parameters, multiply-adds and receptive fields (zoo.explain.anatomy)."""

import keras
import numpy as np
import pytest

import zoo
from zoo.explain import anatomy


def test_lenet_table_by_hand():
    rows = anatomy.layer_table(zoo.lenet())
    assert [r.name for r in rows][:4] == ["conv1", "pool1", "conv2", "pool2"]
    assert [r.receptive_field for r in rows] == [5, 6, 14, 16, None, None, None, None]
    assert [r.jump for r in rows][:4] == [1, 2, 2, 4]
    # conv1: 28*28 positions x 6 maps x 5*5*1 taps; conv2: 10*10 x 16 x 5*5*6.
    assert [r.macs for r in rows] == [117_600, 0, 240_000, 0, 0, 48_000, 10_080, 840]
    assert sum(r.params for r in rows) == 61_706
    assert rows[0].flops == 235_200
    text = anatomy.table_text(rows)
    assert "61,706" in text and "416,520" in text and text.count("\n") == len(rows) + 2


def test_alexnet_torchvision_matches_torchvision_documented_cost():
    """torchvision documents AlexNet at 61,100,840 parameters and 0.71 G multiply-adds."""
    rows = anatomy.layer_table(zoo.get_model("alexnet_torchvision"))
    assert sum(r.params for r in rows) == 61_100_840
    assert round(sum(r.macs for r in rows) / 1e9, 2) == 0.71
    conv = {r.name: r for r in rows}
    assert (conv["conv1"].receptive_field, conv["pool5"].receptive_field) == (11, 195)


def influence_extent(model, size):
    """Measured receptive field: how many input rows can change the centre output pixel.

    Every input pixel is switched on alone (a batch of one-hot images); the
    rows whose image changes the centre output of the model's last layer are
    counted.
    """
    images = np.eye(size * size, dtype="float32").reshape(-1, size, size, 1)
    outputs = keras.ops.convert_to_numpy(model(images))
    centre = outputs[:, outputs.shape[1] // 2, outputs.shape[2] // 2, :]
    baseline = keras.ops.convert_to_numpy(model(np.zeros((1, size, size, 1), "float32")))
    changed = np.any(np.abs(centre - baseline[0, outputs.shape[1] // 2, outputs.shape[2] // 2])
                     > 0, axis=-1).reshape(size, size)  # fmt: skip
    rows = np.flatnonzero(changed.any(axis=1))
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(
    "layers",
    [
        [("conv", 5, 1, 1), ("avg", 2, 2), ("conv", 5, 1, 1), ("avg", 2, 2)],  # LeNet's features
        [("conv", 3, 1, 2), ("conv", 3, 2, 1)],  # a dilated convolution, then a strided one
        [("conv", 3, 1, 1), ("avg", 3, 2), ("conv", 3, 1, 3)],  # overlapping pooling
    ],
    ids=["lenet", "dilated_strided", "overlapping_pool"],
)
def test_receptive_field_matches_what_the_layers_really_see(layers):
    built = []
    for spec in layers:
        if spec[0] == "conv":
            _, size, stride, dilation = spec
            built.append(
                keras.layers.Conv2D(
                    1, size, strides=stride, dilation_rate=dilation, kernel_initializer="ones"
                )
            )
        else:
            built.append(keras.layers.AveragePooling2D(spec[1], strides=spec[2]))
    model = keras.Sequential([keras.Input((33, 33, 1)), *built])
    assert anatomy.layer_table(model)[-1].receptive_field == influence_extent(model, 33)

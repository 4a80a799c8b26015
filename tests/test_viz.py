"""Pictures: the convolution GIF and the Matplotlib figures (Agg, no screen)."""

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo import viz


@pytest.mark.parametrize(
    "settings, outputs",
    [({}, 16), ({"stride": 2}, 4), ({"padding": 1}, 36), ({"dilation": 2}, 4)],
)
def test_gif_has_one_frame_per_output_position(tmp_path, settings, outputs):
    path = tmp_path / "conv.gif"
    frames = viz.animate_convolution(path, size=(6.0, 2.5), dpi=50, **settings)
    assert frames == outputs + 1  # plus the title frame
    with Image.open(path) as gif:
        assert gif.n_frames == outputs + 1
        assert gif.size == (300, 125)
    assert [p.name for p in tmp_path.iterdir()] == ["conv.gif"]  # no temporary left behind


def test_gif_without_title_frame_and_custom_data(tmp_path):
    image = np.arange(20.0).reshape(4, 5)
    frames = viz.animate_convolution(
        tmp_path / "c.gif",
        image=image,
        kernel=np.eye(2),
        title_frame=False,
        size=(5.0, 2.0),
        dpi=40,
    )
    assert frames == 3 * 4


def test_frames_mark_the_dilated_taps_and_padding():
    padded, mask, output, positions = viz.convolution_frames(
        np.arange(36.0).reshape(6, 6), np.ones((3, 3)) / 9, padding=1, dilation=2
    )
    assert padded.shape == (8, 8) and mask.sum() == 64 - 36
    assert output.shape == (4, 4)
    first_cell, taps = positions[0]
    assert first_cell == (0, 0)
    assert taps == [(0, 0), (0, 2), (0, 4), (2, 0), (2, 2), (2, 4), (4, 0), (4, 2), (4, 4)]
    # The output equals the reference average of exactly those taps.
    assert output[0, 0] == pytest.approx(np.mean([padded[r, c] for r, c in taps]))


def test_feature_maps_and_filters_render_with_agg(tmp_path):
    model = zoo.lenet(variant="modern")
    image = np.random.default_rng(0).random((28, 28, 1), dtype="float32")
    figure = viz.plot_feature_maps(model, image, layer="conv1")
    assert figure.canvas.__class__.__name__ == "FigureCanvasAgg"
    assert len([a for a in figure.axes if a.images]) == 6
    figure.savefig(tmp_path / "maps.png")
    filters = viz.plot_filters(model.get_layer("conv2"))
    assert len([a for a in filters.axes if a.images]) == 16
    filters.savefig(tmp_path / "filters.png")
    with Image.open(tmp_path / "maps.png") as png:
        assert png.size[0] > 100


def test_feature_maps_reject_dense_layers_and_filters_reject_pools():
    model = zoo.lenet()
    with pytest.raises(ValueError, match="not feature maps"):
        viz.plot_feature_maps(model, np.zeros((28, 28, 1)), layer="fc1")
    with pytest.raises(ValueError, match="pass a Conv2D layer"):
        viz.plot_filters(model.get_layer("pool1"))

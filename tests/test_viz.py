"""Pictures: the convolution GIF and the Matplotlib figures (Agg, no screen)."""

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.explain import viz


@pytest.mark.parametrize(
    "settings, outputs",
    [({}, 16), ({"stride": 2}, 4), ({"padding": 1}, 36), ({"dilation": 2}, 4)],
)
def test_gif_has_one_frame_per_output_position(tmp_path, settings, outputs):
    path = tmp_path / "conv.gif"
    animation = viz.animate_convolution(size=(6.0, 2.5), dpi=50, **settings)
    assert animation.frames == outputs + 1  # plus the title frame
    assert animation.size == (300, 125)
    assert animation.save(path) == path
    assert path.read_bytes() == animation.data
    with Image.open(path) as gif:
        assert gif.n_frames == outputs + 1
        assert gif.size == (300, 125)
    assert [p.name for p in tmp_path.iterdir()] == ["conv.gif"]  # no temporary left behind


def test_gif_without_title_frame_and_custom_data(tmp_path):
    image = np.arange(20.0).reshape(4, 5)
    animation = viz.animate_convolution(
        image=image,
        kernel=np.eye(2),
        title_frame=False,
        size=(5.0, 2.0),
        dpi=40,
    )
    assert animation.frames == 3 * 4
    assert list(tmp_path.iterdir()) == []  # returning an animation writes nothing


def test_gif_animation_displays_in_jupyter():
    """What IPython's display machinery asks for: an animated GIF and an HTML <img> of it."""
    import base64

    from IPython.core.formatters import DisplayFormatter

    animation = viz.animate_convolution(stride=2, size=(4.0, 2.0), dpi=30)
    bundle, _ = DisplayFormatter().format(animation)
    assert base64.b64decode(bundle["image/gif"]) == animation.data
    assert bundle["image/gif"] in bundle["text/html"] and "<img" in bundle["text/html"]
    assert bundle["text/plain"] == "<GifAnimation: 5 frames of 120x60 pixels>"
    with Image.open(__import__("io").BytesIO(animation.data)) as gif:
        assert gif.n_frames == 5 and gif.format == "GIF"


def test_a_path_is_not_an_image_and_nothing_is_written(tmp_path):
    """0.1.0's animate_convolution(path, ...) form is gone: a path is refused as the image."""
    with pytest.raises((TypeError, ValueError)):
        viz.animate_convolution(tmp_path / "old.gif", stride=2, size=(4.0, 2.0), dpi=30)
    assert list(tmp_path.iterdir()) == []


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


def every_figure_function():
    """One call of each public ``zoo.explain.viz`` function that draws, with small inputs."""
    model = zoo.lenet(variant="modern")
    image = np.random.default_rng(0).random((28, 28, 1), dtype="float32")
    matrix = viz.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1], 3)
    return {
        "animate_convolution": lambda: viz.animate_convolution(size=(4.0, 2.0), dpi=30),
        "plot_feature_maps": lambda: viz.plot_feature_maps(model, image, layer="conv1"),
        "plot_filters": lambda: viz.plot_filters(model.get_layer("conv1")),
        "plot_history": lambda: viz.plot_history({"loss": [2.0, 1.0], "accuracy": [0.5, 0.8]}),
        "plot_confusion_matrix": lambda: viz.plot_confusion_matrix(matrix),
    }


def test_every_picture_function_returns_a_displayable_object_and_leaves_nothing_open():
    import matplotlib.pyplot as plt
    from IPython.core.formatters import DisplayFormatter
    from matplotlib.figure import Figure

    drawing = every_figure_function()
    assert set(drawing) == {n for n in viz.__all__ if n.startswith(("plot_", "animate_"))}
    open_before = plt.get_fignums()
    for name, draw in drawing.items():
        picture = draw()
        assert picture is not None, name
        if name.startswith("plot_"):
            assert isinstance(picture, Figure), name
        bundle, _ = DisplayFormatter().format(picture)
        shown = bundle.get("image/png") or bundle.get("image/gif")
        assert shown and len(shown) > 1000, f"{name} shows nothing in Jupyter"
    assert plt.get_fignums() == open_before
    assert matplotlib_backend_untouched()


def matplotlib_backend_untouched():
    """Importing and using zoo.explain.viz never switches Matplotlib's backend for the user."""
    import subprocess
    import sys

    code = (
        "import sys, matplotlib; raw = lambda: dict.__getitem__(matplotlib.rcParams, 'backend'); "
        "before = raw(); from zoo.explain import viz; viz.plot_history({'loss': [1.0]}); "
        "print(before == raw() and 'matplotlib.pyplot' not in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return result.stdout.strip() == "True"


@pytest.mark.parametrize("classes", [3, 10, 30, 31, 100, 1000])
def test_confusion_matrix_labels_never_overlap(classes):
    """Every named class's label is readable: inside the picture, none overlapping another."""
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, 400)
    matrix = viz.confusion_matrix(labels, labels, classes)
    names = [f"class number {i} with a long name" for i in range(classes)]
    figure = viz.plot_confusion_matrix(matrix, names)
    renderer = figure.canvas.get_renderer()
    figure.canvas.draw()
    axis = figure.axes[0]
    whole = figure.bbox
    for ticks in (axis.get_xticklabels(), axis.get_yticklabels()):
        boxes = [t.get_window_extent(renderer) for t in ticks if t.get_text()]
        assert 2 <= len(boxes) <= 30 or len(boxes) == classes
        assert all(whole.contains(b.x0, b.y0) and whole.contains(b.x1, b.y1) for b in boxes)
        assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:], strict=False))
    shown = [t.get_text() for t in axis.get_xticklabels()]
    assert shown[0] == "class number …"  # shortened to 14 characters
    assert len(shown) == (classes if classes <= 30 else len(range(0, classes, -(-classes // 30))))

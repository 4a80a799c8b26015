"""zoo.preprocess_digit: a person's digit made into what an MNIST-trained model saw."""

import gzip
import pathlib

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import zoo
from zoo.data.digit import BOX, SIZE, digit_steps

MNIST = pathlib.Path(__file__).resolve().parents[1].parent / "shared/data/mnist-t10k"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def drawn(text="4", size=200, ink="black", paper="white", mode="RGB", at=(40, 10), points=150):
    image = Image.new(mode, (size, size), paper)
    font = ImageFont.truetype(FONT, points) if pathlib.Path(FONT).exists() else None
    if font is None:
        pytest.skip(f"no TrueType font at {FONT} (Debian: fonts-dejavu-core)")
    ImageDraw.Draw(image).text(at, text, fill=ink, font=font)
    return image


def test_the_result_is_mnist_shaped_light_on_dark_and_centred():
    result = zoo.preprocess_digit(drawn())
    assert result.shape == (SIZE, SIZE, 1) and result.dtype == np.float32
    assert result.min() == 0.0 and result.max() == pytest.approx(1.0, abs=0.02)
    rows, cols = np.nonzero(result[..., 0] > 0)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 == BOX
    mass = result[..., 0] / result.sum()
    centre = (
        (mass.sum(1) * (np.arange(SIZE) + 0.5)).sum(),
        (mass.sum(0) * (np.arange(SIZE) + 0.5)).sum(),
    )
    assert np.allclose(centre, SIZE / 2, atol=0.5)


def test_polarity_colour_size_and_position_do_not_change_the_answer():
    reference = zoo.preprocess_digit(drawn())
    variants = [
        drawn(ink="white", paper="black"),
        drawn(mode="L", ink=0, paper=255),
        drawn(ink=(20, 40, 200), paper=(250, 240, 200)),
        drawn(size=400, at=(200, 150)).crop((100, 100, 400, 400)).resize((300, 300)),
    ]
    for variant in variants:
        assert np.abs(zoo.preprocess_digit(variant) - reference).mean() < 0.05


def test_paths_arrays_and_transparency(tmp_path):
    image = drawn()
    path = tmp_path / "four.png"
    image.save(path)
    from_path = zoo.preprocess_digit(path)
    assert np.array_equal(from_path, zoo.preprocess_digit(str(path)))
    assert np.array_equal(from_path, zoo.preprocess_digit(np.asarray(image)))
    assert np.allclose(from_path, zoo.preprocess_digit(np.asarray(image) / 255.0), atol=1e-6)
    # a drawing on a transparent canvas, as a browser exports it: ink over nothing
    rgba = Image.new("RGBA", image.size, (0, 0, 0, 0))
    rgba.putalpha(Image.eval(image.convert("L"), lambda v: 255 - v))
    assert np.abs(zoo.preprocess_digit(rgba) - from_path).max() < 2 / 255


@pytest.mark.parametrize(
    "image, problem",
    [
        (np.zeros((50, 50)), "looks blank"),
        (np.full((30, 30, 3), 200, np.uint8), "looks blank"),
        (np.random.default_rng(0).random((40, 40)), "no clear foreground"),
        (
            np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8),
            "no clear foreground",
        ),
        (np.ones((5, 5, 2)), "must be"),
        (np.array([["a"]]), "must hold numbers"),
        (np.full((8, 8), -1.0), "must lie in"),
    ],
)
def test_images_without_a_digit_are_refused_with_a_reason(image, problem):
    with pytest.raises(zoo.ZooError, match=problem):
        zoo.preprocess_digit(image)


def test_a_missing_or_broken_file_is_one_clear_error(tmp_path):
    with pytest.raises(zoo.ZooError, match="not found"):
        zoo.preprocess_digit(tmp_path / "none.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(zoo.ZooError, match="cannot read image"):
        zoo.preprocess_digit(broken)


def test_the_steps_are_the_pictures_of_the_recipe():
    steps = digit_steps(drawn())
    assert steps["grey"].shape == (200, 200) and steps["grey"][0, 0] == pytest.approx(1.0)
    assert steps["ink"][0, 0] == 0.0 and steps["ink"].max() == 1.0
    assert max(steps["fitted"].shape) == BOX
    assert np.array_equal(steps["input"], zoo.preprocess_digit(drawn()))


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"needs the real MNIST test set in {MNIST}")
def test_mnist_digits_come_back_nearly_as_they_were():
    """MNIST's own digits were prepared by this recipe, so it should change them little."""
    with gzip.open(MNIST / "t10k-images-idx3-ubyte.gz") as handle:
        images = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:300]
    again = np.stack([zoo.preprocess_digit(image)[..., 0] for image in images])
    assert np.abs(again - images / 255.0).mean() < 0.08

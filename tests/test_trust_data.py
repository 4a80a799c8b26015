"""Data read as the user means it, or refused with one line (issue 28, items 13-16).

Pixel arrays are scaled by one stated rule (``zoo.data.arrays.PIXEL_RULE``),
labels must be the classes 0..K-1, ``--limit`` samples every class by seed,
image folders skip what the user does not see and show images as a viewer
does, and damaged files are one line naming the file, never a traceback.
"""

import gzip
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_bad_inputs import write_npz  # 20 train, 6 test 8x8 images in [0, 1], two classes

from zoo import cli, data
from zoo.data import images as image_module

rng = np.random.default_rng(0)


def refusal(capsys, argv):
    """Run zoo-train in-process on ``argv``; the one error line it printed (exit 2 asserted)."""
    assert cli.zoo_train([*argv, "--quiet", "--epochs", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("zoo-train: error: "), lines
    assert "Traceback" not in errors[0]
    return errors[0]


# --------------------------------------------------------------------------- 13: pixels, labels


def test_pixels_are_scaled_by_dtype_and_range(tmp_path):
    """uint16 by 65535 (was 255: values up to 257); 8-bit floats by 255; RGBA over white."""
    wide = np.linspace(0, 65535, 20 * 64).astype("uint16").reshape(20, 8, 8)
    loaded = data.load_dataset(write_npz(tmp_path / "wide.npz", x_train=wide))
    assert loaded.train.images.max() == 1.0
    np.testing.assert_allclose(loaded.train.images[..., 0], wide / 65535.0, rtol=1e-6)

    levels = rng.integers(0, 256, (6, 8, 8, 1)).astype("float64")
    loaded = data.load_dataset(write_npz(tmp_path / "levels.npz", x_test=levels))
    np.testing.assert_allclose(loaded.test.images, levels / 255.0, rtol=1e-6)

    clear = np.zeros((20, 8, 8, 4), "uint8")  # black, fully transparent
    loaded = data.load_dataset(
        write_npz(tmp_path / "rgba.npz", x_train=clear, x_test=np.zeros((6, 8, 8, 4), "uint8"))
    )
    assert loaded.train.images.shape[1:] == (8, 8, 3) and loaded.train.images.min() == 1.0


PIXEL_REFUSALS = {
    "standardised floats": (
        rng.standard_normal((20, 8, 8, 1)).astype("float32"),
        "outside [0, 1]",
    ),
    "8-bit values in uint16": (
        rng.integers(0, 256, (20, 8, 8)).astype("uint16"),
        "look like 8-bit images stored as 16-bit",
    ),
    "int32 above 255": (np.full((20, 8, 8), 1000, "int32"), "outside 0..255"),
    "NaN pixels": (
        np.where(np.arange(20 * 64).reshape(20, 8, 8, 1) % 50 == 7, np.nan, 0.5),
        "26 pixel value(s) are NaN or infinite",
    ),
}


@pytest.mark.parametrize("case", sorted(PIXEL_REFUSALS))
def test_pixels_outside_the_rule_are_refused_not_clipped(case, tmp_path):
    images, words = PIXEL_REFUSALS[case]
    path = write_npz(tmp_path / "x.npz", x_train=images)
    with pytest.raises(data.DataError, match="x.npz: x_train/y_train images") as refused:
        data.load_dataset(path)
    assert words in str(refused.value) and "\n" not in str(refused.value)


LABEL_REFUSALS = {
    "one stray 255": (
        {"y_train": np.where(np.arange(20) == 13, 255, np.arange(20) % 2)},
        "y_train: label 255 at index 13 leaves a gap: label(s) 2..254 never appear",
    ),
    "a missing class": (
        {"y_train": np.arange(20) % 3 * np.array([1, 1, 2])[np.arange(20) % 3]},  # 0, 1, 4
        "label 4 at index 2 leaves a gap: label(s) 2..3 never appear",
    ),
    "labels from 1": (
        {"y_train": np.arange(20) % 2 + 1, "y_test": np.arange(6) % 2 + 1},
        "label 1 at index 0 leaves a gap: label(s) 0 never appear",
    ),
    "negative label": (
        {"y_test": np.array([0, 1, 0, -1, 0, 1])},
        "y_test: label -1 at index 3 is negative",
    ),
    "past the class names": (
        {"y_test": np.array([0, 1, 0, 2, 0, 1]), "class_names": np.array(["a", "b"])},
        "y_test: label 2 at index 3 is past the 2 class_names",
    ),
    "a class name never used": (
        {"class_names": np.array(["a", "b", "c"])},
        "label(s) 2 ('c') never appear",
    ),
}


@pytest.mark.parametrize("case", sorted(LABEL_REFUSALS))
def test_labels_must_be_the_classes_0_to_k_minus_1(case, tmp_path):
    arrays, words = LABEL_REFUSALS[case]
    path = write_npz(tmp_path / "labels.npz", **arrays)
    with pytest.raises(data.DataError) as refused:
        data.load_dataset(path)
    assert path in str(refused.value) and words in str(refused.value)


def test_contiguous_labels_give_one_class_each(tmp_path):
    """A rare top class is a class, not a stray: 0..2 with one example of 2 makes 3 classes."""
    assert data.labels.check_class_labels({"y": np.array([2, 0, 1, 1])}) == 3
    labels = np.where(np.arange(20) == 5, 2, np.arange(20) % 2)
    loaded = data.load_dataset(write_npz(tmp_path / "rare.npz", y_train=labels))
    assert loaded.class_names == ["0", "1", "2"]
    with pytest.raises(data.DataError, match="needs at least 2"):  # unchanged: 2 classes minimum
        data.load_dataset(write_npz(tmp_path / "one.npz", y_train=np.zeros(20, int)))


# --------------------------------------------------------------------------- 14: --limit


def image_folder(root, classes=("ant", "bee", "cat"), per_class=6, size=(8, 8), mode="L"):
    """Class folders of small PNGs, each image a different grey level."""
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            value = 20 * label + i
            Image.new(mode, size, value if mode == "L" else (value,) * 3).save(
                root / name / f"{i}.png"
            )
    return root


def test_limit_samples_every_class_by_seed(tmp_path):
    """The file list is class by class; --limit took the first N files, all one class."""
    root = str(image_folder(tmp_path / "zoo3", per_class=10))
    full = data.load_dataset(root)
    first = data.load_dataset(root, limit=6, seed=0)
    again = data.load_dataset(root, limit=6, seed=0)
    other = data.load_dataset(root, limit=6, seed=1)
    assert len(first.train) == 6 and np.bincount(first.train.labels).tolist() == [2, 2, 2]
    assert first.train.images == again.train.images  # the same seed, the same files
    assert first.train.images != other.train.images
    assert set(first.train.images) <= set(full.train.images)
    assert data.load_dataset(root, limit=2, seed=0).train.labels.tolist() != [0, 0]

    arrays = data.load_dataset("digits", limit=30, seed=5)  # in-memory images too
    assert sorted(set(arrays.train.labels.tolist())) == list(range(10))


# --------------------------------------------------------------------------- 15: image folders


def test_hidden_files_and_folders_are_not_images(tmp_path):
    root = image_folder(tmp_path / "pets", classes=("a", "b"), per_class=5)
    (root / "a" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "a" / "._0.png").write_bytes(b"\0\5\26\7 AppleDouble resource fork")
    (root / "b" / ".ipynb_checkpoints").mkdir()
    Image.new("L", (8, 8)).save(root / "b" / ".ipynb_checkpoints" / "0-checkpoint.png")
    (root / ".cache").mkdir()
    Image.new("L", (8, 8)).save(root / ".cache" / "x.png")
    (root / "__MACOSX" / "a").mkdir(parents=True)
    (root / "__MACOSX" / "a" / "._1.png").write_bytes(b"\0\5\26\7")
    loaded = data.load_dataset(str(root))
    assert loaded.class_names == ["a", "b"] and len(loaded.train) + len(loaded.test) == 10
    assert not any("/." in path for path in loaded.train.images + loaded.test.images)


def test_transparent_pixels_are_white_and_exif_orientation_is_applied(tmp_path):
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(clear)  # black under full transparency
    assert data.load_image_file(str(clear), (8, 8, 1)).min() == 1.0
    palette = tmp_path / "palette.gif"
    gif = Image.new("P", (8, 8), 0)
    gif.putpalette([0, 0, 0] * 256)
    gif.save(palette, transparency=0)
    assert data.load_image_file(str(palette), (8, 8, 3)).min() == 1.0

    pixels = np.arange(8 * 16, dtype="uint8").reshape(8, 16) * 2  # 8 high, 16 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: turn 90 degrees clockwise to show
    sideways = tmp_path / "sideways.png"
    Image.fromarray(pixels).save(sideways, exif=exif)
    shown = data.load_image_file(str(sideways), (16, 8, 1))[..., 0]
    np.testing.assert_allclose(shown * 255, np.rot90(pixels, k=-1), atol=1e-3)


def test_classes_in_one_split_and_empty_class_folders_are_reported(tmp_path, capsys):
    root = tmp_path / "split"
    image_folder(root / "train", classes=("a", "b", "c"), per_class=4)
    image_folder(root / "test", classes=("a", "b", "d"), per_class=2)
    with pytest.raises(data.DataError, match="test has classes with no training images: d"):
        data.load_dataset(str(root))

    (root / "test" / "d" / "0.png").rename(root / "test" / "d" / "0.txt")
    (root / "test" / "d" / "1.png").unlink()  # d: an empty folder now, left out with a warning
    loaded = data.load_dataset(str(root))
    warned = capsys.readouterr().err
    assert "leaving out 1 class folder(s)" in warned and ": d" in warned
    assert "1 class(es) have no test images" in warned and ": c" in warned
    assert loaded.class_names == ["a", "b", "c"] and len(loaded.test) == 4

    flat = image_folder(tmp_path / "flat", classes=("a", "b"), per_class=5)
    (flat / "empty").mkdir()
    assert data.load_dataset(str(flat)).class_names == ["a", "b"]
    assert "class folder(s) of" in capsys.readouterr().err


def test_train_without_test_is_refused(tmp_path):
    image_folder(tmp_path / "data" / "train", classes=("a", "b"))
    with pytest.raises(data.DataError, match="has a train/ folder but no test/"):
        data.load_dataset(str(tmp_path / "data"))


def truncated_jpeg(path):
    buffer = io.BytesIO()
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype("uint8")).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: int(len(buffer.getvalue()) * 0.7)])


def test_a_truncated_jpeg_is_caught_before_training_and_can_be_skipped(tmp_path, capsys):
    """Pillow's verify() passes a truncated JPEG; decoding it fails, after training."""
    root = image_folder(tmp_path / "pets", classes=("a", "b"), per_class=5)
    truncated_jpeg(root / "b" / "cut.jpg")
    assert data.scan_images([str(root / "b" / "cut.jpg")])  # named as unreadable
    with pytest.raises(data.DataError, match="1 image file.* cannot be read: .*cut.jpg"):
        data.load_dataset(str(root))
    kept = data.load_dataset(str(root), skip_bad_images=True)
    assert len(kept.train) + len(kept.test) == 10
    assert "leaving out 1 unreadable image file(s)" in capsys.readouterr().err


# --------------------------------------------------------------------------- 16: one line


def write_idx(path, array, header=None):
    header = header or bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    body = header + array.astype(np.uint8).tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as handle:
            handle.write(body)
    else:
        path.write_bytes(body)


def idx_folder(root, prefix="train", count=30):
    root.mkdir(exist_ok=True)
    write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 6, 6)))
    write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(count) % 3)
    return root


def npz_bytes(tmp_path, cut):
    path = tmp_path / "data.npz"
    write_npz(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: int(len(whole) * cut)])
    return str(path)


def truncated_gz(tmp_path):
    root = idx_folder(tmp_path / "idx")
    gz = root / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-40])
    return str(root)


def bad_header(tmp_path):
    root = idx_folder(tmp_path / "idx")
    write_idx(root / "train-labels-idx1-ubyte.gz", np.arange(30) % 3, header=b"\0\0\x08\x09\0\0")
    return str(root)


def lonely_test_images(tmp_path):
    root = idx_folder(tmp_path / "idx")
    write_idx(root / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 6, 6)))
    return str(root)


ONE_LINE_CASES = {
    "empty npz": (lambda t: npz_bytes(t, 0.0), "is empty (0 bytes)"),
    "truncated npz": (lambda t: npz_bytes(t, 0.6), "the file is truncated or damaged"),
    "0-d arrays": (
        lambda t: write_npz(t / "d.npz", x_train=np.float32(0.5), y_train=np.int64(1)),
        "images have shape (), not an array of images",
    ),
    "5-D images": (
        lambda t: write_npz(t / "d.npz", x_train=np.zeros((20, 2, 8, 8, 1), "float32")),
        "5 dimensions, where images are (N, H, W) or (N, H, W, C)",
    ),
    "flattened images": (
        lambda t: write_npz(t / "d.npz", x_train=np.zeros((20, 64), "float32")),
        "looks flattened: reshape it to (N, H, W[, C]) before saving, e.g. x.reshape(20, 8, 8, 1)",
    ),
    "object arrays": (
        lambda t: write_npz(t / "d.npz", class_names=np.array(["a", None], dtype=object)),
        "holds object arrays",
    ),
    "NaN pixel": (
        lambda t: write_npz(t / "d.npz", x_test=np.full((6, 8, 8, 1), np.nan, "float32")),
        "384 pixel value(s) are NaN or infinite",
    ),
    "IDX truncated gz": (truncated_gz, "train-images-idx3-ubyte.gz: Compressed file ended"),
    "IDX bad header": (bad_header, "train-labels-idx1-ubyte.gz has a bad IDX header"),
    "IDX images without labels": (lonely_test_images, "has no matching test labels file"),
}


@pytest.mark.parametrize("case", sorted(ONE_LINE_CASES))
def test_damaged_data_is_one_line_naming_the_file(case, tmp_path, capsys):
    make, words = ONE_LINE_CASES[case]
    source = make(tmp_path)
    line = refusal(capsys, ["--dataset", source, "--output", str(tmp_path / "out")])
    assert words in line and os.path.basename(source) in line


def test_an_idx_training_set_alone_is_split_80_20(tmp_path):
    loaded = data.load_dataset(str(idx_folder(tmp_path / "idx", count=30)))
    assert loaded.size == {"train": 24, "test": 6}
    assert loaded.class_names == ["0", "1", "2"]


def test_data_too_large_for_memory_is_refused(tmp_path, monkeypatch, capsys):
    """Arrays are prepared whole when they fit, else batch by batch; a batch must fit."""
    monkeypatch.setattr(image_module, "available_memory", lambda: 8 << 20)  # 8 MiB free
    images = np.zeros((40, 8, 8, 1), "float32")
    x, y = data.make_inputs(images, np.zeros(40, int), (8, 8, 1), 8)
    assert isinstance(x, np.ndarray)  # small: prepared in memory
    x, y = data.make_inputs(images, np.zeros(40, int), (512, 512, 1), 2)
    assert y is None  # 40 MiB prepared: batch by batch instead
    with pytest.raises(data.DataError, match="one batch of 32 images at 512x512x1") as refused:
        data.make_inputs(images, np.zeros(40, int), (512, 512, 1), 32)
    assert "would need 32 MiB, more than half of the 8 MiB of memory available" in str(
        refused.value
    )

    big = write_npz(tmp_path / "big.npz", x_train=np.zeros((20, 300, 300), "uint8"))
    with pytest.raises(data.DataError, match="big.npz: the x_train/y_train images as float32"):
        data.load_dataset(big)

    argv = ["--dataset", "digits", "--image-size", "512", "512", "--limit", "60"]
    line = refusal(capsys, [*argv, "--output", str(tmp_path / "out")])
    # the model at that size is checked first (zoo.training.compile.check_training_memory)
    assert "at 512x512 with batch 32 would need" in line and "--batch-size" in line


@pytest.mark.parametrize(
    "arrays, words",
    [
        ({"y_train": np.where(np.arange(20) == 7, 255, np.arange(20) % 2)}, "label 255 at index 7"),
        ({"x_train": np.full((20, 8, 8, 1), np.inf, "float32")}, "NaN or infinite"),
    ],
    ids=["stray label", "infinite pixels"],
)
def test_zoo_train_command_line(arrays, words, tmp_path):
    """``python -m zoo train``: exit 2, one line on stderr naming the file, no traceback."""
    path = write_npz(tmp_path / "mine.npz", **arrays)
    command = [sys.executable, "-m", "zoo", "train", "--dataset", path, "--epochs", "1", "--quiet"]
    result = subprocess.run(
        [*command, "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("zoo-train")]
    assert len(lines) == 1 and words in lines[0] and "mine.npz" in lines[0]
    assert "Traceback" not in result.stderr

"""zoo.data: every kind of source, read without downloads and without TensorFlow."""

import gzip
import os
import pickle

import numpy as np
import pytest
from conftest import MNIST_DIR, needs_shared_mnist
from PIL import Image

from zoo import data


def test_digits_fixed_stratified_split():
    first, second = data.load_dataset("digits"), data.load_dataset("digits")
    assert len(first.train) + len(first.test) == 1797
    np.testing.assert_array_equal(first.test.labels, second.test.labels)
    counts = np.bincount(first.test.labels)
    assert counts.min() >= 34 and counts.max() <= 38  # about 20 % of each class (~180)
    assert first.train.images.shape[1:] == (8, 8, 1)
    assert 0.0 <= first.train.images.min() and first.train.images.max() == 1.0


def test_limit_keeps_a_seeded_sample_of_the_training_images():
    limited = data.load_dataset("digits", limit=100)
    full = data.load_dataset("digits")
    assert len(limited.train) == 100
    chosen = data.dataset.limited_indices(full.train.labels, 100, seed=0)
    np.testing.assert_array_equal(limited.train.images, full.train.images[chosen])
    assert len(limited.test) == len(full.test)


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_idx_folder_with_a_test_set_alone_is_split_80_20(tmp_path):
    images = np.arange(10 * 4 * 4).reshape(10, 4, 4) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(10) % 3)
    loaded = data.load_dataset(str(tmp_path))
    assert loaded.size == {"train": 8, "test": 2}
    np.testing.assert_allclose(loaded.test.images[..., 0] * 255, images[8:], atol=1e-4)
    np.testing.assert_array_equal(loaded.train.labels, np.arange(8) % 3)


@needs_shared_mnist
def test_real_mnist_t10k_split():
    mnist = data.load_dataset(MNIST_DIR)
    assert mnist.size == {"train": 8000, "test": 2000}
    assert mnist.train.images.shape[1:] == (28, 28, 1)
    assert sorted(set(mnist.test.labels.tolist())) == list(range(10))


def test_idx_reader_rejects_bad_files(tmp_path):
    bad = tmp_path / "x-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(data.DataError, match="bad magic number"):
        data.read_idx(bad)


def test_npz_dataset_with_class_names(tmp_path):
    path = tmp_path / "set.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (6, 5, 5, 3), dtype=np.uint8),
        y_train=np.array([0, 1, 2, 0, 1, 2]),
        x_test=rng.integers(0, 256, (3, 5, 5, 3), dtype=np.uint8),
        y_test=np.array([0, 1, 2]),
        class_names=np.array(["a", "b", "c"]),
    )
    loaded = data.load_dataset(str(path))
    assert loaded.class_names == ["a", "b", "c"]
    assert loaded.train.images.dtype == np.float32 and loaded.train.images.max() <= 1.0


def test_npz_missing_arrays_is_named(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((2, 4, 4)))
    with pytest.raises(data.DataError, match="lacks x_test, y_test, y_train"):
        data.load_dataset(str(path))


def _image_folder(root, classes=("jerry", "tom"), per_class=5, size=(10, 12)):
    for label, name in enumerate(classes):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((*size, 3), 40 * label + i, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_image_folder_loads_batches_with_pillow(tmp_path):
    root = _image_folder(tmp_path / "pets")
    loaded = data.load_dataset(str(root))
    assert loaded.train.streaming and loaded.input_shape is None
    assert loaded.class_names == ["jerry", "tom"]
    assert loaded.size == {"train": 8, "test": 2}
    batches, labels = data.make_inputs(*loaded.train, (16, 16, 1), 3)
    assert labels is None and len(batches) == 3
    images, batch_labels = batches[0]
    assert images.shape == (3, 16, 16, 1) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1


def test_image_folder_with_train_and_test(tmp_path):
    _image_folder(tmp_path / "train", per_class=4)
    _image_folder(tmp_path / "test", per_class=2)
    loaded = data.load_dataset(str(tmp_path))
    assert loaded.size == {"train": 8, "test": 4}


def test_folder_without_images_and_corrupt_image_are_named(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(data.DataError, match="no images found"):
        data.load_dataset(str(tmp_path / "empty"))
    root = _image_folder(tmp_path / "pets")
    broken = root / "tom" / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(data.DataError, match="broken.png"):
        data.load_image_file(str(broken), (8, 8, 3))


def test_unknown_dataset_is_named():
    with pytest.raises(data.DataError, match="unknown dataset 'imagenet'"):
        data.load_dataset("imagenet")


def test_keras_cache_is_read_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cache = tmp_path / "datasets"
    cache.mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        cache / "mnist.npz",
        x_train=rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        y_train=np.arange(7) % 10,
        x_test=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        y_test=np.arange(3),
    )
    mnist = data.load_dataset("mnist")
    assert mnist.size == {"train": 7, "test": 3}
    assert mnist.train.images.shape == (7, 28, 28, 1)

    cifar = cache / "cifar-10-batches-py-target"
    cifar.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 9]}
        with open(cifar / name, "wb") as handle:
            pickle.dump(batch, handle)
    loaded = data.load_dataset("cifar10")
    assert loaded.size == {"train": 10, "test": 2}
    assert loaded.train.images.shape == (10, 32, 32, 3)
    assert loaded.class_names[9] == "truck"


def test_missing_keras_cache_offline_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    import keras

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", no_network)
    with pytest.raises(data.DataError) as error:
        data.load_dataset("fashion_mnist")
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "datasets") in message


def test_channel_conversion_and_resize():
    gray = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    rgb = data.convert_channels(gray, 3)
    assert rgb.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(data.convert_channels(rgb, 1), gray, atol=1e-5)
    resized = data.resize_images(gray, (28, 20))
    assert resized.shape == (2, 28, 20, 1)
    flat = np.full((1, 8, 8, 1), 0.25, dtype=np.float32)
    np.testing.assert_allclose(data.resize_images(flat, (16, 16)), 0.25, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_png_keeps_its_grey_levels(tmp_path, channels):
    """A 16-bit PNG holds 0..65535; it must come out as value / 65535, not clipped to 0 or 1."""
    from PIL import Image

    levels = np.linspace(0, 65535, 64).astype("uint16").reshape(8, 8)
    path = tmp_path / "deep.png"
    Image.fromarray(levels).save(path)  # uint16 gives a 16-bit grey PNG
    with Image.open(path) as reread:
        assert reread.mode.startswith("I")  # Pillow keeps the 16 bits
    loaded = data.load_image_file(str(path), (8, 8, channels))
    assert loaded.shape == (8, 8, channels)
    np.testing.assert_allclose(loaded[..., 0], levels / 65535.0, atol=1e-6)
    assert len(np.unique(loaded.round(3))) > 50  # not binarised

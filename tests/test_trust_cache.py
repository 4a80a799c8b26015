"""Keras's dataset cache is read as data, never as code, and a bad file is one line.

Issue 28, items 1 and 16: a CIFAR-10 batch whose pickle carries a payload is
refused before anything in it runs; damaged, empty or object-array cache files
name themselves and the fix; ``mnist`` with a ``./mnist`` folder here is
refused instead of silently meaning the built-in set. Every test points
``KERAS_HOME`` at a temporary folder, so nothing is downloaded.
"""

import gzip
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from zoo import data
from zoo.data.builtin import CIFAR10_BATCHES, CIFAR10_FOLDERS


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty Keras cache (``KERAS_HOME/datasets``); Keras's loaders must not be called."""
    import keras

    def no_download(*args, **kwargs):
        raise AssertionError("Keras's own loader was called")

    for name in ("mnist", "fashion_mnist", "cifar10"):
        monkeypatch.setattr(getattr(keras.datasets, name), "load_data", no_download)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    folder = tmp_path / "keras" / "datasets"
    folder.mkdir(parents=True)
    return folder


def cifar_batch(count, seed):
    """A CIFAR-10 batch as the real files hold it: bytes keys, a uint8 array, a list of ints."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"training batch",
        b"labels": [int(label) for label in rng.integers(0, 10, count)],
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        b"filenames": [f"image_{i}.png".encode() for i in range(count)],
    }


def write_cifar(cache, folder, pickles):
    """Write ``{batch name: pickle bytes}`` (the rest good) into ``cache/folder``."""
    target = cache / folder
    target.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(CIFAR10_BATCHES):
        good = pickle.dumps(cifar_batch(3, seed), protocol=2)
        (target / name).write_bytes(pickles.get(name, good))
    return target


class RunsCommand:
    """A pickle payload: unpickling it calls ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class RunsPython:
    """A pickle payload: unpickling it calls ``exec(code)``."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def hostile_pickles(marker):
    """Batches whose unpickling would create ``marker``, in two places of the file."""
    at_top = RunsCommand(f"touch {marker}")
    inside = {**cifar_batch(3, 0), b"labels": RunsPython(f"open({str(marker)!r}, 'w').close()")}
    return {"os.system": pickle.dumps(at_top), "exec in labels": pickle.dumps(inside, protocol=2)}


def one_line(error):
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


@pytest.mark.parametrize("payload", ["os.system", "exec in labels"])
@pytest.mark.parametrize("folder", [CIFAR10_FOLDERS[0], CIFAR10_FOLDERS[2]])
def test_a_cifar_batch_carrying_code_is_refused_and_never_run(cache, tmp_path, folder, payload):
    marker = tmp_path / "marker"
    write_cifar(cache, folder, {"data_batch_3": hostile_pickles(marker)[payload]})
    with pytest.raises(data.DataError) as error:
        data.load_dataset("cifar10")
    assert not marker.exists(), "the pickle's payload ran"
    message = one_line(error)
    assert str(cache / folder / "data_batch_3") in message
    assert "is not a CIFAR-10 batch" in message and "nothing in it was executed" in message


def numpy1_names(pickled):
    """A protocol-2 pickle as NumPy 1 writes it (``numpy.core``, not ``numpy._core``)."""
    assert b"cnumpy._core.multiarray\n_reconstruct\n" in pickled
    return pickled.replace(b"cnumpy._core.multiarray", b"cnumpy.core.multiarray")


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5, "numpy 1"])
@pytest.mark.parametrize("folder", CIFAR10_FOLDERS)
def test_a_well_formed_cifar_cache_still_loads(cache, folder, protocol):
    def dump(batch):
        if protocol == "numpy 1":
            return numpy1_names(pickle.dumps(batch, protocol=2))
        return pickle.dumps(batch, protocol=protocol)

    batches = [cifar_batch(3, seed) for seed in range(len(CIFAR10_BATCHES))]
    write_cifar(cache, folder, {n: dump(b) for n, b in zip(CIFAR10_BATCHES, batches, strict=True)})
    loaded = data.load_dataset("cifar10")
    assert loaded.train.images.shape == (15, 32, 32, 3) and loaded.test.images.shape == (
        3,
        32,
        32,
        3,
    )
    first = batches[0][b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_allclose(loaded.train.images[0], first / 255.0, atol=1e-6)
    assert list(loaded.test.labels) == batches[-1][b"labels"]


def test_an_incomplete_cifar_folder_is_not_handed_to_keras(cache):
    """Older Keras loaders unpickle what they find with no restriction: the zoo never asks them."""
    folder = write_cifar(cache, CIFAR10_FOLDERS[1], {})
    (folder / "test_batch").unlink()
    with pytest.raises(data.DataError) as error:
        data.load_dataset("cifar10")
    message = one_line(error)
    assert str(folder) in message and "lacks test_batch" in message and "Delete" in message


def good_mnist(path, **changes):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
        "y_train": np.arange(8) % 10,
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": np.arange(4),
    }
    np.savez(path, **{**arrays, **changes})  # np.savez pickles object arrays into the file


def truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


MNIST_DAMAGE = {
    "empty": lambda path: path.write_bytes(b""),
    "truncated": truncated,
    "object array": lambda path: good_mnist(path, x_train=np.array([[1], [2, 3]], dtype=object)),
    "not a zip": lambda path: path.write_bytes(b"<html>proxy login</html>"),
    "no y_test": lambda path: np.savez(path, x_train=np.zeros((2, 28, 28)), y_train=[0, 1]),
    "5-D images": lambda path: good_mnist(path, x_test=np.zeros((4, 1, 28, 28, 1), np.uint8)),
    "fewer labels": lambda path: good_mnist(path, y_train=np.arange(5)),
    "float labels": lambda path: good_mnist(path, y_test=np.arange(4) + 0.5),
}


@pytest.mark.parametrize("damage", MNIST_DAMAGE)
def test_a_damaged_mnist_npz_is_one_line_naming_it_and_the_fix(cache, damage):
    path = cache / "mnist.npz"
    good_mnist(path)
    MNIST_DAMAGE[damage](path)
    with pytest.raises(data.DataError) as error:
        data.load_dataset("mnist")
    message = one_line(error)
    assert str(path) in message
    assert "Delete it so Keras downloads it again, or put a good copy there" in message


def idx_bytes(array):
    """``array`` (uint8) as an MNIST IDX file."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("damage", ["empty", "truncated gzip", "not gzip"])
def test_a_damaged_fashion_mnist_file_is_one_line(cache, damage):
    folder = cache / "fashion-mnist"
    folder.mkdir()
    for split, count in (("train", 6), ("t10k", 4)):
        images = np.zeros((count, 28, 28), np.uint8)
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        labels = np.arange(count, dtype=np.uint8)
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    assert data.load_dataset("fashion_mnist").train.images.shape == (6, 28, 28, 1)
    path = folder / "train-images-idx3-ubyte.gz"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated gzip":
        truncated(path)
    else:
        path.write_bytes(idx_bytes(np.zeros((6, 28, 28), np.uint8)))
    with pytest.raises(data.DataError) as error:
        data.load_dataset("fashion_mnist")
    message = one_line(error)
    assert str(path) in message and "Delete it so Keras downloads it again" in message


@pytest.mark.parametrize("name", ["test_batch", "data_batch_1"])
def test_an_empty_or_truncated_cifar_batch_is_one_line(cache, name):
    good = pickle.dumps(cifar_batch(3, 0), protocol=2)
    folder = write_cifar(cache, CIFAR10_FOLDERS[0], {"test_batch": b"", "data_batch_1": good[:99]})
    with pytest.raises(data.DataError) as error:
        data.load_dataset("cifar10")
    message = one_line(error)
    assert str(folder / "data_batch_1") in message and "Delete it" in message


NATIVE_LOG = re.compile(r"WARNING: All log messages before absl|[IWEF]\d{4} ")  # TensorFlow's C++


def test_zoo_train_on_a_hostile_cifar_cache_exits_2_with_one_line(cache, tmp_path):
    marker = tmp_path / "marker"
    write_cifar(cache, CIFAR10_FOLDERS[0], {"data_batch_1": hostile_pickles(marker)["os.system"]})
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "train", "--dataset", "cifar10", "--epochs", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_HOME": os.environ["KERAS_HOME"]},
        cwd=tmp_path,
        timeout=300,
    )
    assert not marker.exists(), "the pickle's payload ran"
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if not NATIVE_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith("zoo-train: error: "), result.stderr
    assert "is not a CIFAR-10 batch" in lines[0] and "Traceback" not in result.stderr


def test_a_local_folder_named_like_a_built_in_dataset_is_not_silently_ignored(
    cache, tmp_path, monkeypatch
):
    good_mnist(cache / "mnist.npz")
    assert data.load_dataset("mnist").train.images.shape == (8, 28, 28, 1)
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "mnist"
    local.mkdir()
    (local / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((10, 28, 28), np.uint8)))
    (local / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(10, dtype=np.uint8) % 2))
    with pytest.raises(data.DataError) as error:
        data.load_dataset("mnist")
    message = one_line(error)
    assert "--dataset ./mnist" in message and str(local) in message
    assert data.load_dataset("./mnist").size == {"train": 8, "test": 2}

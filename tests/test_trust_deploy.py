"""Issue 28 for zoo-predict, zoo-export and zoo-convert: hostile files, killed runs, bad images.

Each test here failed before its fix: a hostile ``.pth`` refused with torch's hint to load it
unsafely; a killed export's aside folder and temporaries left forever; zoo-predict all-or-nothing,
in one batch, blind to folders, with a traceback for a decompression bomb; a full disk blamed on
the backend; ``zoo-convert --overwrite`` onto a folder.
"""

import os
import shlex
import subprocess
import sys

import keras
import pytest
from conftest import needs

import zoo
from zoo import _io, convert, weights
from zoo import export as exporting
from zoo.errors import ZooError

BACKEND = keras.backend.backend()
needs_onnx_export = needs(exporting.EXPORTER[("onnx", BACKEND)], "onnx", "onnxruntime")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """An untrained LeNet-5 saved as a ``.keras`` file (no classes.json beside it)."""
    path = tmp_path_factory.mktemp("model") / "model.keras"
    zoo.lenet().save(path)
    return str(path)


def hidden(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def dead_pid():
    """The id of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not _io.process_alive(process.pid)
    return process.pid


def one_line(error, prog):
    assert error.startswith(f"{prog}: error: ") and error.count("\n") == 1, error
    assert "Traceback" not in error
    return error


# --------------------------------------------------------------------------- item 2


class _Payload:
    """A pickle that runs a shell command when loaded: what a hostile ``.pth`` carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


@needs("torch")
def test_a_hostile_pth_is_refused_in_our_own_words(tmp_path, capsys):
    """torch's refusal suggests ``weights_only=False``, which would run the payload."""
    import torch

    marker = tmp_path / "marker"
    hostile = tmp_path / "alexnet.pth"
    torch.save({"features.0.weight": _Payload(str(marker))}, hostile)
    destination = tmp_path / "alexnet.weights.h5"

    assert convert.main([str(hostile), str(destination)]) == 2
    error = one_line(capsys.readouterr().err, "zoo-convert")
    assert "is not a plain state dict of tensors" in error
    assert "could run code" in error and "torch.save(model.state_dict()" in error
    assert "weights_only" not in error and "arbitrary code execution" not in error
    with pytest.raises(ZooError) as refused:  # the builders read .pth files the same way
        zoo.get_model("alexnet_torchvision", include_top=False, weights=str(hostile))
    assert "weights_only" not in str(refused.value)
    assert not marker.exists() and not destination.exists()


def test_weights_module_never_quotes_weights_only():
    """A torch error that mentions weights_only is never repeated, whatever its type."""
    error = RuntimeError("Re-running `torch.load` with `weights_only` set to `False` ...")
    assert weights._first_line(error) == ""

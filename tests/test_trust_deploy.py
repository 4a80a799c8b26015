"""Issue 28 for zoo-predict, zoo-export and zoo-convert: hostile files, killed runs, bad images.

Each test here failed before its fix: a hostile ``.pth`` refused with torch's hint to load it
unsafely; a killed export's aside folder and temporaries left forever; zoo-predict all-or-nothing,
in one batch, blind to folders, with a traceback for a decompression bomb; a full disk blamed on
the backend; ``zoo-convert --overwrite`` onto a folder.
"""

import errno
import os
import shlex
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

import keras
import numpy as np
import pytest
from conftest import needs
from PIL import Image

import zoo
from zoo import _io, cli
from zoo.deploy import export as exporting
from zoo.deploy import predict, safe_output
from zoo.errors import ZooError
from zoo.weights import convert, torchvision

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

    assert cli.zoo_convert([str(hostile), str(destination)]) == 2
    error = one_line(capsys.readouterr().err, "zoo-convert")
    assert "is not a plain state dict of tensors" in error
    assert "could run code" in error and "torch.save(model.state_dict()" in error
    assert "weights_only" not in error and "arbitrary code execution" not in error
    with pytest.raises(ZooError) as refused:  # the builders read .pth files the same way
        zoo.get_model("alexnet_torchvision", include_top=False, weights=str(hostile))
    assert "weights_only" not in str(refused.value)
    assert not marker.exists() and not destination.exists()


# --------------------------------------------------------------------------- item 9: export


def _stamped_export(model_path, output):
    assert cli.zoo_export([model_path, "--format", "onnx", "--output", str(output)]) == 0
    return output.read_bytes()


@needs_onnx_export
def test_export_restores_what_a_killed_export_moved_aside(model_path, tmp_path, capsys):
    """Killed between moving the old export aside and the new one in: the next run puts it back.

    The leftovers are made by hand as a kill leaves them, with the id of a process that ended;
    a live process's folders (this one's) are never touched.
    """
    output = tmp_path / "lenet5.onnx"
    first = _stamped_export(model_path, output)
    dead, alive = dead_pid(), os.getpid()
    aside = tmp_path / f".zoo-export.old.{dead}.k1ll3d"
    aside.mkdir()
    os.replace(output, aside / output.name)  # the old export, only in the hidden folder
    scratch = tmp_path / f".zoo-export.{dead}.n3w"
    scratch.mkdir()
    (scratch / output.name).write_bytes(b"half a new export")
    running = tmp_path / f".zoo-export.{alive}.l1ve"
    running.mkdir()
    capsys.readouterr()

    argv = [model_path, "--format", "onnx", "--output", str(output)]
    assert cli.zoo_export(argv) == 2  # restored first, so it exists: refused, not replaced
    error = capsys.readouterr().err
    assert f"note: restored {output}" in error and f"{output} already exists" in error
    assert output.read_bytes() == first
    assert hidden(tmp_path) == [running.name]


@needs_onnx_export
def test_export_removes_an_old_copy_once_the_new_export_is_in(model_path, tmp_path, capsys):
    """Killed after the new export went in: the aside copy goes, a user's file's copy stays."""
    output = tmp_path / "lenet5.onnx"
    first = _stamped_export(model_path, output)
    dead = dead_pid()
    superseded = tmp_path / f".zoo-export.old.{dead}.d0ne"
    superseded.mkdir()
    (superseded / output.name).write_bytes(first)  # the old one; the new one is at output
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"the user's own file took the place")
    only_copy = tmp_path / f".zoo-export.old.{dead}.k33p"
    only_copy.mkdir()
    (only_copy / mine.name).write_bytes(first)

    argv = [model_path, "--format", "onnx", "--output", str(tmp_path / "other.onnx")]
    assert cli.zoo_export(argv) == 0
    assert hidden(tmp_path) == [only_copy.name]  # never deleted: it is the only copy
    assert output.read_bytes() == first and mine.read_bytes().startswith(b"the user's")


# A zoo-export that stops still (prints "stopped", sleeps) at one moment of its work, so the
# test can SIGKILL it exactly there: after the old export went aside, or after the new one
# went in. os.replace is wrapped in the child process only.
_STOPPING_EXPORT = """
import os, sys, time
from zoo import cli
stage, output, real = sys.argv[1], os.path.abspath(sys.argv[-2]), os.replace
def replace(source, target):
    real(source, target)
    if os.path.abspath(source if stage == "aside" else target) == output:
        print("stopped", flush=True)
        time.sleep(600)
if stage != "writing":
    os.replace = replace
sys.exit(cli.zoo_export(sys.argv[2:]))
"""


def _start_export(stage, argv):
    command = [sys.executable, "-c", _STOPPING_EXPORT, stage, *argv]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(300, process.kill)  # never hang the suite
    watchdog.daemon = True
    watchdog.start()
    return process, watchdog


def _kill_while_writing(process, folder):
    """SIGKILL once the export's scratch folder holds something: mid-export."""
    prefix = f".zoo-export.{process.pid}."
    while process.poll() is None:
        scratches = [n for n in os.listdir(folder) if n.startswith(prefix)]
        if scratches and os.listdir(folder / scratches[0]):
            break
        time.sleep(0.01)


@needs_onnx_export
@pytest.mark.parametrize("stage", ["writing", "aside", "in"])
def test_sigkill_during_export_loses_nothing_and_the_next_run_cleans(
    model_path, tmp_path, capsys, stage
):
    output = tmp_path / "lenet5.onnx"
    first = _stamped_export(model_path, output)
    argv = [model_path, "--format", "onnx", "--output", str(output), "--overwrite"]
    process, watchdog = _start_export(stage, argv)
    if stage == "writing":
        _kill_while_writing(process, tmp_path)
    else:
        assert process.stdout.readline() == "stopped\n", process.communicate()
    process.send_signal(signal.SIGKILL)
    process.communicate()
    watchdog.cancel()
    assert process.returncode == -signal.SIGKILL
    assert hidden(tmp_path), "the kill should leave a hidden folder behind"
    if stage == "aside":
        assert not output.exists()  # the old export is only in the hidden folder now

    capsys.readouterr()
    assert cli.zoo_export([*argv[:-1]]) == 2  # without --overwrite: restores, then refuses
    assert hidden(tmp_path) == []
    assert safe_output.previous_export("onnx", str(output)) == {str(output)}
    if stage != "in":
        assert output.read_bytes() == first
    assert cli.zoo_export(argv) == 0 and hidden(tmp_path) == []


# --------------------------------------------------------------------------- item 9: convert


def test_convert_removes_temporaries_of_killed_conversions_only(tmp_path, capsys):
    dead, alive = dead_pid(), os.getpid()
    killed = tmp_path / f".alexnet.weights.h5.{dead}.tmp.weights.h5"
    running = tmp_path / f".alexnet.weights.h5.{alive}.tmp.weights.h5"
    users = tmp_path / ".notes.tmp.weights.h5"
    for path in (killed, running, users):
        path.write_bytes(b"weights")
    argv = [str(tmp_path / "missing.pth"), str(tmp_path / "alexnet.weights.h5")]
    assert cli.zoo_convert(argv) == 2  # the run itself fails; it has cleaned up first
    assert "does not exist" in one_line(capsys.readouterr().err, "zoo-convert")
    assert hidden(tmp_path) == sorted([users.name, running.name])


# --------------------------------------------------------------------------- item 16


@needs_onnx_export
@pytest.mark.parametrize("code", [errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)])
def test_export_on_a_full_disk_says_so(model_path, tmp_path, capsys, monkeypatch, code):
    """A full disk fails on every backend: the line must not send the user to another one."""

    def full(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"the first bytes")
        raise OSError(code, os.strerror(code), filepath)

    monkeypatch.setattr(keras.Model, "export", full)
    argv = [model_path, "--format", "onnx", "--output", str(tmp_path / "m.onnx")]
    assert cli.zoo_export(argv) == 2
    error = one_line(capsys.readouterr().err, "zoo-export")
    assert "the disk is full" in error and os.strerror(code) in error
    assert "KERAS_BACKEND" not in error and "backend" not in error
    assert os.listdir(tmp_path) == []


def test_convert_on_a_full_disk_says_so(tmp_path, monkeypatch):
    model = zoo.lenet()

    def full(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"the first bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(type(model), "save_weights", full)
    with pytest.raises(ZooError, match="the disk is full: cannot write"):
        convert.save_atomically(model, str(tmp_path / "lenet.weights.h5"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_convert_never_replaces_a_folder(tmp_path, capsys, overwrite):
    folder = tmp_path / "alexnet.weights.h5"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    source = tmp_path / "alexnet.pth"
    source.write_bytes(b"not read: the destination is refused first")
    argv = [str(source), str(folder)] + ["--overwrite"] * overwrite
    assert cli.zoo_convert(argv) == 2
    error = one_line(capsys.readouterr().err, "zoo-convert")
    assert f"{folder} is a folder" in error and "never replaces a folder" in error
    assert os.listdir(folder) == ["thesis.tex"]


# --------------------------------------------------------------------------- item 17: predict


def _png(path, value=0, size=(28, 28)):
    Image.fromarray(np.full(size, value, "uint8"), mode="L").save(path)
    return str(path)


def _bomb(path, side=20000):
    """A valid PNG header claiming side x side pixels, with almost no data behind it."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    return str(path)


def _predicted(out):
    return [line for line in out.splitlines() if not line.startswith(" ")]


def test_predict_reports_bad_files_and_goes_on(model_path, tmp_path, capsys):
    good = _png(tmp_path / "good.png", 200)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    missing = str(tmp_path / "missing.png")
    bomb = _bomb(tmp_path / "huge.png")
    argv = [model_path, str(broken), good, missing, bomb, "--top", "2", "--batch-size", "2"]
    assert cli.zoo_predict(argv) == 1
    captured = capsys.readouterr()
    assert _predicted(captured.out) == [good]
    assert len(captured.out.splitlines()) == 3  # the path and two classes
    errors = [line for line in captured.err.splitlines() if line.startswith("zoo-predict:")]
    assert len(errors) == 3, captured.err
    assert f"cannot read image {broken}" in errors[0]
    assert f"image not found: {missing}" in errors[1]
    assert f"cannot read image {bomb}" in errors[2] and "exceeds limit" in errors[2]


def test_predict_reads_folders_sorted_without_hidden_files(model_path, tmp_path, capsys):
    folder = tmp_path / "digits"
    (folder / "sub").mkdir(parents=True)
    (folder / ".cache").mkdir()
    names = ["b.png", "a.PNG", "sub/c.jpg", ".hidden.png", ".cache/d.png", "notes.txt"]
    for name in names:
        if name.endswith("txt"):
            (folder / name).write_text("not an image")
        else:
            Image.fromarray(np.zeros((8, 8), "uint8"), mode="L").save(
                folder / name, format="JPEG" if name.endswith("jpg") else "PNG"
            )
    assert cli.zoo_predict([model_path, str(folder)]) == 0
    expected = [str(folder / name) for name in ("a.PNG", "b.png", "sub/c.jpg")]
    assert _predicted(capsys.readouterr().out) == expected

    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.zoo_predict([model_path, str(empty)]) == 2  # nothing at all to predict
    error = capsys.readouterr().err
    assert "no image files (.png" in error and f"in folder {empty}" in error
    assert "nothing was predicted" in error
    assert cli.zoo_predict([model_path, str(empty), str(folder / "b.png")]) == 1


def test_predict_goes_batch_by_batch(model_path, tmp_path, monkeypatch, capsys):
    """Memory stays bounded: the model never sees more than --batch-size images at once."""
    paths = [_png(tmp_path / f"{i}.png", 40 * i) for i in range(5)]
    model = zoo.deploy.model_file.load_zoo_model(model_path)
    whole = predict.classify(model, paths, top=3)
    seen = []
    real = predict.keras_outputs

    def counting(model, images):
        seen.append(len(images))
        return real(model, images)

    monkeypatch.setattr(predict, "keras_outputs", counting)
    batched = predict.classify(model, paths, top=3, batch_size=2)
    assert seen == [2, 2, 1]
    for one, other in zip(whole, batched, strict=True):
        assert [i for i, _ in one] == [i for i, _ in other]
        np.testing.assert_allclose([p for _, p in one], [p for _, p in other], atol=1e-5)
    seen.clear()
    assert cli.zoo_predict([model_path, *paths]) == 0
    assert seen == [5] and len(_predicted(capsys.readouterr().out)) == 5
    assert cli.zoo_predict([model_path, *paths, "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err


def test_classify_still_raises_for_a_bad_file(model_path, tmp_path):
    model = zoo.deploy.model_file.load_zoo_model(model_path)
    with pytest.raises(zoo.deploy.model_file.DeployError, match="exceeds limit"):
        predict.classify(model, [_png(tmp_path / "ok.png"), _bomb(tmp_path / "huge.png")])


def test_weights_module_never_quotes_weights_only():
    """A torch error that mentions weights_only is never repeated, whatever its type."""
    error = RuntimeError("Re-running `torch.load` with `weights_only` set to `False` ...")
    assert torchvision._first_line(error) == ""

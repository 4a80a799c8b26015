"""Bad input, one row each: exit code 2, one line on stderr, no traceback, nothing changed.

Each row builds a situation in a fresh folder, runs the command in-process
(through the same wrapper the installed commands use), and checks that the
files the user had are byte for byte what they were.
"""

import hashlib
import json
import pathlib

import numpy as np
import pytest

from zoo import cli
from zoo.training import checkpoint
from zoo.training import run as train


def fingerprint(folder):
    """Every file under ``folder`` with its bytes' SHA-256."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(pathlib.Path(folder).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch LeNet run on 200 digits."""
    output = tmp_path_factory.mktemp("run")
    train.train(model="lenet5_modern", epochs=1, limit=200, output=str(output), quiet=True)
    return output


def write_npz(path, **arrays):
    rng = np.random.default_rng(0)
    base = {
        "x_train": rng.random((20, 8, 8, 1), dtype="float32"),
        "y_train": np.arange(20) % 2,
        "x_test": rng.random((6, 8, 8, 1), dtype="float32"),
        "y_test": np.arange(6) % 2,
    }
    np.savez(path, **{**base, **arrays})
    return str(path)


def npz_case(**arrays):
    def make(tmp_path, run):
        return ["--dataset", write_npz(tmp_path / "data.npz", **arrays), "--epochs", "1"]

    return make


def copy_run(tmp_path, run):
    """A copy of the finished run, so each row may damage its own."""
    import shutil

    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def resume_case(*flags):
    def make(tmp_path, run):
        return ["--output", str(copy_run(tmp_path, run)), "--resume", "--epochs", "2", *flags]

    return make


def damaged_state(tmp_path, run):
    target = copy_run(tmp_path, run)
    folder = checkpoint.read_state(str(target))[2]
    (pathlib.Path(folder) / "state.json").write_text("{ not json")
    return ["--output", str(target), "--resume", "--epochs", "2"]


def truncated_checkpoint(tmp_path, run):
    target = copy_run(tmp_path, run)
    model = pathlib.Path(checkpoint.read_state(str(target))[2]) / "model.keras"
    model.write_bytes(model.read_bytes()[:1000])
    return ["--output", str(target), "--resume", "--epochs", "2"]


def image_folder(root, broken=()):
    """Two classes of 8x8 PNGs (6 each), some of them replaced by broken files."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            pixels = (rng.random((8, 8)) * 255).astype("uint8")
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    for name in broken:
        (root / name).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return str(root)


def broken_images(tmp_path, run):
    folder = image_folder(tmp_path / "pets", broken=["a/3.png", "b/5.png"])
    return ["--dataset", folder, "--epochs", "1", "--image-size", "16", "16"]


def used_folder(tmp_path, run):
    return ["--output", str(copy_run(tmp_path, run)), "--epochs", "1"]


TRAIN_CASES = {
    "unknown model": (lambda t, r: ["--model", "resnet"], "Unknown model 'resnet'"),
    "bad flag value": (lambda t, r: ["--epochs", "0"], "--epochs must be at least 1"),
    "missing dataset": (lambda t, r: ["--dataset", str(t / "nowhere")], "unknown dataset"),
    "fractional label": (
        npz_case(y_train=np.where(np.arange(20) == 7, 1.5, np.arange(20) % 2)),
        "label at index 7 is 1.5",
    ),
    "NaN label": (
        npz_case(y_test=np.array([0, 1, np.nan, 1, 0, 1])),
        "label at index 2 is nan",
    ),
    "string labels": (
        npz_case(y_train=np.array(["cat", "dog"] * 10)),
        "label at index 0 is 'cat'",
    ),
    "counts differ": (npz_case(y_train=np.arange(18) % 2), "20 images but 18 labels"),
    "one class": (npz_case(y_train=np.zeros(20, int)), "a classifier needs at least 2"),
    "channels first": (
        npz_case(x_train=np.zeros((20, 1, 8, 8), "float32")),
        "looks channels-first",
    ),
    "fresh run into a used folder": (used_folder, "already holds a run"),
    "broken image files": (broken_images, "2 image file(s) cannot be read"),
    "resume with another model": (resume_case("--model", "lenet5"), "--model lenet5_modern, not"),
    "resume with another dataset": (resume_case("--dataset", "mnist"), "--dataset digits, not"),
    "resume with another size": (resume_case("--image-size", "32", "32"), "not 32x32"),
    "resume with other classes": (resume_case("--classes", "3"), "has 10 classes, not 3"),
    "damaged checkpoint state": (damaged_state, "missing or damaged"),
    "truncated checkpoint model": (truncated_checkpoint, "cannot be loaded"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_zoo_train_refuses_with_one_line(case, tmp_path, finished_run, capsys):
    make, words = TRAIN_CASES[case]
    argv = make(tmp_path, finished_run)
    if "--output" not in argv:
        argv += ["--output", str(tmp_path / "out")]
    before = fingerprint(tmp_path)
    limit = [] if "--resume" in argv else ["--limit", "60"]  # a resumed run keeps its own
    assert cli.zoo_train([*argv, "--quiet", *limit]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in error if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("zoo-train: error: "), error
    assert words in errors[0] and "Traceback" not in errors[0]
    after = fingerprint(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of theirs changed


def test_overwrite_replaces_only_the_earlier_run(tmp_path, finished_run, capsys):
    target = copy_run(tmp_path, finished_run)
    (target / "notes.txt").write_text("mine")
    argv = ["--output", str(target), "--epochs", "1", "--limit", "60", "--quiet", "--overwrite"]
    assert cli.zoo_train(argv) == 0
    assert (target / "notes.txt").read_text() == "mine"
    assert json.loads((target / "metrics.json").read_text())["train_images"] == 54
    assert sorted(p.name for p in (target / "checkpoint").iterdir()) == ["epoch-0001"]


def test_resume_takes_the_model_and_dataset_from_the_checkpoint(tmp_path, finished_run):
    """``zoo-train --output DIR --resume`` alone continues what DIR holds."""
    target = copy_run(tmp_path, finished_run)
    argv = ["--output", str(target), "--resume", "--epochs", "2", "--limit", "200", "--quiet"]
    assert cli.zoo_train(argv) == 0
    metrics = json.loads((target / "metrics.json").read_text())
    assert (metrics["model"], metrics["epochs_completed"]) == ("lenet5_modern", 2)


def test_export_refuses_a_folder_it_did_not_write(tmp_path, finished_run, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    before = fingerprint(tmp_path)
    argv = [str(finished_run / "model.keras"), "--format", "onnx", "--output", str(mine)]
    assert cli.zoo_export(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "already exists" in error[0]
    assert fingerprint(tmp_path) == before


def test_broken_images_are_all_named_and_can_be_skipped(tmp_path, capsys):
    folder = image_folder(tmp_path / "pets", broken=["a/3.png", "b/5.png"])
    argv = ["--dataset", folder, "--epochs", "1", "--image-size", "16", "16", "--quiet"]
    assert cli.zoo_train([*argv, "--output", str(tmp_path / "refused")]) == 2
    error = capsys.readouterr().err
    assert "a/3.png" in error and "b/5.png" in error and "--skip-bad-images" in error
    assert cli.zoo_train([*argv, "--output", str(tmp_path / "out"), "--skip-bad-images"]) == 0
    assert "leaving out 2 unreadable image file(s)" in capsys.readouterr().err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["train_images"] + metrics["test_images"] + 1 == 10  # 12 files, 2 broken, 1 val


def test_a_missing_backend_package_is_one_line(tmp_path):
    """A one-backend install with KERAS_BACKEND unset: Keras asks for TensorFlow."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['tensorflow'] = None\n"  # as if it were not installed
        "from zoo.cli import zoo_train as main; sys.exit(main(['--epochs', '1']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)  # no keras.json: Keras's default backend, tensorflow
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("zoo-train")]
    assert len(lines) == 1 and "needs tensorflow, which is not installed" in lines[0]
    assert "Traceback" not in result.stderr

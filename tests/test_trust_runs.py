"""A training run's folder is the user's: every way a run can be left, resumed or replaced.

Issue 27's rule: the checkpoint is the newest complete ``checkpoint/epoch-NNNN``
folder; a folder with none holds no run. Each start-up case below builds the
folder a kill at one moment leaves, then runs what a user would run next.
Issue 28's items on runs: ``--overwrite`` replaces only the zoo's files and
only once the new run has an epoch, published files never share storage with
the checkpoint, one run per folder, a resumed run trains (and with the
recipe and data it was trained with), a report that failed can be finished.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from processes import wait_for_epoch
from test_bad_inputs import fingerprint, image_folder

from zoo import cli
from zoo.errors import EXIT_INTERRUPTED
from zoo.training import checkpoint, output_folder, report

BACKEND = keras.backend.backend()
# Small runs; the native convolution compiles fastest on JAX (the weights are the same either way).
SMALL = ["--model", "lenet5_modern", "--limit", "200", "--quiet", "--conv-impl", "native"]
SMALL += ["--validation-split", "0"]  # one compiled step fewer per run


def zoo_train(*argv):
    return cli.zoo_train([*SMALL, *argv])


def one_error(capsys):
    """The one line a refused command printed (warnings aside)."""
    lines = [
        line
        for line in capsys.readouterr().err.strip().splitlines()
        if not line.startswith("warning:")
    ]
    assert len(lines) == 1 and lines[0].startswith("zoo-train: error: "), lines
    return lines[0]


def read_json(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A finished 2-epoch run (warm-up-cosine, so its rate ends at zero)."""
    output = tmp_path_factory.mktemp("run") / "run"
    assert zoo_train("--epochs", "2", "--output", str(output)) == 0
    return output


@pytest.fixture
def run_copy(tmp_path, two_epochs):
    target = tmp_path / "run"
    shutil.copytree(two_epochs, target)
    return target


def history(output):
    return checkpoint.read_state(str(output))[1]


# --------------------------------------------------------------------------- start-up moments


def test_a_folder_whose_first_epoch_never_finished_is_not_a_run(tmp_path, capsys):
    """Killed while writing epoch 1 (only a temporary epoch folder) or before it (TensorBoard's
    logs): a plain run starts and cleans what the zoo left; ``--resume`` says to do that."""
    output = tmp_path / "out"
    (output / "checkpoint" / ".epoch-0001.abcd").mkdir(parents=True)
    (output / "checkpoint" / ".epoch-0001.abcd" / "model.keras").write_bytes(b"half")
    (output / "logs" / "train").mkdir(parents=True)
    (output / "logs" / "train" / "events.out.tfevents.1.host").write_bytes(b"old")
    assert zoo_train("--output", str(output), "--epochs", "1", "--resume") == 2
    assert "holds no completed epoch" in one_error(capsys)
    assert zoo_train("--output", str(output), "--epochs", "1") == 0
    assert os.listdir(output / "checkpoint") == ["epoch-0001"]
    assert not (output / "logs").exists()  # the killed run's event file was the zoo's


def test_a_complete_epoch_without_anything_else_is_resumed(run_copy, capsys):
    """Killed after epoch 2's folder was in place, before anything was published."""
    for name in os.listdir(run_copy):
        if name != "checkpoint":
            os.remove(run_copy / name)
    assert zoo_train("--output", str(run_copy), "--epochs", "3") == 2
    assert "already holds a run (checkpoint)" in one_error(capsys)
    assert zoo_train("--output", str(run_copy), "--epochs", "3", "--resume") == 0
    assert len(history(run_copy)["loss"]) == 3
    assert read_json(run_copy / "metrics.json")["epochs_completed"] == 3


def test_two_complete_epochs_the_newest_wins_and_the_older_goes(run_copy):
    """Killed after epoch N's folder was in place, before epoch N-1's was removed."""
    root = run_copy / "checkpoint"
    older = root / "epoch-0001"
    shutil.copytree(root / "epoch-0002", older)  # any complete folder will do as the older
    state = read_json(older / "state.json")
    state["epochs_completed"], state["history"] = 1, {k: v[:1] for k, v in state["history"].items()}
    (older / "state.json").write_text(json.dumps(state))
    (run_copy / ".model.keras.x1y2.keras").write_bytes(b"torn")  # a kill while publishing
    assert checkpoint.latest_epoch(str(run_copy)) == 2
    assert zoo_train("--output", str(run_copy), "--epochs", "3", "--resume") == 0
    assert os.listdir(root) == ["epoch-0003"]
    assert not list(run_copy.glob(".*"))


def test_a_report_that_fails_keeps_the_model_and_resume_finishes_it(run_copy, monkeypatch, capsys):
    """A run that stopped after its last epoch, before or while writing its report: the
    trained model is kept, and ``--resume`` writes the report and trains nothing."""
    for name in ("metrics.json", "curves.png", "confusion_matrix.png", "classes.json"):
        os.remove(run_copy / name)
    before = history(run_copy)
    weights = (run_copy / "checkpoint" / "epoch-0002" / "model.keras").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "write", disk_full)
    assert zoo_train("--output", str(run_copy), "--resume") == 2
    line = one_error(capsys)
    assert "the disk is full" in line and "--resume" in line
    monkeypatch.undo()
    assert zoo_train("--output", str(run_copy), "--resume") == 0
    assert read_json(run_copy / "metrics.json")["epochs_completed"] == 2
    assert (run_copy / "curves.png").stat().st_size > 0
    assert history(run_copy) == before  # nothing was trained
    assert (run_copy / "checkpoint" / "epoch-0002" / "model.keras").read_bytes() == weights
    assert zoo_train("--output", str(run_copy), "--resume") == 2  # now there is nothing to do
    assert "2 epochs are already done" in one_error(capsys)


def test_a_full_disk_at_a_checkpoint_is_one_line_and_keeps_the_last_epoch(
    run_copy, monkeypatch, capsys
):
    real_write = checkpoint.write_json

    def full_disk_in_epoch_folder(path, data):
        if os.sep + ".epoch-" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(checkpoint, "write_json", full_disk_in_epoch_folder)
    assert zoo_train("--output", str(run_copy), "--epochs", "3", "--resume") == 2
    line = one_error(capsys)
    assert "the disk is full" in line and "--resume" in line
    assert checkpoint.latest_epoch(str(run_copy)) == 2
    assert os.listdir(run_copy / "checkpoint") == ["epoch-0002"]


def test_the_epoch_callback_keeps_its_own_history_and_saves_it(tmp_path):
    """The caller's history is not extended behind its back: the callback holds a copy, adds
    each saved epoch to it, and that copy is what the checkpoint records."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    given = {"loss": [0.9]}
    callback = checkpoint.epoch_callback(str(tmp_path), {"epochs_completed": 1}, given)
    callback.set_model(model)
    callback.on_epoch_end(1, {"loss": 0.5})
    callback.on_epoch_end(2, {"loss": float("nan")})  # not finite: neither recorded nor saved
    assert given == {"loss": [0.9]}
    assert callback.history == {"loss": [0.9, 0.5]}
    state, saved, _ = checkpoint.read_state(str(tmp_path))
    assert state["epochs_completed"] == 2 and saved == callback.history


# --------------------------------------------------------------------------- what the user owns


def test_overwrite_with_a_bad_dataset_leaves_the_earlier_run_whole(tmp_path, run_copy, capsys):
    before = fingerprint(run_copy)
    argv = ["--output", str(run_copy), "--overwrite", "--epochs", "1"]
    assert zoo_train(*argv, "--dataset", str(tmp_path / "tpyo")) == 2
    assert "unknown dataset" in one_error(capsys)
    assert fingerprint(run_copy) == before


def test_overwrite_that_diverges_in_its_first_epoch_leaves_the_earlier_run(run_copy):
    before = fingerprint(run_copy)
    argv = ["--output", str(run_copy), "--overwrite", "--epochs", "1", "--learning-rate", "1e30"]
    assert zoo_train(*argv) != 0
    assert fingerprint(run_copy) == before


def test_overwrite_removes_only_the_zoos_files(run_copy):
    (run_copy / "logs").mkdir()
    (run_copy / "logs" / "notes.txt").write_text("mine")
    (run_copy / "checkpoint" / "best.pt").write_bytes(b"mine too")
    assert zoo_train("--output", str(run_copy), "--overwrite", "--epochs", "1") == 0
    assert (run_copy / "logs" / "notes.txt").read_text() == "mine"
    assert (run_copy / "checkpoint" / "best.pt").read_bytes() == b"mine too"
    assert sorted(os.listdir(run_copy / "checkpoint")) == ["best.pt", "epoch-0001"]
    assert read_json(run_copy / "metrics.json")["epochs_completed"] == 1


def test_the_published_model_is_a_copy_a_user_may_overwrite(run_copy):
    published = run_copy / "model.keras"
    saved = run_copy / "checkpoint" / "epoch-0002" / "model.keras"
    assert published.stat().st_nlink == 1 and not os.path.samefile(published, saved)
    other = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten()])
    before = saved.read_bytes()
    other.save(published)  # the user's own model, saved over the published file
    assert saved.read_bytes() == before  # what --resume reads is untouched
    model, _, _ = checkpoint.load(str(run_copy), compile=False)
    assert model.count_params() == 61_706


def test_a_second_run_into_a_held_folder_is_refused(tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    with output_folder.hold(str(output)):  # as a live run holds it
        assert zoo_train("--output", str(output), "--epochs", "1") == 2
        assert "in use by another zoo-train run" in one_error(capsys)
    assert os.listdir(output) == []  # the refused run touched nothing
    with output_folder.hold(str(output)):  # released when its holder ends
        pass


def zoo_train_process(output, *argv, run=subprocess.Popen, **options):
    """``zoo-train`` with the small run's flags as a process of its own (stderr captured)."""
    command = [sys.executable, "-m", "zoo", "train", *SMALL, "--output", str(output), *argv]
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    return run(command, stderr=subprocess.PIPE, text=True, env=env, **options)


def test_a_second_process_into_a_training_folder_is_refused(tmp_path):
    output = tmp_path / "race"
    first = zoo_train_process(output, "--epochs", "1000")
    try:
        wait_for_epoch(first, output, 1)
        # (a fresh run into a held folder: test_a_second_run_into_a_held_folder_is_refused)
        resume = ["--epochs", "1000", "--resume"]
        second = zoo_train_process(output, *resume, run=subprocess.run, stdout=subprocess.PIPE)
        assert second.returncode == 2, second.stderr[-2000:]
        ours = [line for line in second.stderr.splitlines() if line.startswith("zoo-train")]
        assert len(ours) == 1 and "in use by another zoo-train run" in ours[0]
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == EXIT_INTERRUPTED


def test_sigterm_stops_after_the_step_and_the_run_resumes(tmp_path):
    output = tmp_path / "term"
    job = zoo_train_process(output, "--epochs", "1000")
    wait_for_epoch(job, output, 1)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == EXIT_INTERRUPTED
    assert stderr.strip().splitlines()[-1] == "zoo-train: interrupted" and "Traceback" not in stderr
    state, history, _ = checkpoint.read_state(str(output))  # whole, so --resume takes it
    assert state["epochs_completed"] >= 1 and len(history["loss"]) == state["epochs_completed"]
    assert not list(output.glob(".*")) and not list((output / "checkpoint").glob(".*"))


# --------------------------------------------------------------------------- resumed runs train


def test_resuming_to_more_epochs_trains_with_the_schedule_stretched(run_copy):
    """The 2-epoch run's cosine reached zero; resumed to 5 epochs it must learn again."""
    weights = keras.saving.load_model(run_copy / "model.keras").get_weights()
    assert zoo_train("--output", str(run_copy), "--epochs", "5", "--resume") == 0
    losses = history(run_copy)["loss"]
    assert len(losses) == 5 and len(set(losses[2:])) == 3  # epochs 3-5 each trained
    after = keras.saving.load_model(run_copy / "model.keras").get_weights()
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(after, weights, strict=True)) > 1e-3
    metrics = read_json(run_copy / "metrics.json")
    assert (metrics["schedule"], metrics["optimizer"], metrics["epochs_completed"]) == (
        "warmup-cosine",
        "adam",
        5,
    )
    model = keras.saving.load_model(run_copy / "checkpoint" / "epoch-0005" / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 5 * 4  # 200 images, batch 64: 4 steps


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--optimizer", "sgd"], "--optimizer adam, not sgd"),
        (["--learning-rate", "0.5"], "--learning-rate 0.003, not 0.5"),
        (["--schedule", "constant"], "--schedule warmup-cosine, not constant"),
        (["--batch-size", "16"], "--batch-size 64, not 16"),
        (["--label-smoothing", "0"], "--label-smoothing 0.1, not 0.0"),
    ],
)
def test_resume_refuses_another_recipe(run_copy, capsys, flags, named):
    before = fingerprint(run_copy)
    assert zoo_train("--output", str(run_copy), "--epochs", "4", "--resume", *flags) == 2
    assert named in one_error(capsys)
    assert fingerprint(run_copy) == before


def test_resume_refuses_other_data_at_the_same_path(tmp_path, monkeypatch, capsys):
    pets = tmp_path / "fx" / "pets"
    image_folder(pets)
    monkeypatch.chdir(tmp_path)
    base = ["--dataset", "fx/pets", "--image-size", "16", "16", "--output", "out"]
    assert zoo_train(*base, "--epochs", "1") == 0
    assert zoo_train("--output", "out", "--epochs", "2", "--resume", "--dataset", "./fx/pets") == 0
    images = read_json(tmp_path / "out" / "metrics.json")["train_images"]
    (pets / "b").rename(pets / "c")  # a renamed class folder
    assert zoo_train("--output", "out", "--epochs", "3", "--resume") == 2
    assert "now has the classes ['a', 'c']" in one_error(capsys)
    (pets / "c").rename(pets / "b")
    elsewhere = tmp_path / "elsewhere"
    image_folder(elsewhere / "fx" / "pets")
    os.remove(elsewhere / "fx" / "pets" / "a" / "0.png")
    shutil.move(tmp_path / "out", elsewhere / "out")
    monkeypatch.chdir(elsewhere)  # same relative paths, another dataset... the recorded one wins
    assert zoo_train("--output", "out", "--epochs", "3", "--resume") == 0
    assert read_json(elsewhere / "out" / "metrics.json")["train_images"] == images
    (pets / "a" / "0.png").unlink()  # and the recorded one changed: refused
    assert zoo_train("--output", "out", "--epochs", "4", "--resume") == 2
    assert "are not the ones" in one_error(capsys)


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_a_seed_out_of_range_is_one_line(tmp_path, capsys, seed):
    assert zoo_train("--output", str(tmp_path / "out"), "--seed", seed) == 2
    assert "--seed must be a whole number" in one_error(capsys)


def test_a_model_too_large_to_train_here_is_refused_before_it_runs_out(
    tmp_path, monkeypatch, capsys
):
    """``--image-size 3000 3000`` makes LeNet a billion weights: say so, don't get killed."""
    from zoo.data import images

    monkeypatch.setattr(images, "available_memory", lambda: 200 * 2**20)
    argv = ["--output", str(tmp_path / "out"), "--image-size", "256", "256", "--epochs", "1"]
    assert zoo_train(*argv) == 2
    line = one_error(capsys)
    assert "training lenet5_modern at 256x256 with batch 64 would need" in line
    assert "--image-size" in line


def test_class_names_matplotlib_would_read_as_math_are_drawn_as_written(tmp_path):
    """A class folder named ``$^$`` used to fail the report's figures after training."""
    from zoo.explain import viz

    names = ["cost $5", "$^$", "a$\\frac{$b"]
    figure = viz.plot_confusion_matrix(np.eye(3, dtype=int), names)
    figure.savefig(tmp_path / "matrix.png")  # raised ValueError from mathtext before
    history = viz.plot_history({"loss": [1.0, 0.5]}, title="lenet5 on $^$ (jax)")
    history.savefig(tmp_path / "curves.png")
    assert (tmp_path / "matrix.png").stat().st_size > 0

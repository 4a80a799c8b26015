"""Runs that are stopped: Ctrl-C, and SIGKILL at any instant, including during a save.

Every run here is a real ``zoo-train`` process. After each interruption the
last checkpoint must load and resume, and a resumed run must end exactly where
an uninterrupted one would: the requested epoch count, one history row per
epoch, and no temporary file left behind.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest
from processes import free_port, saved_epoch, wait_for, wait_for_epoch

from zoo.errors import EXIT_INTERRUPTED
from zoo.training import checkpoint
from zoo.training.interrupt import InterruptFlag, stop_between_steps
from zoo.training.resume import report_done

BACKEND = keras.backend.backend()
# Small epochs (digits, 256 images, batch 64: 4 steps) so that a large share of the wall time is
# spent saving checkpoints, where a kill does the most harm.
QUICK = ["--model", "lenet5", "--dataset", "digits", "--limit", "256", "--batch-size", "64"]
QUICK += ["--validation-split", "0", "--seed", "5", "--quiet"]


def start_training(output, epochs, *extra, **popen):
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("XLA_FLAGS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "zoo", "train", *QUICK, "--output", str(output)]
        + ["--epochs", str(epochs), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )


def last_line(stderr):
    return (stderr.strip().splitlines() or [""])[-1]


def leftovers(output):
    """Temporary files and folders anywhere under ``output`` (the zoo's start with a dot)."""
    return sorted(
        path
        for path in glob.glob(os.path.join(output, "**", ".*"), recursive=True)
        if not path.endswith("/.")
    )


# --------------------------------------------------------------------------- Ctrl-C


def test_flag_is_set_by_the_first_ctrl_c_and_the_second_interrupts():
    flag = InterruptFlag()
    flag(signal.SIGINT, None)
    assert flag.pressed
    with pytest.raises(KeyboardInterrupt):
        flag(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):
        flag.raise_if_pressed()


def test_an_ignored_or_foreign_sigint_handler_is_left_alone():
    def custom(signum, frame):
        pass

    for handler in (signal.SIG_IGN, custom):
        previous = signal.signal(signal.SIGINT, handler)
        try:
            with stop_between_steps() as flag:
                assert flag is None and signal.getsignal(signal.SIGINT) is handler
        finally:
            signal.signal(signal.SIGINT, previous)
    with stop_between_steps() as flag:
        assert isinstance(flag, InterruptFlag) and signal.getsignal(signal.SIGINT) is flag
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_stops_within_a_step_keeps_the_checkpoint_and_exits_130(tmp_path):
    run = start_training(tmp_path, 1000)
    try:
        wait_for_epoch(run, tmp_path, 2)
        run.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, stderr = run.communicate(timeout=30)
        waited = time.monotonic() - sent
    finally:
        run.kill()
    assert run.returncode == EXIT_INTERRUPTED, stderr[-2000:]
    assert last_line(stderr) == "zoo-train: interrupted" and "Traceback" not in stderr
    assert waited < 15  # a step here takes milliseconds; the exit, a few seconds at most
    epochs = saved_epoch(tmp_path)
    assert 2 <= epochs < 1000 and leftovers(tmp_path) == []
    resumed = start_training(tmp_path, epochs + 1, "--resume")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-2000:]
    state, history, _ = checkpoint.read_state(str(tmp_path))
    assert state["epochs_completed"] == epochs + 1 and len(history["loss"]) == epochs + 1


@pytest.mark.skipif(BACKEND != "jax", reason="multi-process training is JAX's")
def test_ctrl_c_ends_both_processes_of_a_jax_job(tmp_path):
    """Ctrl-C in a terminal signals the whole foreground process group: here, both ranks.

    Before the fix the interrupt was lost inside JAX's transfer of a step's
    metrics in a multi-process job and both processes trained on.
    """
    address = f"127.0.0.1:{free_port()}"
    job = ["--distribute", "data-parallel", "--coordinator", address, "--num-processes", "2"]
    ranks = [start_training(tmp_path, 1000, *job, "--process-id", str(r)) for r in (0, 1)]
    try:
        wait_for_epoch(ranks[0], tmp_path, 1)
        for rank in ranks:  # as the terminal does: every process of the foreground group
            rank.send_signal(signal.SIGINT)
        results = [rank.communicate(timeout=60) for rank in ranks]
    finally:
        for rank in ranks:
            rank.kill()
    for rank, (_, stderr) in zip(ranks, results, strict=True):
        assert rank.returncode == EXIT_INTERRUPTED, stderr[-2000:]
        assert last_line(stderr) == "zoo-train: interrupted"
    assert saved_epoch(tmp_path) >= 1 and leftovers(tmp_path) == []


# --------------------------------------------------------------------------- SIGKILL


def kill_plan(count, seed):
    """``count`` seeded kill points ``(moment, delay)``: a short delay into the writing of a
    checkpoint's epoch folder or of OUTPUT/model.keras, or a time after the process started
    (start-up, loading and training included)."""
    rng = np.random.default_rng(seed)
    moments = rng.choice(["checkpoint", "publish", "time"], size=count, p=[0.4, 0.3, 0.3])
    return [
        (str(m), float(rng.uniform(0.5, 5.0) if m == "time" else rng.uniform(0.0, 0.03)))
        for m in moments
    ]


def during(output, moment):
    """A condition that holds while the zoo is writing ``moment``'s temporary files."""
    pattern = {
        "checkpoint": os.path.join(output, "checkpoint", ".epoch-*"),
        "publish": os.path.join(output, ".model.keras.*"),
    }[moment]
    return lambda: bool(glob.glob(pattern))


def next_run_flags(output):
    """What a user runs next after a kill, from the zoo's own reading of the folder: resume
    what holds a completed epoch; anything else is not a run and a plain run starts afresh."""
    return ["--resume"] if checkpoint.latest_epoch(str(output)) is not None else []


def test_killed_at_20_seeded_moments_resumes_to_the_same_end(tmp_path, kill_seed):
    """SIGKILL the same run 20 times (each time the next process), then let it finish.

    After every kill the folder is read as the zoo reads it: either a complete
    newest epoch (model and state together, the zip intact) that the next
    run resumes, or no completed epoch, where a plain run starts. Whatever the
    machine's speed makes the kills hit, the next process must start: each
    one must die by the kill, never refuse the folder. The last one asks for
    three more epochs than the checkpoint holds and must end at exactly that
    epoch with one history row per epoch and no temporary left.
    """
    endless, output, kills = 10_000, tmp_path, []
    for moment, value in kill_plan(20, seed=kill_seed):
        run = start_training(output, endless, *next_run_flags(output))
        if moment == "time":
            time.sleep(value)
            landed = True
        else:
            landed = wait_for(during(output, moment), run, 120)
            time.sleep(value)
        run.kill()
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == -signal.SIGKILL, (kills, stderr[-2000:])
        kills.append((moment, landed, saved_epoch(output)))
        if checkpoint.latest_epoch(str(output)) is not None:
            state, history, folder = checkpoint.read_state(str(output))  # raises if torn
            with zipfile.ZipFile(os.path.join(folder, "model.keras")) as archive:
                assert archive.testzip() is None
    assert sum(landed for moment, landed, _ in kills if moment != "time") >= 10, kills
    assert kills[-1][2] >= 5, kills  # the chain made progress through the kills
    epochs = saved_epoch(output) + 3
    final = start_training(output, epochs, *next_run_flags(output))
    _, stderr = final.communicate(timeout=600)
    assert final.returncode == 0, stderr[-2000:]
    state, history, folder = checkpoint.read_state(str(output))
    assert state["epochs_completed"] == epochs and len(history["loss"]) == epochs
    with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
        assert json.load(handle)["epochs_completed"] == epochs
    assert os.listdir(os.path.join(output, "checkpoint")) == [f"epoch-{epochs:04d}"]
    assert leftovers(output) == []


def test_killed_during_the_report_resume_writes_it(tmp_path):
    """SIGKILL as the report starts (after the last epoch): ``--resume`` trains nothing and
    writes the whole report."""
    output = tmp_path / "run"
    run = start_training(output, 2)
    # classes.json is the report's first file: the figures and metrics.json are still due
    assert wait_for(lambda: os.path.exists(output / "classes.json"), run, 300)
    run.kill()
    run.communicate(timeout=60)
    assert checkpoint.latest_epoch(str(output)) == 2 and not report_done(str(output), 2)
    resumed = start_training(output, 2, *next_run_flags(output))
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-2000:]
    assert json.loads((output / "metrics.json").read_text())["epochs_completed"] == 2
    for name in ("classes.json", "curves.png", "confusion_matrix.png", "model.keras"):
        assert (output / name).stat().st_size > 0
    assert len(checkpoint.read_state(str(output))[1]["loss"]) == 2  # nothing more trained
    assert leftovers(output) == []

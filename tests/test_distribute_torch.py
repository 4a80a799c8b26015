"""Data-parallel training on PyTorch: torch.distributed (gloo on CPU), two real processes.

Tolerance: two processes each average the loss gradient over half of a global
batch and DDP averages those two means, which only reorders float32 sums: the
weights after a few steps equal one process's on the whole batch to 1e-5.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from conftest import BACKENDS, installed
from processes import free_port, wait_for_epoch

import zoo
from zoo.cli import zoo_train as main
from zoo.errors import EXIT_BAD_INPUT
from zoo.training import checkpoint

BACKEND = keras.backend.backend()
pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="torch.distributed is PyTorch's")
RUN = ["--model", "lenet5_modern", "--limit", "600", "--batch-size", "64", "--seed", "3"]

# Each rank fits its halves of three global batches of 32; rank 0 saves the start and the end.
STEPS_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras, numpy as np
    from zoo.training.distribute.torch_ddp import join_process_group
    import zoo
    from zoo.accel import accelerate

    rank, world, _ = join_process_group()
    keras.utils.set_random_seed(rank)  # different seeds: DDP must copy rank 0's weights
    model = zoo.get_model("lenet5_modern", classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    data = np.load(sys.argv[1])
    x, y = data["x"], data["y"]
    half = len(x) // (3 * world)
    mine = np.concatenate([np.arange(s * 32 + rank * half, s * 32 + (rank + 1) * half)
                           for s in range(3)])
    assert accelerate(model, data_parallel=True).step == "ddp"
    assert accelerate(model).step == "ddp"  # again: the same wrapper, not a second one
    ddp = model.train_step.keywords["forward"]
    assert type(ddp.module).__name__ == "GraphForward"  # the lean forward pass, as one process
    start = model.get_weights()
    model.fit(x[mine], y[mine], batch_size=half, epochs=1, shuffle=False, verbose=0)
    if rank == 0:
        np.savez(sys.argv[2], *start)
        np.savez(sys.argv[3], *model.get_weights())
    """
)


def worker_env(rank, world, port):
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    return env


def test_two_processes_step_exactly_like_one_on_the_global_batch(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((96, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 96)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = tmp_path / "steps.py"
    script.write_text(STEPS_SCRIPT)
    port = free_port()
    files = [str(tmp_path / n) for n in ("data.npz", "start.npz", "end.npz")]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), *files],
            env=worker_env(rank, 2, port),
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr[-3000:]
    start = np.load(tmp_path / "start.npz")
    distributed = np.load(tmp_path / "end.npz")
    model = zoo.get_model("lenet5_modern", classes=10)
    model.set_weights([start[f"arr_{i}"] for i in range(len(start.files))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    single = model.get_weights()
    assert len(single) == len(distributed.files)
    moved = max(np.abs(single[i] - start[f"arr_{i}"]).max() for i in range(len(single)))
    assert moved > 1e-3  # three Adam steps really changed the weights
    for i, expected in enumerate(single):
        np.testing.assert_allclose(distributed[f"arr_{i}"], expected, atol=1e-5, rtol=0)


def zoo_train(*args, timeout=600, **popen):
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "zoo", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )


def test_processes_2_trains_writes_once_and_the_model_loads_on_other_backends(tmp_path):
    output = tmp_path / "job"
    job = zoo_train(
        *RUN, "--epochs", "2", "--output", str(output), "--distribute", "data-parallel",
        "--processes", "2",
    )  # fmt: skip
    stdout, stderr = job.communicate(timeout=600)
    assert job.returncode == 0, stderr[-3000:]
    assert "global batch 64 = 2 x 32 per device" in stdout and "gloo" in stdout
    assert "process 1 done" in stdout and stdout.count("test accuracy") == 1
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["distribution"]["processes"] == 2 and metrics["epochs_completed"] == 2
    assert metrics["test_accuracy"] > 0.5  # two epochs of LeNet on digits learn something
    x = np.random.default_rng(1).random((3, 28, 28, 1), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    here = keras.saving.load_model(output / "model.keras").predict(x, verbose=0)
    for other in [b for b in BACKENDS if b != "torch" and installed(b)]:
        script = (
            "import sys, numpy as np, keras\n"
            "m = keras.saving.load_model(sys.argv[1])\n"
            "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))\n"
        )
        out = tmp_path / f"{other}.npy"
        env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "3"}
        argv = [sys.executable, "-c", script, str(output / "model.keras"), str(tmp_path / "x.npy")]
        subprocess.run([*argv, str(out)], check=True, env=env, timeout=300)
        np.testing.assert_allclose(np.load(out), here, atol=1e-5)


def children(pid):
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as handle:
        return [int(p) for p in handle.read().split()]


def test_a_killed_worker_ends_the_job_and_the_checkpoint_resumes(tmp_path):
    """SIGKILL rank 1 mid-training: the launcher and rank 0 exit non-zero, soon, no hang."""
    output = tmp_path / "job"
    flags = [*RUN, "--output", str(output), "--distribute", "data-parallel", "--processes", "2"]
    job = zoo_train(*flags, "--epochs", "1000")
    try:
        wait_for_epoch(job, output, 2)
        workers = children(job.pid)
        assert len(workers) == 2
        os.kill(workers[1], signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = job.communicate(timeout=180)
        took = time.monotonic() - killed
    finally:
        job.kill()
    assert job.returncode not in (0, None) and took < 150, (took, stderr[-3000:])
    assert "Traceback" not in stderr
    assert "another process of the job stopped" in stderr or "a worker exited" in stderr
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read()
    epochs = checkpoint.latest_epoch(str(output))
    resumed = zoo_train(*flags, "--epochs", str(epochs + 1), "--resume")
    _, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    assert json.loads((output / "metrics.json").read_text())["epochs_completed"] == epochs + 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--distribute", "data-parallel"], "start it with torchrun --nproc-per-node N"),
        (["--distribute", "data-parallel", "--processes", "2", "--batch-size", "65"], "65"),
    ],
)
def test_bad_torch_distribute_requests_are_one_line(tmp_path, capsys, flags, message):
    if "--processes" in flags:  # the workers report; the launcher says a worker failed
        job = zoo_train(*RUN, *flags, "--output", str(tmp_path))
        _, stderr = job.communicate(timeout=300)
        assert job.returncode != 0 and "Traceback" not in stderr
        assert "does not split evenly over 2 devices" in stderr and message in stderr
        return
    assert main(["--output", str(tmp_path), *flags, *RUN]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip()
    assert message in error and error.count("\n") == 0


def test_ctrl_c_ends_every_process_with_130_and_keeps_the_checkpoint(tmp_path):
    """The terminal sends SIGINT to the launcher and both workers (one process group)."""
    output = tmp_path / "job"
    flags = [*RUN, "--output", str(output), "--distribute", "data-parallel", "--processes", "2"]
    job = zoo_train(*flags, "--epochs", "1000", start_new_session=True)
    try:
        wait_for_epoch(job, output, 1)
        workers = children(job.pid)
        os.killpg(job.pid, signal.SIGINT)
        _, stderr = job.communicate(timeout=90)
    finally:
        job.kill()
    assert job.returncode == 130, stderr[-3000:]
    assert stderr.strip().splitlines() == ["zoo-train: interrupted"] * 2
    assert all(
        not os.path.exists(f"/proc/{pid}/cmdline") or not open(f"/proc/{pid}/cmdline").read()
        for pid in workers
    )
    assert checkpoint.latest_epoch(str(output)) >= 1


def gone(pid):
    """Whether process ``pid`` has ended (a zombie awaiting its parent counts as ended)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" in status.read()
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_its_launcher(tmp_path, signum):
    """SIGTERM to the launcher alone (a scheduler, ``kill PID``) reaches the workers, which stop
    after their step; a launcher killed outright is noticed by its workers, which stop too."""
    output = tmp_path / "job"
    flags = [*RUN, "--output", str(output), "--distribute", "data-parallel", "--processes", "2"]
    job = zoo_train(*flags, "--epochs", "1000")
    try:
        wait_for_epoch(job, output, 1)
        workers = children(job.pid)
        assert len(workers) == 2
        job.send_signal(signum)
        job.communicate(timeout=90)
        deadline = time.monotonic() + 60
        while not all(gone(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        job.kill()
    assert all(gone(pid) for pid in workers)
    if signum == signal.SIGTERM:
        assert job.returncode == 130
    epochs = checkpoint.latest_epoch(str(output))
    assert epochs >= 1
    time.sleep(2)  # nothing is training any more: the checkpoint stays where it is
    assert checkpoint.latest_epoch(str(output)) == epochs

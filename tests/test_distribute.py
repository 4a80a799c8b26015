"""zoo-train --distribute data-parallel on CPU devices.

Every run is a fresh ``zoo-train`` process: XLA's device count and
TensorFlow's logical devices are fixed when the backend starts. Two virtual
CPU devices run the same program as two GPUs would.

Tolerance: a data-parallel step averages the gradients of two half batches
instead of one whole batch, which only reorders float32 sums, so losses match
the single-device run to a relative 1e-4 (measured: 1e-7).
"""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from processes import free_port

from zoo.cli import zoo_train as main
from zoo.errors import EXIT_BAD_INPUT

BACKEND = keras.backend.backend()
DISTRIBUTED = BACKEND in ("jax", "tensorflow")  # with virtual CPUs; torch: test_distribute_torch
RTOL = 1e-4
# 540 training images (a multiple of the two devices), 60 validation, batch 64.
RUN = ["--epochs", "2", "--batch-size", "64", "--limit", "600", "--seed", "3"]

needs_distribution = pytest.mark.skipif(
    not DISTRIBUTED, reason=f"Keras has no distribution API on the {BACKEND} backend"
)


def zoo_train(*args, timeout=600):
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("XLA_FLAGS", None)
    return subprocess.run(
        [sys.executable, "-m", "zoo", "train", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def losses(output):
    with open(os.path.join(output, "history.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([[float(r["loss"]), float(r["val_loss"])] for r in rows])


def checked(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@needs_distribution
def test_two_devices_match_one_device_and_resume_on_one(tmp_path):
    single, split = str(tmp_path / "single"), str(tmp_path / "split")
    checked(zoo_train(*RUN, "--output", single, "--quiet"))
    result = checked(
        zoo_train(*RUN, "--output", split, "--distribute", "data-parallel", "--virtual-cpus", "2")
    )
    assert "over 2 devices" in result.stdout
    assert "global batch 64 = 2 x 32 per device" in result.stdout
    with open(os.path.join(split, "metrics.json")) as handle:
        metrics = json.load(handle)
    assert metrics["batch_size"] == 64
    assert metrics["distribution"]["devices"] == 2
    assert metrics["distribution"]["per_device_batch"] == 32
    np.testing.assert_allclose(losses(split), losses(single), rtol=RTOL)

    # Both checkpoints carry the same weights and optimizer state: a third epoch
    # on one device continues them alike.
    for output in (single, split):
        checked(zoo_train(*RUN[2:], "--epochs", "3", "--output", output, "--resume", "--quiet"))
    resumed_single, resumed_split = losses(single), losses(split)
    assert resumed_split.shape == (3, 2)
    np.testing.assert_allclose(resumed_split, resumed_single, rtol=RTOL)


@needs_distribution
def test_global_batch_must_split_over_the_devices(tmp_path):
    result = zoo_train(
        *RUN[:2],
        "--batch-size",
        "63",
        "--output",
        str(tmp_path),
        "--distribute",
        "data-parallel",
        "--virtual-cpus",
        "2",
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert "--batch-size 63 does not split evenly over 2 devices" in result.stderr
    assert "Traceback" not in result.stderr


# Runs zoo-train with JAX's shutdown timeout cut to 3 s and process 0's writing
# slowed by 8 s, as a big test set or a slow disk would. Were process 1 to exit
# as soon as training ends, JAX would abort both processes at shutdown.
SLOW_CHIEF = """
import functools, sys, time
import jax
jax.distributed.initialize = functools.partial(
    jax.distributed.initialize, shutdown_timeout_seconds=3
)
from zoo import cli
from zoo.explain import viz
plot_history = viz.plot_history
def slow_plot_history(*args, **kwargs):
    time.sleep(8)
    return plot_history(*args, **kwargs)
viz.plot_history = slow_plot_history
sys.exit(cli.zoo_train(sys.argv[1:]))
"""


@pytest.mark.skipif(BACKEND != "jax", reason="multi-process training is JAX's")
def test_two_jax_processes_train_one_model(tmp_path):
    """Two processes on 127.0.0.1, one CPU device each, each fed its own half of the data.

    Their reported training losses are the same numbers only if every step
    averaged the gradients of both halves. Process 0 takes longer than JAX's
    shutdown timeout to write its results; both must still exit cleanly.
    """
    output = str(tmp_path / "job")
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("XLA_FLAGS", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SLOW_CHIEF, *RUN, "--output", output]
            + ["--distribute", "data-parallel", "--coordinator", address]
            + ["--num-processes", "2", "--process-id", str(rank)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for rank in (0, 1)
    ]
    try:
        results = [process.communicate(timeout=600) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    chief, worker = results[0][0], results[1][0]
    assert "2 processes (this is process 0); global batch 64 = 2 x 32 per device" in chief
    worker_loss = float(worker.split("training loss ")[1].split()[0])
    assert worker_loss == pytest.approx(losses(output)[-1, 0], rel=1e-6)
    with open(os.path.join(output, "metrics.json")) as handle:
        assert json.load(handle)["distribution"]["processes"] == 2


def test_the_single_device_plan_is_what_plain_keras_does():
    """Without --distribute the plan is never None: one process that feeds every image in
    whole batches, builds and evaluates the model itself, and waits for nobody."""
    from zoo.data.dataset import Split
    from zoo.training.distribute import Plan

    plan = Plan(conv_impl="im2col")
    split = Split(np.zeros((5, 2, 2, 1), "float32"), np.arange(5))
    assert plan.is_chief and plan.num_processes == 1
    np.testing.assert_array_equal(plan.shard(5), np.arange(5))
    assert plan.training_shard(split) is split and plan.validation_shard(split) is split
    assert plan.validation_shard(None) is None
    assert plan.process_batch(63) == 63 and plan.check_batch(63) is None
    with plan.scope(), plan.lost_process("out"):
        pass
    assert plan.finish() is None
    assert plan.describe(64) is None and plan.report(64) == {}
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3)])
    assert plan.evaluate_copy(model, compile_copy=pytest.fail) is model  # no copy, no compile
    assert plan.prepare(model).conv_setting == "im2col"


def test_a_data_parallel_plan_deals_whole_batches_to_each_process():
    from zoo.training.distribute import DataParallelPlan, DistributeError

    plan = DataParallelPlan(process_id=1, num_processes=2, engine="e", devices=("a", "b", "c", "d"))
    # 10 images over 4 devices: 8 usable, dealt out in turn; process 1 takes the odd ones.
    np.testing.assert_array_equal(plan.shard(10), [1, 3, 5, 7])
    assert plan.process_batch(64) == 32 and not plan.is_chief
    with pytest.raises(DistributeError, match="--batch-size 62 does not split evenly over 4"):
        plan.check_batch(62)
    assert plan.report(64)["distribution"]["per_device_batch"] == 16
    assert plan.describe(64).endswith("global batch 64 = 4 x 16 per device")


@pytest.mark.skipif(BACKEND != "jax", reason="JAX evaluates a single-device copy")
def test_the_jax_evaluation_copy_keeps_the_runs_conv_impl(tmp_path):
    """The model JAX evaluates is a clone, and a clone starts as plain Keras: it must get the
    run's --conv-impl again, so the test accuracy is measured with the run's convolutions.
    No batch size is given: the recipe's is checked against the devices once it is known."""
    code = (
        "import zoo\n"
        "from zoo.accel import applied\n"
        f"result = zoo.train(model='lenet5_modern', epochs=1, limit=40, output={str(tmp_path)!r}, "
        "validation_split=0, distribute='data-parallel', virtual_cpus=2, "
        "conv_impl='im2col', quiet=True)\n"
        "done = applied(result.model)  # None: the copy was never accelerated\n"
        "print(done and (done.conv_setting, sorted(set(done.conv.values()))))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "('im2col', ['im2col'])"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--virtual-cpus", "2"], "--virtual-cpus only applies with --distribute"),
        (["--coordinator", "127.0.0.1:1"], "--coordinator only applies with --distribute"),
        (
            ["--distribute", "data-parallel", "--coordinator", "127.0.0.1:1"],
            "needs all of --coordinator HOST:PORT, --num-processes N and --process-id I",
        ),
        (
            ["--distribute", "data-parallel", "--coordinator", "h:1"]
            + ["--num-processes", "2", "--process-id", "2"],
            "--process-id must be in 0..1",
        ),
        (["--distribute", "data-parallel", "--virtual-cpus", "0"], "--virtual-cpus must be at"),
        (["--processes", "2"], "--processes only applies with --distribute"),
        (["--distribute", "data-parallel", "--processes", "0"], "--processes must be at least 1"),
    ],
)
def test_bad_distribute_flags(tmp_path, capsys, flags, message):
    assert main(["--output", str(tmp_path), *flags]) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "model.keras").exists()

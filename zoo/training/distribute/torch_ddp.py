"""Data-parallel training on the PyTorch backend, with `torch.distributed` (PyTorch only).

Keras has no distribution API for the torch backend, but a Keras model on
that backend *is* a `torch.nn.Module`, so PyTorch's own engine applies:

1. every process joins one process group (`gloo` on CPUs, `nccl` on GPUs),
   started by `torchrun` (which sets `RANK`, `WORLD_SIZE`,
   `MASTER_ADDR` and `MASTER_PORT`) or by `zoo-train --processes N`;
2. the model is wrapped in `torch.nn.parallel.DistributedDataParallel`,
   which copies process 0's initial weights to every process and, during
   each backward pass, averages every gradient over the processes;
3. each process feeds `--batch-size / N` images of every global batch from
   its own shard of the data, so one step computes the same update as a single
   process would on the whole global batch.

Keras's `fit` still runs the epochs, callbacks, checkpoints and progress:
only the model's `train_step` is replaced, by [`TorchPlan.prepare`][]
([`zoo.accel.accelerate`][] with `data_parallel=True`, see
[`zoo.accel.torch_step.use_ddp_step`][]), which runs the forward pass
through the DDP wrapper. Process 0 writes every file; a collective that
waits longer than the group's timeout (a killed process) ends every process
with an error instead of a hang ([`TorchPlan.lost_process`][]).

`zoo-train --processes N` ([`launch`][]) starts the N processes on this
machine as `torchrun --nproc-per-node N` would. Only the functions that
need `torch` import it, so the launcher runs on any backend.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from zoo.errors import EXIT_INTERRUPTED, ZooError
from zoo.training.distribute.plan import DataParallelPlan

# How long a collective may wait for the other processes (a killed one, a hung host), unless
# ZOO_DISTRIBUTED_TIMEOUT (seconds) says otherwise when the process group starts.
TIMEOUT_SECONDS = 120
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
LAUNCHER_VARIABLE = "ZOO_LAUNCHER_PID"  # set for the workers that --processes starts


class TorchDistributedError(ZooError):
    """The process group could not start, or lost a process."""


def launched_by_torchrun():
    """Whether this process is one of a `torchrun` (or `--processes`) job."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def timeout_seconds():
    """How long a collective waits: `ZOO_DISTRIBUTED_TIMEOUT`, read now, or 120 s."""
    value = os.environ.get("ZOO_DISTRIBUTED_TIMEOUT", "")
    if not value:
        return TIMEOUT_SECONDS
    if not value.isdigit() or int(value) < 1:
        raise TorchDistributedError(
            f"ZOO_DISTRIBUTED_TIMEOUT must be a whole number of seconds, got {value!r}."
        )
    return int(value)


def join_process_group():
    """Join the job's process group; returns `(rank, world_size, engine)`."""
    import torch
    import torch.distributed as dist

    if not launched_by_torchrun():
        missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
        raise TorchDistributedError(
            "--distribute data-parallel on torch runs one process per device: start it with "
            "torchrun --nproc-per-node N -m zoo train ... or add --processes N "
            f"(this process has no {', '.join(missing)})."
        )
    engine = "nccl" if torch.cuda.is_available() else "gloo"
    follow_launcher()
    if not dist.is_initialized():
        try:
            dist.init_process_group(engine, timeout=datetime.timedelta(seconds=timeout_seconds()))
        except Exception as error:  # c10d raises several types here
            raise TorchDistributedError(
                f"could not join the torch.distributed job at {os.environ['MASTER_ADDR']}:"
                f"{os.environ['MASTER_PORT']} as rank {os.environ['RANK']} of "
                f"{os.environ['WORLD_SIZE']}: {str(error).splitlines()[0][:200]}"
            ) from None
    if engine == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size(), engine


@dataclass(frozen=True)
class TorchPlan(DataParallelPlan):
    """`DistributedDataParallel`: one process per device, each with its own model copy."""

    def prepare(self, model):
        """The speed-ups, with the training step through DDP (process 0's weights everywhere).

        Also after `compile` and on a resumed model; DDP's constructor is a
        collective, so every process prepares each model exactly as often.
        """
        from zoo.accel import accelerate

        return accelerate(model, conv_impl=self.conv_impl, data_parallel=True)

    @contextlib.contextmanager
    def lost_process(self, output):
        """A collective that fails (another process died or was stopped) ends this process
        with one line, not a traceback."""
        try:
            yield
        except RuntimeError as error:
            if self.num_processes == 1:
                raise
            raise TorchDistributedError(
                f"process {self.process_id}: another process of the job stopped "
                f"({str(error).strip().splitlines()[0][:160]}). The last checkpoint in {output} "
                "is whole: start the job again with --resume.",
                exit_code=1,
            ) from error

    def finish(self):
        """Hold every process until all arrive (process 0 writes the results meanwhile),
        then leave the process group."""
        import torch.distributed as dist

        if self.num_processes == 1 or not dist.is_initialized():
            return
        dist.barrier()
        dist.destroy_process_group()


def start(config):
    """Join the job's process group: the plan of one of its processes."""
    rank, world, engine = join_process_group()
    return TorchPlan(
        conv_impl=config.conv_impl,
        process_id=rank,
        num_processes=world,
        engine=f"torch DistributedDataParallel ({engine})",
        devices=tuple(f"process {i}" for i in range(world)),
        local_devices=1,
    )


# --------------------------------------------------------------------------- --processes N


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(argv, processes):
    """`zoo-train --processes N`: run `argv` as N processes of one job on this machine.

    Each worker gets what `torchrun --nproc-per-node N` would set. If one
    fails, the others are stopped; Ctrl-C reaches every worker (they share the
    terminal's process group) and the launcher waits for them. Returns the
    job's exit code: 0, the first failure's code, or 130. SIGTERM to the
    launcher is passed on to the workers (each stops after its step); a
    launcher killed outright is noticed by its workers ([`follow_launcher`][]).
    """
    argv = _without_processes_flag(argv)
    port = str(_free_port())
    # As torchrun does: without a setting, N workers each using every core oversubscribe the
    # CPU and every step slows down many times (BENCHMARKS.md, "Data-parallel on this CPU").
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // processes))
    workers = []
    for rank in range(processes):
        env = {
            **os.environ,
            "OMP_NUM_THREADS": threads,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(processes),
            "LOCAL_WORLD_SIZE": str(processes),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            LAUNCHER_VARIABLE: str(os.getpid()),
        }
        workers.append(subprocess.Popen([sys.executable, "-m", "zoo", "train", *argv], env=env))
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _supervise(workers)
    except KeyboardInterrupt:  # the workers had Ctrl-C too: let them stop after their step
        _wait(workers, grace=30)
        _stop(workers, grace=10)
        return EXIT_INTERRUPTED
    except _Terminated:  # only the launcher had it: pass it on, as Ctrl-C's gentle stop
        _stop(workers, grace=30)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Terminated(Exception):
    """The launcher received SIGTERM."""


def _terminated(signum, frame):
    raise _Terminated


def follow_launcher():
    """In a worker that `--processes` started: stop (as on SIGTERM) if the launcher dies.

    A launcher killed outright (SIGKILL, a crash) cannot pass anything on; its
    workers notice that their parent changed and stop after their step, so
    none trains on alone.
    """
    launcher = os.environ.get(LAUNCHER_VARIABLE)
    if not launcher:
        return

    def watch():
        while os.getppid() == int(launcher):
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="zoo-follow-launcher", daemon=True).start()


def _without_processes_flag(argv):
    """`argv` less `--processes N`: each worker is one of the N processes."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            kept.append(arg)
    return kept


def _supervise(workers):
    while True:
        codes = [worker.poll() for worker in workers]
        failed = [code for code in codes if code not in (None, 0)]
        if failed:
            _stop(workers, grace=10)
            print(
                f"zoo-train: error: a worker exited with code {failed[0]}; stopped the others.",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED if failed[0] in (EXIT_INTERRUPTED, -signal.SIGINT) else 1
        if all(code == 0 for code in codes):
            return 0
        time.sleep(0.2)


def _wait(workers, grace):
    deadline = time.monotonic() + grace
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass


def _stop(workers, grace):
    """Ask the workers still running to stop (SIGTERM), then kill what is left."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    deadline = time.monotonic() + grace
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

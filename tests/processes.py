"""Helpers for tests that watch real ``zoo-train`` processes: ports, polling, checkpoints."""

import socket
import time

from zoo.training import checkpoint


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, process, timeout, poll=0.002):
    """Poll ``condition()`` until it holds; False if ``process`` ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(poll)
    return False


def saved_epoch(output):
    """The epoch of the last whole checkpoint in ``output`` (0 when there is none yet)."""
    try:
        return checkpoint.latest_epoch(str(output)) or 0
    except checkpoint.CheckpointError:
        return 0


def wait_for_epoch(process, output, epoch, timeout=300):
    """Wait until ``process`` has checkpointed ``epoch``; fail with its stderr if it ended."""
    if not wait_for(lambda: saved_epoch(output) >= epoch, process, timeout, poll=0.05):
        ended = process.poll() is not None
        raise AssertionError(process.stderr.read()[-3000:] if ended else f"no epoch {epoch} yet")

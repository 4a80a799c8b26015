"""Ctrl-C during training: stop after the current step, keep the last checkpoint.

Python turns Ctrl-C (SIGINT) into `KeyboardInterrupt` in whatever code the
main thread runs at that moment. Inside `model.fit` that is often a
backend's own machinery: in a multi-process JAX run it lands in the transfer
of a step's metrics to NumPy, where it was lost and training went on. So while
the zoo trains, Ctrl-C only raises a flag, and a callback turns the flag into
`KeyboardInterrupt` between two steps, in plain Python where it reaches the
command (which prints one line and exits 130). A second Ctrl-C interrupts at
once. The last complete checkpoint is untouched either way: checkpoints are
written whole or not at all (see [`zoo.training.checkpoint`][]).

SIGTERM (`kill PID`, a scheduler ending a job) is treated as Ctrl-C: stop
after the step, one line, a resumable folder. Where SIGINT is ignored (a
`nohup` job) or handled by someone else (a notebook kernel, an application
embedding the zoo), nothing is changed.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class InterruptFlag:
    """Set by the first Ctrl-C; the second one raises `KeyboardInterrupt` immediately."""

    def __init__(self):
        self.pressed = False

    def __call__(self, signum, frame):
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def raise_if_pressed(self):
        if self.pressed:
            raise KeyboardInterrupt


# Stopped like Ctrl-C: SIGINT, and SIGTERM (what `kill`, a job scheduler or a container
# runtime sends first), where their handlers are Python's defaults.
SIGNALS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


@contextlib.contextmanager
def stop_between_steps():
    """Within this block Ctrl-C or SIGTERM sets a flag; yields it (`None` where neither
    signal is ours)."""
    ours = [
        number
        for number, default in SIGNALS.items()
        if threading.current_thread() is threading.main_thread()
        and signal.getsignal(number) is default
    ]
    if signal.SIGINT not in ours:
        yield None
        return
    flag = InterruptFlag()
    for number in ours:
        signal.signal(number, flag)
    try:
        yield flag
    except Exception:
        if flag.pressed:  # whatever failed after Ctrl-C (a job's other process gone) follows it
            raise KeyboardInterrupt from None
        raise
    finally:
        for number in ours:
            signal.signal(number, SIGNALS[number])
    flag.raise_if_pressed()  # pressed after the last step: still an interruption


def interrupt_callback(flag):
    """A Keras callback that raises `KeyboardInterrupt` between steps once `flag` is set.

    It checks before each step, not after: Keras waits for every step's result
    when a callback watches the end of a step, so a `*_batch_end` hook would
    stop JAX and PyTorch from queueing the next step while one runs.
    """
    import keras

    class StopOnInterrupt(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            flag.raise_if_pressed()

        def on_test_batch_begin(self, batch, logs=None):
            flag.raise_if_pressed()

        def on_epoch_end(self, epoch, logs=None):
            flag.raise_if_pressed()

    return StopOnInterrupt()

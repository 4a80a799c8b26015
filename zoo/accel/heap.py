"""Every backend, in a process the zoo owns: freed memory kept for the next training step.

Each training step allocates its activations and gradients and frees them at the end,
and the next step asks for the same sizes again. With glibc's default settings
(Linux), `malloc` serves a block above its mmap threshold (128 KiB at first) with
fresh pages from the kernel, and whenever the free space at the top of its heap
passes the trim threshold it hands that space back. Either way the next step's
memory is new to the process, and every 4 KiB page of it costs a page fault when
first written: on a 2-core CPU, hundreds of thousands of faults per LeNet epoch on
PyTorch, and a tenth to a quarter of the epoch's time (BENCHMARKS.md, "Issue 32,
2026-12-07, fifth session").

[`use_steady_heap`][] raises the three limits with glibc's `mallopt`: blocks up to
32 MiB (glibc's largest mmap threshold) come from the heap, freed space up to
512 MiB stays with the process, and the heap grows 64 MiB at a time. Peak memory
is what the run needed either way; the process only keeps it until it ends. It
is called by [`zoo.accel.runtime.import_keras_lean`][], so only in the zoo's own
processes (its commands, the benchmark), never in a user's session, and only for
JAX and PyTorch: on TensorFlow, whose own allocator holds most of a step's memory,
it trained no faster and reached 0.98 a fourteenth later (`benchmarks/heap_ab.py`).
A user's own glibc settings win (any `MALLOC_..._` variable or `GLIBC_TUNABLES` in
the environment), and `ZOO_HEAP=glibc` keeps glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["BACKENDS", "HEAP_SETTINGS", "OPT_OUT", "use_steady_heap", "user_chose_heap"]

BACKENDS = ("jax", "torch")  # where the settings measured faster

# glibc's mallopt parameters (malloc.h) and the values the zoo sets.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
HEAP_SETTINGS = {
    M_MMAP_THRESHOLD: 32 * 2**20,
    M_TRIM_THRESHOLD: 512 * 2**20,
    M_TOP_PAD: 64 * 2**20,
}
OPT_OUT = ("ZOO_HEAP", "glibc")  # the variable, and the value that keeps glibc's defaults
USER_VARIABLES = (
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_MMAP_MAX_",
    "GLIBC_TUNABLES",
)


def user_chose_heap(environ=None):
    """Whether the environment already says how the heap should behave."""
    environ = os.environ if environ is None else environ
    variable, keep = OPT_OUT
    return environ.get(variable) == keep or any(name in environ for name in USER_VARIABLES)


def _glibc():
    """The C library when it is glibc (it has `mallopt`), else `None` (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None


def use_steady_heap(backend):
    """Set `HEAP_SETTINGS` in this process for a run on `backend` (a `KERAS_BACKEND`
    name); returns whether they were set."""
    libc = None if backend not in BACKENDS or user_chose_heap() else _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in HEAP_SETTINGS.items())

"""A process the zoo owns keeps freed memory for the next step (zoo.accel.heap), unless the
user chose glibc's settings; a user's own session is left alone.

Each case runs in a fresh process: the settings belong to the process that makes them.
"""

import sys

import keras
import pytest
from conftest import python_lines

from zoo.accel import heap

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or heap._glibc() is None,
    reason="glibc's mallopt: Linux with glibc only",
)

# Three 8 MiB arrays written and freed, 20 times over: the page faults of the repeats.
FAULTS = (
    "import resource, numpy as np\n"
    "def cycle():\n"
    "    blocks = [np.ones(2**21, dtype=np.float32) for _ in range(3)]\n"
    "cycle()\n"
    "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "for _ in range(20):\n"
    "    cycle()\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
)
ZOO_PROCESS = "from zoo.accel.runtime import import_keras_lean\nimport_keras_lean()\n"


def faults(code, environment="", backend=None):
    """Page faults of the repeats in a fresh process on ``backend`` that runs ``code`` first."""
    prefix = f"import os\nos.environ['ZOO_HEAP'] = {environment!r}\n" if environment else ""
    return int(python_lines(prefix + code + FAULTS, backend)[-1])


@glibc_only
def test_a_zoo_process_on_jax_or_torch_reuses_freed_memory_and_glibc_defaults_do_not():
    backend = keras.backend.backend()  # each backend's run of the suite checks its own
    kept = faults(ZOO_PROCESS, backend=backend)
    default = faults(ZOO_PROCESS, "glibc", backend=backend)
    users_session = faults("import zoo, keras\n", backend=backend)  # a user's session: alone
    assert default > 2048 and users_session > 2048  # at least one block's pages again
    if backend == "tensorflow":  # measured slower to 0.98 there: glibc's defaults stay
        assert kept > 2048
    else:
        assert kept < 64  # the blocks come back from the heap, already the process's pages


@glibc_only
def test_a_users_own_malloc_setting_wins():
    code = "from zoo.accel import heap\nprint(heap.use_steady_heap('torch'))\n"
    assert python_lines(code) == ["True"]
    for variable, value in [("ZOO_HEAP", "glibc"), ("MALLOC_TOP_PAD_", "0")]:
        environment = {variable: value}
        assert heap.user_chose_heap(environment)
        prefix = f"import os\nos.environ[{variable!r}] = {value!r}\n"
        assert python_lines(prefix + code) == ["False"]
    assert not heap.user_chose_heap({"ZOO_HEAP": "steady"})
    assert heap.user_chose_heap({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"})


def test_elsewhere_nothing_is_set(monkeypatch):
    monkeypatch.setattr(heap.sys, "platform", "darwin")
    assert heap._glibc() is None
    assert heap.use_steady_heap("torch") is False


@glibc_only
def test_tensorflow_keeps_glibcs_defaults():
    code = "from zoo.accel import heap\nprint(heap.use_steady_heap('tensorflow'))\n"
    assert python_lines(code) == ["False"]

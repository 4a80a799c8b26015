"""Process settings the zoo makes: every write to `os.environ`, `sys.modules` and
`sys.meta_path` in the package is here, with the moment it must happen (the stand-in
`torch._dynamo` of step 3 is in [`zoo.accel.torch_import`][]).

In the order a `zoo-train` process needs them:

1. [`register_layers_when_keras_loads`][], at `import zoo`: a finder on
   `sys.meta_path` imports [`zoo.layers`][] right after Keras loads, so
   `keras.saving.load_model` finds the zoo's layers without `import zoo`
   importing Keras (the backend could not be chosen afterwards). Keras loads inside
   [`tensorflow_start_up_hidden`][], so `import zoo` before `import keras` keeps
   TensorFlow's start-up lines out of a notebook.
2. [`choose_backend`][] (`KERAS_BACKEND`) and [`request_virtual_cpus`][]
   (`XLA_FLAGS`): before Keras, and JAX, are imported.
3. [`import_keras_lean`][]: imports Keras without the packages a training
   run never uses, on JAX and PyTorch keeping freed memory ([`zoo.accel.heap`][]),
   on JAX with [`use_lean_xla_flags`][] and [`use_jax_compilation_cache`][], on
   TensorFlow with [`use_onednn_for_tensorflow`][]. Only in a
   process the zoo owns (its commands, the benchmark), never a user's session.
4. [`tensorflow_left_alone`][]: while a JAX or PyTorch run trains, Keras does
   not import TensorFlow just to look for it. BENCHMARKS.md, "Lean runs", measures 3 and 4.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import re
import sys
import threading

from zoo.errors import ZooError

__all__ = [
    "KERAS_EXTRAS",
    "LEAN_XLA_FLAG",
    "XLA_DEVICE_FLAG",
    "choose_backend",
    "import_keras_lean",
    "register_layers_when_keras_loads",
    "request_virtual_cpus",
    "seed",
    "tensorflow_left_alone",
    "tensorflow_start_up_hidden",
    "use_jax_compilation_cache",
    "use_lean_xla_flags",
    "use_onednn_for_tensorflow",
]

# --------------------------------------------------------------------------- 1. import zoo


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself; when Keras is found, adds a step after Keras's own loading.

    A mere probe (`importlib.util.find_spec("keras")`) also asks this finder,
    so it stays on `sys.meta_path` until Keras has really been executed.
    """

    def __init__(self):
        self.searching = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or self.searching:
            return None
        self.searching = True  # the search below asks every finder again, this one too
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self.searching = False
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            with tensorflow_start_up_hidden():  # a no-op unless TensorFlow starts here
                load(module)
                _start_tensorflow_if_backend(module)
            _stop_waiting_for_keras()
            importlib.import_module("zoo.layers")

        spec.loader.exec_module = exec_module
        return spec


def _start_tensorflow_if_backend(keras):
    """On the TensorFlow backend, let TensorFlow look for a GPU now.

    On a CPU machine that search prints "failed call to cuInit" to file descriptor 2; done
    here, inside `tensorflow_start_up_hidden`, it is dropped with the import's own lines
    instead of appearing under the user's first cell that computes something. Listing the
    physical devices searches without starting TensorFlow's runtime, so `zoo-train
    --virtual-cpus` can still split the CPU afterwards.
    """
    if keras.backend.backend() == "tensorflow":
        sys.modules["tensorflow"].config.list_physical_devices()


def _stop_waiting_for_keras():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterKeras)]


def register_layers_when_keras_loads():
    """Import [`zoo.layers`][] now if Keras is loaded, else right after it is."""
    if "keras" in sys.modules:
        importlib.import_module("zoo.layers")
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())


# --------------------------------------------------------------------------- 2. before Keras

XLA_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def choose_backend(name):
    """Set `KERAS_BACKEND` to `name`; refused if Keras already runs another backend."""
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != name:
        raise ZooError(
            f"Keras is already imported with the '{loaded.backend.backend()}' backend, so "
            f"--backend {name} cannot take effect. Start a new process with "
            f"KERAS_BACKEND={name} before importing Keras."
        )
    os.environ["KERAS_BACKEND"] = name


def request_virtual_cpus(count):
    """Ask XLA for `count` CPU devices (`--virtual-cpus` on JAX); before JAX is imported."""
    if "jax" in sys.modules:
        raise ZooError(
            "--virtual-cpus must be set before JAX is imported; run zoo-train in a new "
            f"process, or export XLA_FLAGS={XLA_DEVICE_FLAG}={count} yourself."
        )
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if XLA_DEVICE_FLAG not in f]
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"{XLA_DEVICE_FLAG}={count}"])


# --------------------------------------------------------------------------- 3. lean Keras

# Imported by `import keras` whenever installed, for features a training run never uses: JAX
# for Keras's Orbax checkpoint callback, scikit-learn for its estimator wrappers, matplotlib for
# its image gallery.
KERAS_EXTRAS = ("jax", "sklearn", "matplotlib")

# XLA's CPU compiler with its older loop emitters instead of the MLIR fusion emitters: less
# memory to compile the training step of the convolutions written in keras.ops (zoo.accel.conv),
# as fast to train. Measured on jaxlib 0.10 only; XLA aborts on a flag it does not know, so
# other versions keep their defaults.
LEAN_XLA_FLAG = "--xla_cpu_use_fusion_emitters=false"
LEAN_XLA_JAXLIB = ("0.10.",)


def use_lean_xla_flags():
    """In a process the zoo owns, on JAX: add `LEAN_XLA_FLAG` to `XLA_FLAGS`.

    XLA reads `XLA_FLAGS` when JAX starts its CPU client, so this must come
    before JAX computes anything. Returns whether the flag is now set. A user's
    own choice of the flag in `XLA_FLAGS` is kept.
    """
    import importlib.metadata

    flags = os.environ.get("XLA_FLAGS", "")
    name = LEAN_XLA_FLAG.split("=")[0]
    if name in flags:
        return LEAN_XLA_FLAG in flags.split()
    try:
        version = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        return False
    if not version.startswith(LEAN_XLA_JAXLIB):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {LEAN_XLA_FLAG}".strip()
    return True


JAX_CACHE_SETTINGS = {  # JAX reads these when it starts; a value the user set is kept
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",  # LeNet's steps compile in under 1 s
    "JAX_COMPILATION_CACHE_MAX_SIZE": str(512 * 2**20),  # bytes; least recently used go first
}


def use_jax_compilation_cache():
    """In a process the zoo owns, on JAX: keep compiled steps on disk for the next run.

    Most of a JAX run's start-up is compiling its steps; JAX's persistent cache keeps
    them (keyed by program, JAX version and compiler flags) for the next run of the same
    model and batch (BENCHMARKS.md). Folder: `$XDG_CACHE_HOME/zoo/jax` (`~/.cache/zoo/jax`),
    under 512 MiB; a user's `JAX_COMPILATION_CACHE_DIR` wins, empty turns it off.
    Returns the folder, or `None` when off.
    """
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        home = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(
            os.path.expanduser(home), "zoo", "jax"
        )
    for name, value in JAX_CACHE_SETTINGS.items():
        os.environ.setdefault(name, value)
    return os.environ["JAX_COMPILATION_CACHE_DIR"] or None


ONEDNN_SWITCH = "TF_ENABLE_ONEDNN_OPTS"


def use_onednn_for_tensorflow():
    """In a process the zoo owns, on TensorFlow: its oneDNN CPU kernels, unless the user chose.

    TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI or newer; on
    others it runs its slower Eigen kernels (BENCHMARKS.md, "Issue 32, 2026-12-05"). It
    reads the variable when it starts: before Keras is imported. oneDNN rounds
    differently, as where TensorFlow uses it anyway. A user's value (`0` too) is kept.
    """
    if ONEDNN_SWITCH not in os.environ:
        os.environ[ONEDNN_SWITCH] = "1"
    return os.environ[ONEDNN_SWITCH] == "1"


def import_keras_lean():
    """Import Keras in a process the zoo owns without the packages of `KERAS_EXTRAS`.

    While Keras imports, each of those packages except the backend (`KERAS_BACKEND`;
    unset: JAX) is marked absent in `sys.modules`, and unmarked at once afterwards, so
    the run can still import it itself (matplotlib for plots, scikit-learn for the
    digits); `keras.wrappers` and the image gallery are unusable in that process.
    Returns `keras`; nothing is hidden when Keras is already imported. On JAX it
    also sets [`use_lean_xla_flags`][] and [`use_jax_compilation_cache`][], on
    TensorFlow [`use_onednn_for_tensorflow`][], on PyTorch it defers TorchDynamo
    ([`zoo.accel.torch_import`][]); on JAX and PyTorch, [`zoo.accel.heap.use_steady_heap`][].
    """
    from zoo.accel import heap, torch_import  # import no PyTorch

    if "keras" in sys.modules:
        return sys.modules["keras"]
    backend = os.environ.get("KERAS_BACKEND", "jax")
    heap.use_steady_heap(backend)
    if backend == "jax":
        use_lean_xla_flags()
        use_jax_compilation_cache()
    elif backend == "tensorflow":
        use_onednn_for_tensorflow()
    hidden = [name for name in KERAS_EXTRAS if name != backend and name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # `import name` now raises ImportError, which Keras expects
    deferred = torch_import.dynamo_deferred if backend == "torch" else contextlib.nullcontext
    try:
        with deferred():
            import keras
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return keras


# --------------------------------------------------------------------------- 4. while training


@contextlib.contextmanager
def tensorflow_left_alone(backend):
    """While training on JAX or PyTorch, keep Keras from importing TensorFlow just to check for it.

    Keras imports TensorFlow whenever it is installed, to seed it
    (`keras.utils.set_random_seed`) and to look for its shapes when saving a
    model. Inside this block Keras is told that TensorFlow is absent, unless it
    is the backend or already imported; the flag is restored afterwards. This
    reaches into Keras's `module_utils`; if that ever changes, nothing is done.
    """
    try:
        from keras.src.utils.module_utils import tensorflow as lazy_tensorflow

        saved = lazy_tensorflow._available
    except (ImportError, AttributeError):
        yield
        return
    if backend != "tensorflow" and "tensorflow" not in sys.modules:
        lazy_tensorflow._available = False
    try:
        yield
    finally:
        lazy_tensorflow._available = saved


def seed(value):
    """Seed Python's `random`, NumPy and the active Keras backend, for repeatable runs.

    What `keras.utils.set_random_seed(value)` does (`value` a non-negative int), without
    importing TensorFlow on JAX or PyTorch only to seed it (seconds, and TensorFlow's
    start-up logs in a notebook): TensorFlow is seeded when it is the backend or imported.
    """
    import keras

    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ZooError(f"seed must be a non-negative int, got {value!r}.")
    with tensorflow_left_alone(keras.backend.backend()):
        keras.utils.set_random_seed(value)


# --------------------------------------------------------------------------- 5. the commands

# What TensorFlow's C++ side prints on a CPU machine while it starts, before (or whatever) its
# log settings say: TF_CPP_MIN_LOG_LEVEL=3 does not silence these.
TENSORFLOW_START_UP = re.compile(
    r"absl::InitializeLog\(\)|oneDNN custom operations are on|Could not find cuda drivers"
    r"|failed call to cuInit|cpu_feature_guard|TensorFlow binary is optimized"
    r"|To enable the following instructions|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered|TF-TRT Warning"
)


@contextlib.contextmanager
def tensorflow_start_up_hidden():
    """Within this block, lines TensorFlow's C++ code prints as it starts are dropped.

    On a machine without a GPU, TensorFlow writes "Could not find cuda drivers",
    "failed call to cuInit: CUDA error" and the like straight to file descriptor 2,
    where no Python setting reaches. `zoo-predict`, `zoo-export` and `zoo-convert`
    run inside this block: stderr goes through a pipe, and a thread passes every line on
    at once except those of `TENSORFLOW_START_UP`. Keras's own import runs inside it
    too when `import zoo` came first (see [`register_layers_when_keras_loads`][]). Where file
    descriptor 2 cannot be duplicated, nothing is changed.
    """
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward_lines, args=(read_end, original), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the thread reads to the end
        forwarder.join(timeout=5)
        os.close(original)


def _forward_lines(read_end, destination):
    with os.fdopen(read_end, "rb") as lines:
        for line in lines:
            if not TENSORFLOW_START_UP.search(line.decode("utf-8", "replace")):
                os.write(destination, line)

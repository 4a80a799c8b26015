"""Shared test helpers. Every test runs under the backend named by KERAS_BACKEND."""

import importlib.util
import os
import signal
import subprocess
import sys

# A suite started in the background of a script (`make test &`) inherits Ctrl-C ignored, and so
# would every zoo-train it starts, which the zoo then rightly leaves alone: the Ctrl-C tests need
# what a user at a terminal has, so the suite takes Python's own handler (its children, Ctrl-C's
# default).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# On JAX the suite compiles the same small programs again and again (one model in many tests,
# and in every zoo-train it starts): the zoo's persistent-cache settings, in a folder of the
# checkout's own build/, compile each once (four test files, cold: 14 % less time). A
# developer's own folder wins.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "build", "jax-cache")),
)
from zoo.accel.runtime import use_jax_compilation_cache  # noqa: E402 (imports no Keras)

use_jax_compilation_cache()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from zoo import shapes  # noqa: E402
from zoo.explain import reference  # noqa: E402

settings.register_profile("zoo", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("zoo")

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
MNIST_DIR = os.path.abspath(os.path.join(SHARED, "data", "mnist-t10k"))

needs_shared_mnist = pytest.mark.skipif(
    not os.path.isdir(MNIST_DIR),
    reason=f"the real MNIST test set is not at {MNIST_DIR} (../shared is absent in a user's clone)",
)


BACKENDS = ("jax", "tensorflow", "torch")


def pytest_addoption(parser):
    parser.addoption(
        "--kill-seeds",
        default="2026",
        help="comma-separated seeds of the SIGKILL test's kill plans (default: 2026); "
        "e.g. --kill-seeds 1,2,3,4,5 to show it holds whatever moments the kills hit",
    )


def pytest_generate_tests(metafunc):
    if "kill_seed" in metafunc.fixturenames:
        seeds = metafunc.config.getoption("--kill-seeds").split(",")
        metafunc.parametrize("kill_seed", [int(seed) for seed in seeds if seed.strip()])


# `make test` runs the PyTorch suite in the torch-only venv and then, beside the other backends,
# only what that pass skipped: this file (ZOO_SKIPPED_TESTS) lists those tests, one node id a line.
_SKIPPED = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):  # an expected failure is not a skip
        _SKIPPED.append(report.nodeid)


def pytest_collectreport(report):
    if report.skipped:  # a whole module skipped at import
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session):
    path = os.environ.get("ZOO_SKIPPED_TESTS")
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path + ".tmp", "w") as file:
            file.writelines(f"{nodeid}\n" for nodeid in dict.fromkeys(_SKIPPED))
        os.replace(path + ".tmp", path)


def installed(module):
    """Whether ``module`` can be imported here (CI also runs the suite with only torch)."""
    return importlib.util.find_spec(module) is not None


def python_lines(code, backend=None):
    """Run ``code`` in a fresh Python on ``backend`` (default: this run's); its stdout lines.

    A non-zero exit fails the test with the end of its stderr.
    """
    env = {**os.environ, "KERAS_BACKEND": backend or keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()


def needs(*modules):
    """Skip unless every module is installed, naming the missing ones."""
    missing = [m for m in modules if not installed(m)]
    return pytest.mark.skipif(
        bool(missing), reason=f"needs {', '.join(missing)}, not installed (a one-backend install)"
    )


@pytest.fixture(autouse=True)
def _seed_and_restore_keras_config():
    """Each test starts from the same seed and leaves the global image format as it found it."""
    keras.utils.set_random_seed(1234)
    data_format = keras.config.image_data_format()
    yield
    keras.config.set_image_data_format(data_format)


def set_fixed_weights(model, seed=0):
    """Give every weight a value from a fixed NumPy generator, scaled by its fan-in.

    The scale keeps activations of order one through deep stacks, so the
    comparisons below test real numbers, not saturated ones.
    """
    rng = np.random.default_rng(seed)
    values = []
    for weight in model.weights:
        shape = tuple(weight.shape)
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 10
        values.append((rng.standard_normal(shape) / np.sqrt(fan_in)).astype("float32"))
    model.set_weights(values)
    return values


_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": reference.relu,
    "sigmoid": reference.sigmoid,
    "tanh": reference.tanh,
    "softmax": reference.softmax,
}


def _numpy_layer(layer, x):
    """Apply one Keras layer with the NumPy reference, reading its config and weights."""
    kind = layer.__class__.__name__
    config = layer.get_config()
    weights = [np.asarray(w) for w in layer.get_weights()]
    if kind == "InputLayer" or kind == "Dropout":
        return x
    if kind == "Conv2D":
        out = reference.conv2d(
            x,
            weights[0],
            weights[1],
            stride=config["strides"],
            padding=config["padding"],
            dilation=config["dilation_rate"],
        )
        return _ACTIVATIONS[config["activation"]](out)
    if kind == "Dense":
        return _ACTIVATIONS[config["activation"]](reference.dense(x, *weights))
    if kind == "AveragePooling2D":
        return reference.avg_pool2d(x, config["pool_size"], config["strides"], config["padding"])
    if kind == "MaxPooling2D":
        return reference.max_pool2d(x, config["pool_size"], config["strides"], config["padding"])
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = config["padding"]
        return np.pad(x, [(0, 0), (top, bottom), (left, right), (0, 0)])
    if kind == "Flatten":
        return x.reshape(len(x), -1)
    if kind == "AdaptiveAveragePooling2D":
        return reference.adaptive_avg_pool2d(x, config["output_size"])
    if kind == "LocalResponseNormalization":
        return reference.local_response_norm(
            x, config["depth_radius"], config["bias"], config["alpha"], config["beta"]
        )
    if kind == "GlobalAveragePooling2D":
        return reference.global_avg_pool2d(x)
    if kind == "GlobalMaxPooling2D":
        return reference.global_max_pool2d(x)
    raise NotImplementedError(f"no NumPy reference for layer type {kind}")


def numpy_forward(model, x):
    """A plain NumPy forward pass through a sequential-topology Keras model (float64)."""
    out = np.asarray(x, dtype=np.float64)
    for layer in model.layers:
        out = _numpy_layer(layer, out)
    return out


def assert_close_to_reference(actual, expected, tol=1e-5):
    """Max abs difference within ``tol`` times the reference's scale (at least 1)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected))))
    error = float(np.max(np.abs(actual - expected)))
    assert error <= tol * scale, f"max abs error {error:.3g} > {tol} x scale {scale:.3g}"


def torch_same_average_pooling_is_off(kind, size, pool_size, strides, padding):
    """Keras's torch backend pads asymmetric "same" average pooling by replicating edges.

    Known upstream (keras-team/keras issue 18452, fixed by pull request 23233 after the
    Keras 3.15 release): the edge values are counted in the mean, so results differ
    from JAX, TensorFlow and the reference there. The zoo's models never use it.
    """
    if keras.backend.backend() != "torch" or kind != "avg" or padding != "same":
        return False
    return any(len(set(shapes.same_padding(n, pool_size, strides))) > 1 for n in size)

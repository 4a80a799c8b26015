"""PyTorch: Keras imported without TorchDynamo in a process the zoo owns
(zoo.accel.torch_import), with the same numbers, and `torch.compile` still right afterwards.

Each test starts a fresh process: the stand-in matters only while Keras imports.
"""

import keras
import pytest
from conftest import python_lines

on_torch = pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="a PyTorch-only start-up speed-up"
)

# What Keras draws from a seed on PyTorch: a random op and a dropout mask (torch.Generator).
DRAWS = (
    "import numpy as np\n"
    "gen = keras.random.SeedGenerator(1)\n"
    "a = keras.random.normal((4,), seed=gen)\n"
    "b = keras.layers.Dropout(0.5, seed=3)(np.ones((2, 8), 'float32'), training=True)\n"
    "draws = [round(float(v), 6) for v in list(a) + list(keras.ops.reshape(b, (-1,)))]\n"
)
LEAN = "from zoo.accel.runtime import import_keras_lean\nkeras = import_keras_lean()\n"


def run_python(code):
    """Run ``code`` in a fresh PyTorch process; returns its last line of output."""
    return python_lines(code, "torch")[-1]


@on_torch
def test_a_lean_import_leaves_torchdynamo_unloaded_and_draws_kerass_numbers():
    report = "import sys\nprint('torch._dynamo' in sys.modules, draws)\n"
    lean = run_python(LEAN + DRAWS + report)
    plain = run_python("import keras\n" + DRAWS + report)
    assert lean.startswith("False [")  # no TorchDynamo: the second it costs is saved
    assert plain.startswith("True [")  # Keras's own import loads it
    assert lean.split(" ", 1)[1] == plain.split(" ", 1)[1]  # the same draws


@on_torch
def test_torch_compile_after_a_lean_import_gets_the_real_torchdynamo_and_kerass_numbers():
    code = LEAN + (
        "import sys, torch\n"
        "from keras.src.backend.torch import random as keras_random\n"
        "eager = keras.ops.convert_to_numpy(keras.random.normal((3,), seed=7)).tolist()\n"
        "compiled = torch.compile(lambda: keras.random.normal((3,), seed=7), backend='eager')\n"
        "traced = keras.ops.convert_to_numpy(compiled()).tolist()\n"
        "helper = keras_random.torch_seed_generator.__closure__\n"
        "disabled = [c.cell_contents for c in helper if isinstance(c.cell_contents, list)][0]\n"
        "real = type(sys.modules['torch._dynamo']).__name__ == 'module'\n"
        "keras.utils.clear_session()  # Keras's own use of TorchDynamo\n"
        "print(real, eager == traced, [hasattr(f, '_torchdynamo_disable') for f in disabled])\n"
    )
    # the real TorchDynamo is loaded, compiling gives eager's numbers, and the seed helper now
    # goes through the real `torch._dynamo.disable` that Keras asked for
    assert run_python(code) == "True True [True]"


@on_torch
def test_the_stand_in_is_lent_only_while_asked_and_never_over_the_real_one():
    code = (
        "import sys, inspect, torch\n"
        "from zoo.accel.torch_import import DYNAMO, dynamo_deferred\n"
        "with dynamo_deferred():\n"
        "    lent = sys.modules[DYNAMO]\n"
        "    inspect.getmodule(print)  # probes every module's __file__: no import\n"
        "    probed = type(sys.modules[DYNAMO]) is type(lent)\n"
        "gone = DYNAMO not in sys.modules\n"
        "with dynamo_deferred():\n"
        "    asked = sys.modules[DYNAMO].config  # any other name: the real TorchDynamo\n"
        "    real = sys.modules[DYNAMO]\n"
        "with dynamo_deferred():\n"
        "    kept = sys.modules[DYNAMO] is real\n"
        "print(probed, gone, type(real).__name__, kept)\n"
    )
    assert run_python(code) == "True True module True"

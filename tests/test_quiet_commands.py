"""The commands print what the zoo says, not TensorFlow's start-up lines (issue 31)."""

import importlib.util
import os
import subprocess
import sys

import pytest

from zoo.accel.runtime import tensorflow_start_up_hidden

NOISE = (
    "I0000 00:00:1796457795.378092   24817 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n"
    "E0000 00:00:1796457796.540683   24817 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
)


def test_start_up_lines_are_dropped_and_every_other_line_passes(capfd):
    with tensorflow_start_up_hidden():
        os.write(2, NOISE.encode())
        os.write(2, b"zoo-predict: error: image not found: x.png.\n")
        os.write(2, b"a second line\n")
        os.write(2, b"no newline at the end")
    err = capfd.readouterr().err
    assert err == (
        "zoo-predict: error: image not found: x.png.\na second line\nno newline at the end"
    )
    os.write(2, NOISE.encode())  # outside the block nothing is filtered
    assert capfd.readouterr().err == NOISE


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow installed"
)
def test_zoo_predict_on_tensorflow_prints_only_its_own_line(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")
    }
    env["KERAS_BACKEND"] = "tensorflow"  # what Keras uses when nothing is set
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "predict", "lenet5:digits", str(tmp_path / "none.png")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        f"zoo-predict: error: image not found: {tmp_path / 'none.png'}.",
        "zoo-predict: error: no image could be read; nothing was predicted.",
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow installed"
)
def test_importing_zoo_before_keras_keeps_tensorflow_start_up_out_of_stderr():
    """What a notebook's first cell does on the TensorFlow backend: no pink box under it."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = "tensorflow"
    script = (
        "import sys, zoo, keras, numpy\n"
        "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
        "model.predict(numpy.zeros((1, 4)), verbose=0)\n"
        "print('ours', file=sys.stderr)\n"
    )
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stderr == "ours\n"

"""zoo.seed: one seeding call that repeats runs and never imports TensorFlow for nothing."""

import os
import subprocess
import sys

import pytest

import zoo

BACKEND = os.environ.get("KERAS_BACKEND", "jax")

PROBE = """
import sys, numpy as np, random, keras, zoo
draws = []
for _ in range(2):
    zoo.seed(7)
    draws.append((random.random(), float(np.random.rand()),
                  keras.ops.convert_to_numpy(keras.random.uniform((3,))).tolist(),
                  keras.ops.convert_to_numpy(keras.layers.Dense(2)(np.ones((1, 2)))).tolist()))
assert draws[0] == draws[1], draws
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def test_seeding_twice_gives_the_same_numbers_and_leaves_tensorflow_alone():
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = BACKEND == "tensorflow"  # only the TensorFlow backend needs it
    assert f"tensorflow imported: {imported}" in result.stdout
    if not imported:  # no start-up logs of a framework nobody asked for
        assert result.stderr.strip() == ""


@pytest.mark.parametrize("value", [-1, 1.5, "3", True, None])
def test_a_seed_that_is_not_a_non_negative_int_is_refused(value):
    with pytest.raises(zoo.ZooError, match="non-negative int"):
        zoo.seed(value)

"""`make accuracy` (benchmarks/accuracy.py): its arithmetic and verdicts, and one real seed."""

import json
import os
import subprocess
import sys

import keras

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
sys.path.insert(0, os.path.abspath(BENCHMARKS))
import accuracy  # noqa: E402  (benchmarks/accuracy.py lives outside the package)

BACKEND = keras.backend.backend()


def held(table):
    return {text.split(":")[1].split("(")[0].strip(): ok for text, ok in accuracy.verdicts(table)}


def test_mean_worst_and_every_target_are_computed_per_dataset():
    table = accuracy.summarise(
        {
            "jax": {"digits": [0.98, 0.97, 0.975], "mnist-t10k": [0.99, 0.988]},
            "torch": {"digits": [0.975, 0.976, 0.974], "mnist-t10k": [0.986, 0.982]},
        }
    )
    jax = table["digits"]["jax"]
    assert abs(jax["mean"] - 0.975) < 1e-12 and jax["worst"] == 0.97
    assert table["mnist-t10k"]["torch"]["mean"] == 0.984
    verdicts = held(table)
    assert verdicts["every mean >= 0.97"] and verdicts["worst seed 0.9700 >= 0.96"]
    assert verdicts["means within 0.005"]
    assert verdicts["every mean >= 0.985"] is False  # torch's 0.984 misses


def test_a_low_seed_or_backends_apart_are_reported_missed():
    table = accuracy.summarise(
        {"jax": {"digits": [0.99, 0.99, 0.95]}, "torch": {"digits": [0.97, 0.97, 0.97]}}
    )
    verdicts = held(table)
    assert verdicts["every mean >= 0.97"]  # jax 0.9767, torch 0.97
    assert verdicts["worst seed 0.9500 >= 0.96"] is False
    assert verdicts["means within 0.005"] is False  # 0.0067 apart
    text = accuracy.markdown(table, "lenet5_modern")
    assert "| digits | jax | 0.9900 | 0.9900 | 0.9500 | 0.9767 | 0.9500 |" in text
    assert "- MISSED: digits: worst seed 0.9500 >= 0.96" in text
    assert "- met: digits: every mean >= 0.97" in text


def test_one_seed_on_this_backend_end_to_end(tmp_path):
    """The real run `make accuracy` makes, one seed: the default recipe reaches 0.96 here."""
    out = tmp_path / "accuracy.json"
    command = [sys.executable, os.path.join(BENCHMARKS, "accuracy.py"), "--backends", BACKEND]
    command += ["--datasets", "digits", "--seeds", "0", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    row = json.loads(out.read_text())["table"]["digits"][BACKEND]
    assert row["seeds"][0] >= 0.96, done.stdout
    assert f"| digits | {BACKEND} | {row['seeds'][0]:.4f} |" in done.stdout
    # one backend: no spread to judge; the exit status follows the verdicts
    assert done.returncode == (0 if row["seeds"][0] >= 0.97 else 1), done.stderr[-2000:]

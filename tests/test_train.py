"""zoo-train end to end on this backend: targets, artifacts, resume, errors."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import BACKENDS, MNIST_DIR, installed, needs, needs_shared_mnist, python_lines

from zoo.cli import zoo_train as main
from zoo.errors import EXIT_BAD_INPUT, EXIT_DIVERGED
from zoo.training.run import train

BACKEND = keras.backend.backend()


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_lenet_on_digits_reaches_095_with_the_default_recipe(tmp_path):
    result = train(output=str(tmp_path), quiet=True)
    metrics = result.metrics
    assert metrics["test_accuracy"] >= 0.95
    assert metrics["epochs_completed"] == 30 and metrics["params"] == 61_706
    saved = read_json(tmp_path / "metrics.json")
    assert saved == metrics
    for key in (
        "backend",
        "keras_version",
        "backend_version",
        "model",
        "dataset",
        "params",
        "epochs_completed",
        "test_loss",
        "test_accuracy",
        "train_seconds",
        "train_images_per_second",
        "seed",
    ):
        assert key in saved
    assert saved["backend"] == BACKEND
    assert read_json(tmp_path / "classes.json") == [str(d) for d in range(10)]
    rows = (tmp_path / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 31
    for name in ("model.keras", "curves.png", "confusion_matrix.png"):
        assert (tmp_path / name).stat().st_size > 1000
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []

    # The saved model reproduces the reported accuracy.
    model = keras.saving.load_model(tmp_path / "model.keras")
    from zoo import data

    digits = data.load_dataset("digits")
    x = data.prepare_arrays(digits.test.images, (28, 28, 1))
    predictions = np.argmax(model.predict(x, verbose=0), axis=-1)
    accuracy = np.mean(predictions == digits.test.labels)
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-6)


@needs_shared_mnist
def test_lenet_modern_on_mnist_t10k_reaches_0975(tmp_path):
    result = train(model="lenet5_modern", dataset=MNIST_DIR, output=str(tmp_path), quiet=True)
    metrics = result.metrics
    assert metrics["train_images"] + 800 == 8000  # 10 % of the first 8,000 validate
    assert metrics["test_images"] == 2000
    assert metrics["test_accuracy"] >= 0.975


def test_alexnet_learns_digits_at_its_minimum_input(tmp_path):
    metrics = train(
        model="alexnet", image_size=[67, 67], epochs=4, output=str(tmp_path), quiet=True
    ).metrics
    assert metrics["input_shape"] == [67, 67, 3]
    assert metrics["test_accuracy"] >= 0.80  # 10 classes: the majority class is 0.10


def test_same_seed_same_accuracy(tmp_path):
    options = dict(model="lenet5_modern", epochs=2, limit=400, quiet=True)
    first = train(output=str(tmp_path / "a"), **options).metrics
    second = train(output=str(tmp_path / "b"), **options).metrics
    assert round(first["test_accuracy"], 3) == round(second["test_accuracy"], 3)
    assert first["test_loss"] == pytest.approx(second["test_loss"], rel=1e-3)


def test_resume_continues_history_and_epochs(tmp_path):
    options = dict(model="lenet5_modern", limit=300, output=str(tmp_path), quiet=True)
    train(epochs=2, **options)
    first_rows = (tmp_path / "history.csv").read_text().splitlines()
    metrics = train(epochs=3, resume=True, **options).metrics
    rows = (tmp_path / "history.csv").read_text().splitlines()
    assert metrics["epochs_completed"] == 3
    assert len(rows) == 4 and rows[:3] == first_rows
    assert read_json(tmp_path / "state.json")["epochs_completed"] == 3


def test_model_saved_here_loads_on_the_other_backends(tmp_path):
    train(model="lenet5_modern", epochs=1, limit=200, output=str(tmp_path), quiet=True)
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    here = keras.saving.load_model(tmp_path / "model.keras").predict(x, verbose=0)
    script = (
        "import sys, numpy as np, keras, zoo.layers\n"
        "m = keras.saving.load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))\n"
    )
    others = sorted(b for b in BACKENDS if b != BACKEND and installed(b))
    if not others:
        pytest.skip("no other backend is installed here")
    for other in others:
        out = tmp_path / f"{other}.npy"
        env = {**os.environ, "KERAS_BACKEND": other}
        subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                str(tmp_path / "model.keras"),
                str(tmp_path / "x.npy"),
                str(out),
            ],
            check=True,
            env=env,
            timeout=300,
        )
        np.testing.assert_allclose(np.load(out), here, atol=1e-4)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--model", "resnet"], ["Unknown model 'resnet'"]),
        (["--dataset", "imagenet"], ["unknown dataset 'imagenet'"]),
        (["--epochs", "0"], ["--epochs must be at least 1"]),
        (["--learning-rate", "-0.1"], ["--learning-rate must be a positive number"]),
        (["--validation-split", "1.5"], ["--validation-split must be in [0, 1)"]),
        (["--image-size", "8", "8"], ["too small", "12x12"]),
        (["--resume"], ["--resume:", "holds no completed epoch"]),
        (["--classes", "5"], ["labels run from 0 to 9", "5 classes", "--classes 10"]),
    ],
)
def test_bad_input_exits_with_a_message(tmp_path, capsys, argv, words):
    code = main([*argv, "--output", str(tmp_path / "out"), "--quiet"])
    assert code == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert error.startswith("zoo-train: error:")
    for word in words:
        assert word in error


def test_folder_without_images_and_unwritable_output(tmp_path, capsys):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    assert main(["--dataset", str(tmp_path / "empty"), "--output", str(tmp_path / "o")]) == 2
    assert "no images found" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--output", str(blocker / "sub"), "--epochs", "1"]) == EXIT_BAD_INPUT
    assert "cannot write to output folder" in capsys.readouterr().err


def test_other_backend_after_keras_import_is_refused(capsys):
    other = "torch" if BACKEND != "torch" else "jax"
    assert main(["--backend", other, "--epochs", "1"]) == EXIT_BAD_INPUT
    assert f"already imported with the '{BACKEND}' backend" in capsys.readouterr().err


def test_diverging_run_stops_with_exit_code_3(tmp_path, capsys):
    code = main(
        [
            "--model",
            "lenet5_modern",
            "--learning-rate",
            "1e12",
            "--optimizer",
            "sgd",
            "--epochs",
            "3",
            "--limit",
            "200",
            "--output",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == EXIT_DIVERGED
    assert "training diverged" in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


@needs("torch", "jax")
def test_backend_flag_sets_the_backend_in_a_fresh_process(tmp_path):
    other = "torch" if BACKEND != "torch" else "jax"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoo",
            "train",
            "--backend",
            other,
            "--model",
            "lenet5_modern",
            "--epochs",
            "1",
            "--limit",
            "64",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"backend     {other}" in result.stdout
    assert read_json(tmp_path / "metrics.json")["backend"] == other


def test_early_stopping_and_tensorboard(tmp_path):
    """TensorBoard's writer needs TensorFlow: without it (a one-backend install) only early
    stopping is checked."""
    tensorboard = installed("tensorflow") and installed("tensorboard")
    metrics = train(
        model="lenet5_modern",
        limit=60,
        epochs=60,
        early_stopping=2,
        tensorboard=tensorboard,
        output=str(tmp_path),
        quiet=True,
    ).metrics
    # 54 training images overfit quickly: validation loss stops improving long before 60.
    assert metrics["epochs_completed"] < 60
    logs = [name for _, _, names in os.walk(tmp_path / "logs") for name in names]
    assert any("tfevents" in name for name in logs) == tensorboard


EXTRAS = ("jax", "sklearn", "matplotlib")  # what Keras imports for features a run never uses


def run_python(code):
    """Run ``code`` in a fresh process on this backend; returns its last line of output."""
    return python_lines(code)[-1]


def test_a_lean_keras_import_skips_the_extras_and_leaves_them_importable():
    """``import_keras_lean`` hides Keras's optional imports only while Keras imports."""
    extras = [name for name in EXTRAS if installed(name)]
    code = (
        "import sys\n"
        "from zoo.accel.runtime import import_keras_lean\n"
        "keras = import_keras_lean()\n"
        f"loaded = [m for m in {extras!r} if m in sys.modules]\n"
        "import importlib\n"
        f"later = [importlib.import_module(m).__name__ for m in {extras!r}]\n"
        "total = float(keras.ops.sum(keras.ops.ones((2, 3))))\n"
        "print(keras.backend.backend(), loaded, later, total)\n"
    )
    expected_loaded = [BACKEND] if BACKEND == "jax" else []
    assert run_python(code) == f"{BACKEND} {expected_loaded} {extras} 6.0"


def test_lean_xla_flag_is_added_for_the_measured_jaxlib_and_a_users_choice_kept(monkeypatch):
    import importlib.metadata

    from zoo.accel.runtime import LEAN_XLA_FLAG, use_lean_xla_flags

    versions = {"jaxlib": "0.10.2"}
    monkeypatch.setattr(importlib.metadata, "version", lambda name: versions[name])
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    assert use_lean_xla_flags()
    assert os.environ["XLA_FLAGS"].split() == [
        "--xla_force_host_platform_device_count=2",
        LEAN_XLA_FLAG,
    ]
    assert use_lean_xla_flags() and os.environ["XLA_FLAGS"].count(LEAN_XLA_FLAG) == 1
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true")  # the user's own
    assert not use_lean_xla_flags()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=true"
    monkeypatch.delenv("XLA_FLAGS")
    versions["jaxlib"] = "0.11.0"  # not measured: XLA would abort on a flag it lost
    assert not use_lean_xla_flags() and "XLA_FLAGS" not in os.environ


def test_jax_compilation_cache_goes_under_the_users_cache_and_their_choice_wins(
    tmp_path, monkeypatch
):
    from zoo.accel.runtime import use_jax_compilation_cache

    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_COMPILATION_CACHE_MAX_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "2")  # the user's
    assert use_jax_compilation_cache() == str(tmp_path / "zoo" / "jax")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "2"
    assert int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]) == 512 * 2**20
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "")  # off
    assert use_jax_compilation_cache() is None and os.environ["JAX_COMPILATION_CACHE_DIR"] == ""


@pytest.mark.skipif(BACKEND != "jax", reason="a JAX setting")
def test_zoo_train_on_jax_keeps_its_compiled_steps_for_the_next_run(tmp_path, monkeypatch):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = f"['--epochs', '1', '--limit', '64', '--output', {str(tmp_path / 'a')!r}, '--quiet']"
    own = f"from zoo.cli import zoo_train as main\nprint(main({run}))"
    assert run_python(own) == "0"
    cached = list((tmp_path / "cache" / "zoo" / "jax").iterdir())
    assert cached, "zoo-train wrote nothing to JAX's compilation cache"
    session = (
        "import os, zoo\n"
        f"zoo.train(epochs=1, limit=64, output={str(tmp_path / 'b')!r}, quiet=True)\n"
        "print(os.environ.get('JAX_COMPILATION_CACHE_DIR'))\n"
    )
    assert run_python(session) == "None"  # a user's session is left as it is


@pytest.mark.skipif(BACKEND != "jax", reason="an XLA setting")
def test_zoo_train_on_jax_sets_the_lean_xla_flag_in_its_own_process_only(tmp_path):
    import importlib.metadata

    from zoo.accel.runtime import LEAN_XLA_FLAG, LEAN_XLA_JAXLIB

    measured = importlib.metadata.version("jaxlib").startswith(LEAN_XLA_JAXLIB)
    run = f"['--epochs', '1', '--limit', '64', '--output', {str(tmp_path / 'a')!r}, '--quiet']"
    own = "import os\nfrom zoo.cli import zoo_train as main\n"
    own += f"main({run})\nprint(repr(os.environ.get('XLA_FLAGS', '')))"
    assert (LEAN_XLA_FLAG in run_python(own)) == measured
    session = (
        "import os, zoo\n"
        f"zoo.train(epochs=1, limit=64, output={str(tmp_path / 'b')!r}, quiet=True)\n"
        "print(repr(os.environ.get('XLA_FLAGS', '')))\n"
    )
    assert LEAN_XLA_FLAG not in run_python(session)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="a TensorFlow setting")
def test_zoo_train_on_tensorflow_asks_for_onednn_in_its_own_process_only(tmp_path, monkeypatch):
    run = f"['--epochs', '1', '--limit', '64', '--output', {str(tmp_path / 'a')!r}, '--quiet']"
    own = "import os\nfrom zoo.cli import zoo_train as main\n"
    own += f"main({run})\nprint(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert run_python(own) == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the user's choice is kept
    assert run_python(own.replace("'a'", "'b'")) == "0"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    session = (
        "import os, zoo\n"
        f"zoo.train(epochs=1, limit=64, output={str(tmp_path / 'c')!r}, quiet=True)\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))\n"
    )
    assert run_python(session) == "None"


@pytest.mark.skipif(BACKEND == "jax", reason="JAX is this run's backend")
def test_zoo_train_on_tensorflow_or_torch_never_imports_jax(tmp_path):
    """The command owns its process: Keras's import of JAX (for Orbax) is skipped there."""
    code = (
        "import sys\n"
        "from zoo.cli import zoo_train as main\n"
        f"status = main(['--epochs', '1', '--limit', '64', '--output', {str(tmp_path)!r}, "
        "'--quiet'])\n"
        "print(status, 'jax' in sys.modules)\n"
    )
    assert run_python(code) == "0 False"
    assert os.path.isfile(tmp_path / "metrics.json")


def test_zoo_train_called_in_a_session_leaves_keras_whole(tmp_path):
    """In a user's own process nothing is hidden: Keras's scikit-learn wrappers still work."""
    code = (
        "import zoo\n"
        f"zoo.train(epochs=1, limit=64, output={str(tmp_path)!r}, quiet=True)\n"
        "import keras, sklearn.base\n"
        "print(issubclass(keras.wrappers.SKLearnClassifier, sklearn.base.BaseEstimator))\n"
    )
    assert run_python(code) == "True"


@pytest.mark.skipif(BACKEND == "tensorflow", reason="TensorFlow is this run's backend")
def test_a_run_on_jax_or_torch_never_imports_tensorflow(tmp_path):
    """Seeding must not pull in TensorFlow (seconds and hundreds of MB) when it is not used."""
    code = (
        "import sys, zoo\n"
        f"zoo.train(model='lenet5_modern', epochs=1, limit=64, output={str(tmp_path)!r}, "
        "quiet=True)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    assert run_python(code) == "False"

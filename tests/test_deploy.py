"""zoo-export and zoo-predict on this backend: every format it can write, and bad input."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import needs, python_lines
from PIL import Image

import zoo
from zoo import cli
from zoo.deploy import _onnx_repair, model_file, predict, safe_output
from zoo.deploy import export as exporting
from zoo.training.run import train

BACKEND = keras.backend.backend()
TOLERANCE = 1e-4  # the bound for an exported model against Keras
# ONNX export on this backend: its converter, and onnxruntime for the check (zoo[export]).
needs_onnx_export = needs(exporting.EXPORTER[("onnx", BACKEND)], "onnx", "onnxruntime")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short zoo-train run on the digits: model.keras and classes.json."""
    output = tmp_path_factory.mktemp("run")
    train(output=str(output), epochs=1, limit=300, quiet=True)
    return output


@pytest.fixture(scope="module")
def digits_batch():
    from zoo import data

    digits = data.load_dataset("digits")
    return data.prepare_arrays(digits.test.images[:8], (28, 28, 1))


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def export_or_refusal(model, format, output):
    """Export where this backend can; elsewhere check the refusal names a backend that can."""
    if BACKEND in exporting.CAN_EXPORT[format]:
        return exporting.export(model, format, output)
    with pytest.raises(model_file.DeployError, match="KERAS_BACKEND=jax or tensorflow"):
        exporting.export(model, format, output)
    assert not os.path.exists(output)
    pytest.skip(f"{BACKEND} cannot export {format}; the refusal is checked")


@needs_onnx_export
def test_onnx_export_runs_in_onnxruntime_like_keras(run_dir, digits_batch, tmp_path):
    output = tmp_path / "lenet5.onnx"
    report = zoo.export(run_dir / "model.keras", "onnx", output)
    assert report["max_abs_difference"] <= TOLERANCE and report["backend"] == BACKEND
    model = model_file.load_zoo_model(run_dir / "model.keras")
    # Real digits, a batch size other than the check's: the batch axis stays dynamic.
    np.testing.assert_allclose(
        exporting.run_onnx(str(output), digits_batch),
        model.predict(digits_batch, verbose=0),
        atol=TOLERANCE,
    )
    assert leftovers(tmp_path) == []


def test_saved_model_export_reloads_like_keras(run_dir, digits_batch, tmp_path):
    output = tmp_path / "lenet5_savedmodel"
    report = export_or_refusal(run_dir / "model.keras", "saved_model", str(output))
    assert report["max_abs_difference"] <= TOLERANCE
    model = model_file.load_zoo_model(run_dir / "model.keras")
    np.testing.assert_allclose(
        exporting.run_saved_model(str(output), digits_batch),
        model.predict(digits_batch, verbose=0),
        atol=TOLERANCE,
    )
    # Exporting again is refused, unless --overwrite, which replaces the folder whole.
    with pytest.raises(model_file.DeployError, match="already exists.*--overwrite"):
        exporting.export(model, "saved_model", str(output))
    (output / "variables" / "stale").write_text("left by the first export?")
    with pytest.raises(model_file.DeployError, match="not a previous zoo export"):
        exporting.export(model, "saved_model", str(output), overwrite=True)
    (output / "variables" / "stale").unlink()
    exporting.export(model, "saved_model", str(output), overwrite=True)
    assert (output / "saved_model.pb").is_file() and leftovers(tmp_path) == []


@needs_onnx_export
@pytest.mark.parametrize("name", ["lenet5_modern", "alexnet_torchvision"])
def test_max_pooling_models_to_onnx(tmp_path, name):
    """Max pooling, and AlexNet's own layers; on JAX this needs the MaxPool repair."""
    model = zoo.get_model(name, classes=5)
    output = tmp_path / f"{name}.onnx"
    assert exporting.export(model, "onnx", output)["max_abs_difference"] <= TOLERANCE
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(BACKEND != "jax", reason="the repair is for jax2onnx's output")
def test_jax2onnx_max_pool_repair(tmp_path):
    """Keras's own export fails in onnxruntime; after the repair it runs, as Keras does."""
    import onnxruntime

    model = zoo.get_model("lenet5_modern")
    for layer in model.layers:  # Keras's own pooling, as in a loaded model.keras (not the
        vars(layer).pop(
            "call", None
        )  # reshape zoo.accel.jax_pooling gives a freshly built one on JAX)
    images = exporting.check_batch(model)
    expected = model_file.keras_outputs(model, images)
    path = str(tmp_path / "raw.onnx")
    model.export(path, format="onnx", verbose=False)
    with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument):
        exporting.run_onnx(path, images)
    assert _onnx_repair.repair_jax2onnx_max_pool(path) == 2  # two pooling layers
    np.testing.assert_allclose(exporting.run_onnx(path, images), expected, atol=TOLERANCE)
    assert _onnx_repair.repair_jax2onnx_max_pool(path) == 0  # nothing left to repair


@needs_onnx_export
def test_export_command_line(run_dir, tmp_path):
    output = tmp_path / "cli.onnx"
    argv = [str(run_dir / "model.keras"), "--format", "onnx", "--output", str(output)]
    # As a user runs it: nothing but the zoo's own line (PyTorch's tracer warned ~100 times).
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "export", *argv], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"wrote {output}") and done.stderr == ""
    assert output.stat().st_size > 200_000  # 61,706 float32 weights


@needs_onnx_export
def test_export_with_feature_maps_names_every_map_and_matches_keras(
    run_dir, digits_batch, tmp_path, capsys
):
    """--feature-maps: the probabilities, then each conv/pool output in layer order, by name."""
    output = tmp_path / "maps.onnx"
    argv = [str(run_dir / "model.keras"), "--format", "onnx", "--output", str(output)]
    assert cli.zoo_export([*argv, "--feature-maps"]) == 0
    assert f"wrote {output}" in capsys.readouterr().out
    model = model_file.load_zoo_model(run_dir / "model.keras")
    got = exporting.run_onnx(str(output), digits_batch, all_outputs=True)
    # lenet5: the four feature layers, in the model's order on every backend (issue 31).
    assert list(got) == ["probabilities", "conv1", "pool1", "conv2", "pool2"]
    np.testing.assert_allclose(
        got["probabilities"], model_file.keras_outputs(model, digits_batch), atol=TOLERANCE
    )
    for name in ["conv1", "pool1", "conv2", "pool2"]:
        layer = model.get_layer(name)
        inner = keras.Model(model.inputs[0], layer.output)
        want = keras.ops.convert_to_numpy(inner(digits_batch, training=False))
        assert got[name].shape == want.shape, name
        np.testing.assert_allclose(got[name], want, atol=TOLERANCE, err_msg=name)
    # run_onnx without all_outputs: the first output, the probabilities.
    plain = exporting.run_onnx(str(output), digits_batch)
    assert plain.shape == (len(digits_batch), 10)


def test_feature_maps_are_for_onnx_only(run_dir, tmp_path):
    with pytest.raises(model_file.DeployError, match="onnx only"):
        exporting.export(run_dir / "model.keras", "saved_model", tmp_path / "sm", feature_maps=True)
    assert not (tmp_path / "sm").exists()


def test_predict_prints_top_classes_with_saved_names(run_dir, digits_batch, tmp_path, capsys):
    model = model_file.load_zoo_model(run_dir / "model.keras")
    paths = []
    for i, image in enumerate(digits_batch[:3]):
        pixels = np.round(image[..., 0] * 255).astype("uint8")
        paths.append(str(tmp_path / f"digit{i}.png"))
        Image.fromarray(pixels, mode="L").save(paths[-1])
    exact = np.round(digits_batch[:3] * 255) / 255  # what the PNGs hold
    expected = model.predict(exact.astype("float32"), verbose=0)

    results = predict.classify(model, paths, top=3)
    for row, best in zip(expected, results, strict=True):
        assert [index for index, _ in best] == list(np.argsort(-row)[:3])
        np.testing.assert_allclose([p for _, p in best], np.sort(row)[::-1][:3], atol=1e-5)

    with open(run_dir / "classes.json") as handle:
        names = json.load(handle)
    assert cli.zoo_predict([str(run_dir / "model.keras"), *paths, "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 * 3 and lines[0] == paths[0]
    top_name = lines[1].split()[1]
    assert top_name == names[int(np.argmax(expected[0]))]
    assert float(lines[1].split()[0]) == pytest.approx(float(expected[0].max()), abs=1e-4)


def test_predict_in_its_own_process_imports_keras_as_zoo_train_does(
    run_dir, digits_batch, tmp_path
):
    """Without the packages a command never uses (JAX unless it is the backend, matplotlib,
    scikit-learn) and on PyTorch without TorchDynamo: seconds of every command's start-up."""
    image = tmp_path / "digit.png"
    Image.fromarray(np.round(digits_batch[0, ..., 0] * 255).astype("uint8"), mode="L").save(image)
    code = (
        "import sys\n"
        "from zoo.cli import zoo_predict\n"
        f"status = zoo_predict([{str(run_dir / 'model.keras')!r}, {str(image)!r}])\n"
        "extras = ('jax', 'matplotlib', 'sklearn', 'torch._dynamo')\n"
        "print(status, [name for name in extras if name in sys.modules])\n"
    )
    lines = python_lines(code)
    assert lines[0] == str(image) and len(lines) == 1 + 3 + 1  # the image, its top 3, ours
    assert lines[-1] == f"0 {['jax'] if BACKEND == 'jax' else []}"


def test_predict_without_classes_json_prints_indices(run_dir, digits_batch, tmp_path, capsys):
    model_path = tmp_path / "model.keras"
    model_path.write_bytes((run_dir / "model.keras").read_bytes())
    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), "uint8"), mode="L").save(image)
    assert cli.zoo_predict([str(model_path), str(image), "--top", "1"]) == 0
    captured = capsys.readouterr()
    assert "no classes.json beside the model" in captured.err
    assert captured.out.splitlines()[1].split()[1] in [str(d) for d in range(10)]


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "model file not found"),
        ("not_keras", "is not a Keras model file"),
        ("not_classifier", "is not a zoo image classifier"),
    ],
)
def test_bad_model_files(tmp_path, capsys, case, message):
    path = tmp_path / "model.keras"
    if case == "not_keras":
        path.write_text("not a model")
    elif case == "not_classifier":
        inputs = keras.Input((4,))
        keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(path)
    for command in (cli.zoo_export, cli.zoo_predict):
        argv = [str(path), "--format", "onnx", "--output", str(tmp_path / "out.onnx")]
        if command is cli.zoo_predict:
            argv = [str(path), str(tmp_path / "image.png")]
        assert command(argv) == 2
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("name", ["model.onnx", "model.tflite", "weights.pth"])
def test_an_exported_or_foreign_file_is_named_in_one_whole_line(tmp_path, capsys, name):
    path = tmp_path / name
    path.write_bytes(b"\x08\x07not keras")
    assert cli.zoo_predict([str(path), str(tmp_path / "image.png")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.endswith("or one saved with model.save().\n")
    assert f"{path} is a" in error and "[...]" not in error and "Traceback" not in error


def test_bad_export_and_predict_arguments(run_dir, tmp_path, capsys):
    model = str(run_dir / "model.keras")
    assert cli.zoo_export([model, "--format", "onnx", "--output", "/no/such/dir/x.onnx"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        cli.zoo_export([model, "--format", "tflite", "--output", str(tmp_path / "x")])
    assert stop.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
    with pytest.raises(model_file.DeployError, match="unknown format 'pb'"):
        exporting.export(model, "pb", tmp_path / "x")
    assert cli.zoo_predict([model, str(tmp_path / "missing.png")]) == 2
    assert "image not found" in capsys.readouterr().err
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    assert cli.zoo_predict([model, str(broken)]) == 2
    assert "cannot read image" in capsys.readouterr().err
    names = tmp_path / "names.json"
    names.write_text('["a", "b"]')
    assert cli.zoo_predict([model, str(broken), "--classes", str(names)]) == 2
    assert "should list 10 class names" in capsys.readouterr().err


def folder_fingerprint(folder):
    """Every path under ``folder`` with its bytes' SHA-256, to prove nothing was touched."""
    import hashlib

    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_file()
        else "folder"
        for path in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("overwrite", [False, True])
def test_export_never_replaces_a_folder_the_user_owns(run_dir, tmp_path, capsys, overwrite):
    """The data-loss bug: a SavedModel export deleted an existing folder and all it held."""
    output = tmp_path / "my_models"
    (output / "notes").mkdir(parents=True)
    (output / "thesis.tex").write_text("years of work")
    (output / "notes" / "day1.txt").write_text("do not delete")
    before = folder_fingerprint(tmp_path)
    argv = [str(run_dir / "model.keras"), "--format", "saved_model", "--output", str(output)]
    assert cli.zoo_export(argv + ["--overwrite"] * overwrite) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    if BACKEND in exporting.CAN_EXPORT["saved_model"]:
        assert f"{output} already exists" in error
        assert ("not a previous zoo export" in error) == overwrite
    assert folder_fingerprint(tmp_path) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_onnx_export_never_replaces_a_file_the_user_owns(run_dir, tmp_path, capsys, overwrite):
    output = tmp_path / "model.onnx"
    output.write_bytes(b"someone else's model")
    (tmp_path / "model.onnx.data").write_bytes(b"weights")
    before = folder_fingerprint(tmp_path)
    argv = [str(run_dir / "model.keras"), "--format", "onnx", "--output", str(output)]
    assert cli.zoo_export(argv + ["--overwrite"] * overwrite) == 2
    error = capsys.readouterr().err
    assert f"{output} already exists" in error and error.count("\n") == 1
    assert folder_fingerprint(tmp_path) == before


@needs_onnx_export
def test_onnx_overwrite_replaces_only_a_previous_export(run_dir, tmp_path, capsys):
    output = tmp_path / "lenet5.onnx"
    argv = [str(run_dir / "model.keras"), "--format", "onnx", "--output", str(output)]
    assert cli.zoo_export(argv) == 0
    first = output.read_bytes()
    assert cli.zoo_export(argv) == 2  # exists: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err and output.read_bytes() == first
    (tmp_path / "lenet5.onnx.data").write_bytes(b"not part of the export")
    assert cli.zoo_export(argv + ["--overwrite"]) == 2  # a file the export did not write
    assert "lenet5.onnx.data already exists" in capsys.readouterr().err
    (tmp_path / "lenet5.onnx.data").unlink()
    assert cli.zoo_export(argv + ["--overwrite"]) == 0
    assert safe_output.previous_export("onnx", str(output)) == {str(output)}
    assert leftovers(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["lenet5.onnx"]


def test_saved_model_export_into_an_empty_folder(run_dir, tmp_path):
    output = tmp_path / "empty"
    output.mkdir()
    if BACKEND not in exporting.CAN_EXPORT["saved_model"]:
        with pytest.raises(model_file.DeployError, match="KERAS_BACKEND=jax or tensorflow"):
            exporting.export(run_dir / "model.keras", "saved_model", str(output))
        assert os.listdir(output) == []
        pytest.skip(f"{BACKEND} cannot export saved_model; the refusal is checked")
    exporting.export(run_dir / "model.keras", "saved_model", str(output))
    assert json.loads((output / "zoo-export.json").read_text())["backend"] == BACKEND
    assert (output / "saved_model.pb").is_file() and leftovers(tmp_path) == []


@needs_onnx_export
def test_export_into_a_read_only_folder(run_dir, tmp_path, capsys, monkeypatch):
    """As root every folder is writable, so the refusal of the OS is simulated."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(safe_output.tempfile, "mkdtemp", refuse)
    argv = [str(run_dir / "model.keras"), "--format", "onnx", "--output", str(tmp_path / "m")]
    assert cli.zoo_export(argv) == 2
    error = capsys.readouterr().err
    assert f"cannot write in {tmp_path}: Permission denied" in error and error.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_zoo_train_and_zoo_export_are_plain_functions_after_any_import():
    """``zoo.train``/``zoo.export`` stay the functions whichever modules were imported first."""
    import types

    code = (
        "import zoo.training.run, zoo.deploy.export, zoo, types; "
        "print(type(zoo.train) is types.FunctionType, type(zoo.export) is types.FunctionType, "
        "zoo.train is zoo.training.run.train, zoo.export is zoo.deploy.export.export)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * 4
    assert type(zoo.train) is types.FunctionType and type(zoo.export) is types.FunctionType

"""Every builder error names the problem and the fix."""

import keras
import pytest

import zoo


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(input_shape=(28, 28)), ["(height, width, channels)", "(28, 28, 1)"]),
        (dict(input_shape=(1, 28, 28, 1)), ["(height, width, channels)"]),
        (dict(input_shape="28x28"), ["(height, width, channels)"]),
        (dict(input_shape=(28, 0, 1)), ["width=0", "positive integer"]),
        (dict(input_shape=(28, 28, 1.5)), ["channels=1.5"]),
        (dict(input_shape=(None, None, 1)), ["include_top=False"]),
        (dict(input_shape=(1, 28, 28)), ["channels-first", "(28, 28, 1)", "transpose"]),
        # 10 -> conv1 10 -> pool1 5 -> conv2 1 -> pool2 needs 2 pixels.
        (dict(input_shape=(10, 10, 1)), ["too small", "minimum input is 12x12", "'pool2'"]),
        # 8 -> conv1 8 -> pool1 4 -> conv2 needs 5 pixels.
        (dict(input_shape=(8, 8, 1)), ["(12, 12, 1)", "'conv2'", "kernel covers 5 pixels"]),
        (dict(variant="fancy"), ["variant", "'fancy'", "'classic'", "'modern'"]),
        (dict(classes=0), ["classes", ">= 1", "0"]),
        (dict(classes=2.5), ["classes", ">= 1"]),
        (dict(include_top=False, pooling="mean"), ["pooling", "'avg'", "'max'"]),
        (dict(input_tensor=[[1.0]]), ["input_tensor", "keras.Input"]),
    ],
)
def test_lenet_rejects_bad_arguments(kwargs, words):
    with pytest.raises(ValueError) as error:
        zoo.lenet(**kwargs)
    for word in words:
        assert word in str(error.value)


def test_alexnet_channels_first_shape_suggests_the_transpose():
    with pytest.raises(ValueError, match="channels-first") as error:
        zoo.alexnet(input_shape=(3, 224, 224))
    assert "(224, 224, 3)" in str(error.value)


@pytest.mark.parametrize(
    "variant, size, minimum, layer",
    [("original", 66, 67, "pool5"), ("torchvision", 62, 63, "pool5"), ("original", 20, 67, "")],
)
def test_alexnet_too_small_names_minimum_and_layer(variant, size, minimum, layer):
    with pytest.raises(ValueError) as error:
        zoo.alexnet(input_shape=(size, size, 3), variant=variant)
    message = str(error.value)
    assert f"minimum input is {minimum}x{minimum}" in message
    assert f"input_shape=({minimum}, {minimum}, 3)" in message
    assert "vanishes at layer '" + layer in message


def test_alexnet_exact_minimum_builds():
    for variant, minimum in (("original", 67), ("torchvision", 63)):
        model = zoo.alexnet(input_shape=(minimum, minimum, 3), variant=variant, classes=2)
        assert tuple(model.get_layer("pool5").output.shape[1:3]) == (1, 1)


def test_alexnet_rejects_bad_dropout_and_variant():
    with pytest.raises(ValueError, match=r"dropout must be a rate in \[0, 1\)"):
        zoo.alexnet(input_shape=(67, 67, 3), dropout=1.5)
    with pytest.raises(ValueError, match="'original', 'torchvision'"):
        zoo.alexnet(variant="resnet")


def test_weights_round_trip_and_mismatch(tmp_path):
    source = zoo.lenet(classes=3)
    path = tmp_path / "lenet.weights.h5"
    source.save_weights(path)
    loaded = zoo.lenet(classes=3, weights=str(path))
    for a, b in zip(source.get_weights(), loaded.get_weights(), strict=True):
        assert (a == b).all()

    with pytest.raises(ValueError, match="does not match model 'lenet5'") as error:
        zoo.lenet(classes=10, weights=str(path))
    assert "same variant, input_shape, classes" in str(error.value)


def test_weights_path_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        zoo.lenet(weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="'.weights.h5'"):
        zoo.lenet(weights="imagenet")
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(b"not an h5 file")
    with pytest.raises(ValueError, match="does not match"):
        zoo.lenet(weights=str(broken))


def test_input_tensor_too_small_is_caught():
    with pytest.raises(ValueError, match="too small"):
        zoo.lenet(input_tensor=keras.Input(shape=(8, 8, 1)))


def test_every_error_class_is_a_zoo_error_with_one_exit_code():
    from zoo import data, errors, shapes
    from zoo.deploy import model_file
    from zoo.training import distribute
    from zoo.training import run as train

    for error_class in (
        data.DataError,
        model_file.DeployError,
        distribute.DistributeError,
        shapes.SpatialSizeError,
        train.TrainingError,
    ):
        assert issubclass(error_class, errors.ZooError) and issubclass(error_class, ValueError)
        assert error_class("x").exit_code == errors.EXIT_BAD_INPUT == 2
    with pytest.raises(errors.ZooError, match="Unknown variant"):
        zoo.lenet(variant="tiny")


def test_run_command_prints_one_line_or_the_traceback_when_debugging(capsys, monkeypatch):
    from zoo import cli, errors

    def broken(argv):
        raise errors.ZooError("first line\nsecond line: the fix", exit_code=7)

    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    assert cli.run_command("zoo-x", broken, []) == 7
    assert capsys.readouterr().err == "zoo-x: error: first line second line: the fix\n"
    with pytest.raises(errors.ZooError):
        cli.run_command("zoo-x", broken, ["--debug"])
    monkeypatch.setenv("ZOO_DEBUG", "1")
    with pytest.raises(errors.ZooError):
        cli.run_command("zoo-x", broken, [])

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.delenv("ZOO_DEBUG")
    assert cli.run_command("zoo-x", interrupted, []) == 130
    assert capsys.readouterr().err == "zoo-x: interrupted\n"
    assert cli.run_command("zoo-x", lambda argv: argv == ["a"] and 5, ["a", "--debug"]) == 5


@pytest.mark.parametrize("limit", [20, 37, 60])
def test_a_long_quoted_line_is_cut_between_words(limit):
    from zoo.errors import first_line

    message = "File format not supported by `load_model`: only .keras and .h5 files load"
    quoted = first_line(ValueError(message + "\nsecond line"), limit=limit)
    assert len(quoted) <= limit and quoted.endswith(" [...]")
    kept = quoted[:-6]
    assert message.startswith(kept) and message[len(kept)] in " `:"  # whole words only
    assert first_line(ValueError("short\nmore")) == "short"
    assert first_line(ValueError("x" * 300), limit=50) == "x" * 44 + " [...]"  # one long word

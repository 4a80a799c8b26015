"""The registry and the README's model table."""

import pathlib

import pytest

import zoo
from zoo.registry import models_table

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"

EXPECTED = {
    "lenet5": ((28, 28, 1), (12, 12, 1), 61_706, "LeNet"),
    "lenet5_modern": ((28, 28, 1), (12, 12, 1), 61_706, "LeNet"),
    "alexnet": ((227, 227, 3), (67, 67, 3), 62_378_344, "AlexNet"),
    "alexnet_torchvision": ((224, 224, 3), (63, 63, 3), 61_100_840, "AlexNet"),
}


def test_list_models_sorted_and_filtered():
    assert zoo.list_models() == sorted(EXPECTED)
    assert zoo.list_models("lenet*") == ["lenet5", "lenet5_modern"]
    assert zoo.list_models("*torchvision") == ["alexnet_torchvision"]
    assert zoo.list_models("vgg*") == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_model_info(name):
    default, minimum, params, family = EXPECTED[name]
    info = zoo.model_info(name)
    assert info["name"] == name
    assert info["family"] == family
    assert info["default_input_shape"] == default
    assert info["min_input_shape"] == minimum
    assert info["params"] == params
    assert set(info["paper"]) >= {"title", "authors", "year"}
    assert info["paper"]["year"] == (1998 if family == "LeNet" else 2012)


def test_get_model_applies_fixed_arguments_and_overrides():
    modern = zoo.get_model("lenet5_modern", classes=3)
    assert modern.name == "lenet5_modern"
    assert modern.get_layer("conv1").get_config()["activation"] == "relu"
    assert tuple(modern.output_shape) == (None, 3)
    tv = zoo.get_model("alexnet_torchvision", input_shape=(96, 96, 3), classes=2)
    assert tv.get_layer("conv1").filters == 64
    assert tuple(tv.input_shape) == (None, 96, 96, 3)


def test_unknown_model_lists_the_closest_names():
    with pytest.raises(ValueError) as error:
        zoo.get_model("lenet")
    message = str(error.value)
    assert "Unknown model 'lenet'" in message
    assert "Did you mean 'lenet5'" in message
    assert "Registered models: alexnet, alexnet_torchvision, lenet5, lenet5_modern" in message
    with pytest.raises(ValueError, match="Unknown model 'resnet50'"):
        zoo.model_info("resnet50")


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model("lenet5", family="LeNet", paper={})(lambda **kw: None)


def test_readme_model_table_is_generated_from_the_registry():
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- models-table:start -->\n", "\n<!-- models-table:end -->"
    embedded = text[text.index(start) + len(start) : text.index(end)]
    assert embedded == models_table(), "README is stale: paste the output of `python -m zoo`"

"""The registry and the README's model table."""

import pathlib

import pytest

import zoo
from zoo.models import models_table

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
    spec = zoo.model_spec("lenet5")
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model(spec)(lambda **kw: None)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_spec_states_what_its_built_model_has(name):
    """The spec's facts are typed in by hand; the built model is the judge."""
    from zoo.models._builder import min_input_shape

    spec = zoo.model_spec(name)
    model = zoo.get_model(name)
    assert spec.default_input_shape == tuple(model.input_shape[1:])
    assert spec.min_input_shape == min_input_shape(model.layers, model.input_shape[-1])
    assert spec.params == model.count_params()
    assert (spec.classes,) == tuple(model.output_shape[1:])
    assert spec.builder.__name__ in {"lenet", "alexnet"}
    head = model.get_layer(spec.classifier)  # the head's name is the spec's data
    assert head is model.layers[-1] and head.units == spec.classes
    assert zoo.model_info(name)["classifier"] == spec.classifier == "predictions"


def test_model_info_builds_nothing(monkeypatch):
    from zoo.models import _builder

    def refuse(*args, **kwargs):
        raise AssertionError("model_info built a model")

    monkeypatch.setattr(_builder, "assemble", refuse)
    assert zoo.model_info("alexnet")["params"] == 62_378_344
    assert zoo.model_info("lenet5")["recipe"]["epochs"] == 30
    with pytest.raises(AssertionError, match="built a model"):
        zoo.get_model("lenet5")


def imports_of(path):
    """Every ``zoo`` module a file imports, at the top or inside a function."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("zoo")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("zoo"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_the_package_has_no_import_cycle():
    package = pathlib.Path(zoo.__file__).parent
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: imports_of(path) & (set(modules) - {name}) for name, path in modules.items()}
    graph["zoo"] = set()  # the package's lazy names load on attribute access, not at import

    def visit(name, trail):
        if name in trail:
            raise AssertionError("import cycle: " + " -> ".join([*trail, name]))
        for imported in sorted(graph.get(name, ())):
            if imported != "zoo":
                visit(imported, [*trail, name])

    for name in sorted(graph):
        visit(name, [])


def test_readme_model_table_is_generated_from_the_registry():
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- models-table:start -->\n", "\n<!-- models-table:end -->"
    embedded = text[text.index(start) + len(start) : text.index(end)]
    assert embedded == models_table(), "README is stale: paste the output of `python -m zoo`"

"""The package's layout rules (docs/guide/layout.md), checked on the source.

The folders are the layers. Imports point down the list ``LAYERS``; only
``zoo/accel`` changes Keras objects or the process; no module is longer than
``MAX_LINES``; docstrings point to BENCHMARKS.md instead of quoting timings.
"""

import ast
import pathlib
import re
import subprocess
import sys

import pytest

import zoo

PACKAGE = pathlib.Path(zoo.__file__).parent
MAX_LINES = 350

# Lower layers first; a module may import its own layer and the layers before it.
LAYERS = {
    "core": 0,  # zoo.errors, zoo._io, zoo.registry, zoo.layers, zoo.shapes
    "accel": 1,
    "models": 2,
    "weights": 2,
    "data": 2,
    "explain": 3,
    "training": 4,
    "deploy": 4,
    "cli": 5,
}
EXPLAIN_MAY_IMPORT = {"core", "models", "explain"}
FACADES = {"zoo", "zoo.__main__"}  # the public names (loaded lazily) and ``python -m zoo``


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "core"


def sources():
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def zoo_imports(tree):
    """``(line, module)`` of every ``zoo`` import, at the top or inside a function."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("zoo"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("zoo"):
            yield node.lineno, node.module


def test_imports_point_down_the_layers():
    wrong = []
    for name, path in sources().items():
        if name in FACADES:
            continue
        mine = layer_of(name)
        for line, imported in zoo_imports(ast.parse(path.read_text(encoding="utf-8"))):
            theirs = "core" if imported == "zoo" else layer_of(imported)
            upward = LAYERS[theirs] > LAYERS[mine]
            if upward or (mine == "explain" and theirs not in EXPLAIN_MAY_IMPORT):
                wrong.append(f"{name}:{line} ({mine}) imports {imported} ({theirs})")
    assert wrong == []


# What only zoo/accel may do: the process's environment and import machinery, Keras's
# private modules, and methods replaced on Keras objects.
PROCESS_STATE = re.compile(r"\bos\.(environ|putenv|unsetenv)\b|\bsys\.(modules|meta_path)\b")
DOCUMENTED_UNDERSCORED = {"os._exit"}  # public API that merely begins with an underscore
REPLACED_METHODS = {"call", "train_step", "test_step", "predict_step", "convolution_op"}


def _changes(tree):
    """``(line, what)`` for each thing in ``tree`` that only zoo/accel may do."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for module in [*names, getattr(node, "module", None) or ""]:
                if module.startswith("keras.src"):
                    yield node.lineno, f"imports {module}"
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        for target in targets:
            text = ast.unparse(target)
            if PROCESS_STATE.search(text):
                yield node.lineno, f"writes {text}"
            attribute = target.attr if isinstance(target, ast.Attribute) else ""
            owner = ast.unparse(target.value) if isinstance(target, ast.Attribute) else ""
            private = attribute.startswith("_") and not attribute.startswith("__")
            if owner not in ("self", "cls") and (attribute in REPLACED_METHODS or private):
                yield node.lineno, f"replaces {text}"
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if re.match(
                r"os\.environ\.(update|setdefault|pop|clear)$|os\.(putenv|unsetenv)$", called
            ):
                yield node.lineno, f"calls {called}"
            if re.match(r"sys\.(modules|meta_path)\.", called) and not called.endswith(".get"):
                yield node.lineno, f"calls {called}"
            if called == "types.MethodType":
                yield node.lineno, "binds a method (types.MethodType)"
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not (node.attr.startswith("__") or ast.unparse(node.value) in ("self", "cls"))
            and ast.unparse(node) not in DOCUMENTED_UNDERSCORED
        ):
            yield node.lineno, f"reads a private name {ast.unparse(node)}"


def test_only_accel_changes_keras_or_the_process():
    found = []
    for name, path in sources().items():
        if layer_of(name) == "accel":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{name}:{line} {what}" for line, what in _changes(tree)]
    assert found == []


def test_the_rule_scanner_finds_what_accel_does():
    """The scanner above is not blind: zoo/accel does each of these things."""
    seen = set()
    for name, path in sources().items():
        if layer_of(name) == "accel":
            seen |= {what.split()[0] for _, what in _changes(ast.parse(path.read_text("utf-8")))}
    assert {"imports", "writes", "replaces", "binds", "reads"} <= seen


def test_no_module_is_longer_than_the_limit():
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in sources().items()
    }
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


# A measured speed or time quoted in prose: "9,499 images/s", "5.2 ms", "3x faster".
FIGURE = re.compile(
    r"\d[\d,.]*\s*(images?/s|img/s|ms\b|steps?/s)|\d+(\.\d+)?\s*(x|×|times)\s+(faster|slower)",
    re.I,
)


def test_docstrings_cite_benchmarks_instead_of_quoting_figures():
    quoted = []
    for name, path in sources().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                quoted += [f"{name}: {m.group(0)}" for m in FIGURE.finditer(doc)]
    assert quoted == [], "put measurements in BENCHMARKS.md and cite it"


@pytest.mark.parametrize("probe", ["importlib.util.find_spec('keras')", "None"])
def test_layers_register_when_keras_loads_even_after_a_probe(probe):
    """``import zoo`` imports no Keras, yet a saved model's zoo layers load afterwards,
    also when something asked where Keras is (a probe) before importing it."""
    code = (
        "import importlib.util, sys, zoo\n"
        "assert 'keras' not in sys.modules\n"
        f"{probe}\n"
        "import keras\n"
        "print(keras.saving.get_registered_object('zoo>AdaptiveAveragePooling2D'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "zoo.layers.AdaptiveAveragePooling2D" in result.stdout


def test_the_layout_guide_lists_every_module():
    """Each module by its path, or by its path inside a folder the table names
    (``distribute/torch_ddp.py`` beside ``zoo/training/``)."""
    section = (PACKAGE.parent / "docs" / "guide" / "layout.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).parts
        splits = [("/".join(parts[:i]) + "/", "/".join(parts[i:])) for i in range(2, len(parts))]
        named = f"`{'/'.join(parts)}`" in section or any(
            f"`{folder}`" in section and f"`{rest}`" in section for folder, rest in splits
        )
        if not named:
            missing.append("/".join(parts))
    assert missing == []

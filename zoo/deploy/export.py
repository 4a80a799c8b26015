"""Export a trained zoo model to ONNX or a TensorFlow SavedModel, checked before it is kept.

Command line:

```bash
zoo-export runs/lenet5/model.keras --format onnx --output lenet5.onnx
zoo-export runs/lenet5/model.keras --format saved_model --output lenet5_savedmodel
```

From Python:

```python
import zoo
report = zoo.export("runs/lenet5/model.keras", "onnx", "lenet5.onnx")
report["max_abs_difference"]       # largest gap to Keras on a check batch
```

Both formats go through Keras's own `model.export`. Every file is checked
before it is kept: an ONNX file runs in `onnxruntime` and a SavedModel is
reloaded with TensorFlow, on a batch of images, and their outputs must match
Keras's within `1e-4`. A file that fails the check is not written.

Which backend can write which format (Keras 3.15):

```text
format        jax                   tensorflow    torch
onnx          jax2onnx (repaired)   tf2onnx       torch.onnx
saved_model   jax2tf (needs TF)     native        no (needs torch_xla)
```

jax2onnx writes a 2-D max pooling as a 4-D `MaxPool` that onnxruntime
refuses; `zoo.deploy._onnx_repair.repair_jax2onnx_max_pool` rewrites those nodes as a
2-D `MaxPool` between two transposes, and the check then runs as for the
other backends (see `zoo.deploy._onnx_repair`).

With `feature_maps` (`--feature-maps`) an ONNX export also returns every
convolution's and pooling's output, named after its layer, beside `probabilities`:
what the docs' explainer page draws (see [`with_feature_maps`][]).

Nothing at `output` is ever replaced unless it is a previous zoo export and
`overwrite` is asked for, and an export killed part-way is undone by the next
one into the same folder: see [`zoo.deploy.safe_output`][].
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings

import numpy as np

from zoo._io import disk_full
from zoo.deploy._onnx_repair import repair_jax2onnx_max_pool
from zoo.deploy.model_file import DeployError, as_model, keras_outputs
from zoo.deploy.safe_output import (
    check_output_free,
    mark_as_export,
    move_into_place,
    recover_killed_exports,
    scratch_folder,
)
from zoo.errors import first_line

__all__ = [
    "CAN_EXPORT",
    "CHECK_BATCH",
    "FORMATS",
    "TOLERANCE",
    "check_batch",
    "export",
    "run_onnx",
    "run_saved_model",
    "with_feature_maps",
]

FORMATS = ("onnx", "saved_model")
KERAS_FORMAT = {"onnx": "onnx", "saved_model": "tf_saved_model"}
CAN_EXPORT = {"onnx": ("jax", "tensorflow", "torch"), "saved_model": ("jax", "tensorflow")}
# The package each backend's exporter needs, for the install hint.
EXPORTER = {
    ("onnx", "jax"): "jax2onnx",
    ("onnx", "tensorflow"): "tf2onnx",
    ("onnx", "torch"): "onnxscript",
    ("saved_model", "jax"): "tensorflow",
}
TOLERANCE = 1e-4
CHECK_BATCH = 3
PROBABILITIES = "probabilities"  # the first output's name in an export with feature maps


def _check_format(format, backend):
    if format not in FORMATS:
        raise DeployError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}.")
    if backend not in CAN_EXPORT[format]:
        able = " or ".join(CAN_EXPORT[format])
        raise DeployError(
            f"the {backend} backend cannot export {format} (Keras writes a SavedModel through "
            f"TensorFlow, which needs torch_xla on torch). Run again with KERAS_BACKEND={able}, "
            "for example: KERAS_BACKEND=tensorflow zoo-export MODEL.keras --format saved_model "
            "--output PATH."
        )


def _check_exporter_installed(format, backend):
    package = EXPORTER.get((format, backend))
    if package is not None:
        import importlib.util

        if importlib.util.find_spec(package) is None:
            raise DeployError(
                f"exporting {format} on {backend} needs the {package} package: "
                "pip install 'zoo[export]'."
            )


def check_batch(model, seed=0):
    """A fixed batch of images in [0, 1] at the model's input shape."""
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).random((CHECK_BATCH, *shape), dtype="float32")


def run_onnx(path, images, all_outputs=False):
    """Outputs of an ONNX file for `images`, computed by onnxruntime on the CPU.

    The first output, or with `all_outputs` a dict of every output by name.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: images})
    if all_outputs:
        return {
            meta.name: value for meta, value in zip(session.get_outputs(), outputs, strict=True)
        }
    return outputs[0]


def feature_layers(model):
    """The convolutions and poolings of `model` whose outputs are images, in layer order.

    Layer order, not `feature_extractor=True`'s dict: that dict's key order differs
    between backends (issue 31), and an export's outputs must come in one order.
    """
    import keras

    from zoo.layers import AdaptiveAveragePooling2D

    kinds = (
        keras.layers.Conv2D,
        keras.layers.MaxPooling2D,
        keras.layers.AveragePooling2D,
        AdaptiveAveragePooling2D,
    )
    return [
        layer for layer in model.layers if isinstance(layer, kinds) and len(layer.output.shape) == 4
    ]


def with_feature_maps(model):
    """`model` with each `feature_layers` output after its class probabilities."""
    import keras

    layers = feature_layers(model)
    if not layers:
        raise DeployError(f"{model.name} has no convolution or pooling whose maps to export.")
    return keras.Model(model.inputs[0], [model.outputs[0], *(layer.output for layer in layers)])


def output_names(model, feature_maps):
    """The export's output names: `probabilities` then each feature layer's name."""
    return [PROBABILITIES, *(layer.name for layer in feature_layers(model))] if feature_maps else []


def _rename_onnx_outputs(path, names):
    """Give the graph's outputs `names`, in order (converters name them `output_0`...)."""
    import onnx

    proto = onnx.load(path)
    graph = proto.graph
    if len(graph.output) != len(names):
        raise DeployError(f"the ONNX file has {len(graph.output)} outputs, expected {len(names)}.")
    renamed = {
        old.name: new for old, new in zip(graph.output, names, strict=True) if old.name != new
    }
    for node in graph.node:
        node.output[:] = [renamed.get(name, name) for name in node.output]
        node.input[:] = [renamed.get(name, name) for name in node.input]
    for output in graph.output:
        output.name = renamed.get(output.name, output.name)
    onnx.save(proto, path)


def run_saved_model(path, images):
    """Outputs of a SavedModel's `serve` endpoint for `images`, reloaded with TensorFlow."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)  # kept in a name: its variables die with the object
    return loaded.serve(tf.constant(images)).numpy()


RUNNERS = {"onnx": run_onnx, "saved_model": run_saved_model}


def _write_failure(error, what, destination):
    """One line for an `OSError` met while writing an export into `destination`."""
    reason = error.strerror or first_line(error)
    if disk_full(error):
        return DeployError(
            f"the disk is full: {what} in {destination} failed ({reason}); nothing was "
            "written. Free some space, or choose an --output on another disk."
        )
    return DeployError(
        f"cannot write in {destination}: {reason}; choose a folder you can write to with --output."
    )


def export(model, format, output, tolerance=TOLERANCE, overwrite=False, feature_maps=False):
    """Export `model` (a `keras.Model` or a `.keras` path) as `format` to `output`.

    `format` is `"onnx"` (one `.onnx` file, plus a `.data` file for
    weights too large to embed) or `"saved_model"` (a folder). The export
    is written in a scratch folder beside `output`, run on a check batch and
    compared with Keras; only if every output is within `tolerance` is it
    moved to `output`.

    With `feature_maps` (ONNX only) the file's outputs are `probabilities`
    and then each convolution's and pooling's output named after its layer
    ([`with_feature_maps`][]), every one of them checked against Keras.

    Nothing already at `output` is touched: an existing path is refused,
    unless `overwrite` is true and the path is a previous zoo export (a
    SavedModel folder holding only what its `zoo-export.json` lists, or an
    ONNX file with the `zoo.export` metadata key). What killed exports left
    beside `output` is cleaned or restored first
    ([`zoo.deploy.safe_output.recover_killed_exports`][]).
    Returns `{"format", "output", "backend", "max_abs_difference",
    "restored"}` (the previous exports put back). Raises [`DeployError`][].
    """
    import keras

    if feature_maps and format != "onnx":
        raise DeployError("--feature-maps is for --format onnx only.")
    backend = keras.backend.backend()
    _check_format(format, backend)
    model = as_model(model)
    names = output_names(model, feature_maps)
    model = with_feature_maps(model) if feature_maps else model
    output = os.fspath(output)
    destination = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(destination):
        raise DeployError(f"folder {destination} does not exist; create it or change --output.")
    restored = recover_killed_exports(destination)  # before the check: they count as there
    check_output_free(format, output, overwrite)  # the user's files come first
    _check_exporter_installed(format, backend)
    images = check_batch(model)
    expected = _keras_outputs(model, images)  # also marks the model as called, which JAX needs
    try:
        scratch = scratch_folder(destination)
    except OSError as error:
        raise _write_failure(error, "creating a scratch folder", destination) from None
    try:
        written = os.path.join(scratch, os.path.basename(os.path.abspath(output)))
        try:
            with _exporter_warnings_hidden():
                model.export(written, format=KERAS_FORMAT[format], verbose=False)
            if format == "onnx" and backend == "jax":
                repair_jax2onnx_max_pool(written)
            if names:
                _rename_onnx_outputs(written, names)
            mark_as_export(format, written, backend)
            if names:
                by_name = run_onnx(written, images, all_outputs=True)
                actual = [by_name[name] for name in names]
            else:
                actual = [RUNNERS[format](written, images)]
        except DeployError:
            raise
        except Exception as error:
            raise _exporter_failure(error, format, backend, destination) from None
        difference = max(
            float(np.max(np.abs(np.asarray(got) - want)))
            for got, want in zip(actual, expected, strict=True)
        )
        if not difference <= tolerance:
            raise DeployError(
                f"the exported {format} model differs from Keras by {difference:.3g} "
                f"(more than {tolerance:g}); nothing was written."
            )
        try:
            move_into_place(scratch, format, output, overwrite)
        except OSError as error:
            raise _write_failure(error, "moving the export into place", destination) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "format": format,
        "output": os.path.abspath(output),
        "backend": backend,
        "max_abs_difference": difference,
        "restored": restored,
    }


@contextlib.contextmanager
def _exporter_warnings_hidden():
    """Drop the warnings an exporter raises about its own code while it runs.

    PyTorch's ONNX exporter traces the model and warns that each shape it reads
    ("Converting a tensor to a Python boolean/integer") becomes a constant, and about
    its own deprecations; a user can act on neither. What matters, whether the file
    computes what Keras computes, is checked right after on a batch of its own size.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r"Converting a tensor to a Python")
        yield


def _keras_outputs(model, images):
    """Every output of `model` for `images` as a list of NumPy arrays."""
    if len(model.outputs) == 1:
        return [keras_outputs(model, images)]
    import keras

    return [keras.ops.convert_to_numpy(out) for out in model(images, training=False)]


def _exporter_failure(error, format, backend, destination):
    """One line for an exporter that failed: the disk, or the backend's converter.

    Only a converter's failure suggests another backend; a full disk or a
    folder the OS refuses would fail on every backend alike.
    """
    if isinstance(error, OSError) and (disk_full(error) or error.errno is not None):
        return _write_failure(error, f"writing the {format} export", destination)
    message = first_line(error, 300)
    others = [b for b in CAN_EXPORT[format] if b != backend]
    return DeployError(
        f"{format} export on the {backend} backend failed: {type(error).__name__}: "
        f"{message}. The {' and '.join(others)} backend(s) can also export {format}: "
        f"run again with KERAS_BACKEND={others[0]}."
    )

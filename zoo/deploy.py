"""Take a trained zoo model out of training: export it, or classify images with it.

Command line::

    zoo-export runs/lenet5/model.keras --format onnx --output lenet5.onnx
    zoo-export runs/lenet5/model.keras --format saved_model --output lenet5_savedmodel
    zoo-predict runs/lenet5/model.keras digit.png another.png --top 3

From Python::

    import zoo
    report = zoo.export("runs/lenet5/model.keras", "onnx", "lenet5.onnx")
    report["max_abs_difference"]       # largest gap to Keras on a check batch

Both formats go through Keras's own ``model.export``. Every file is checked
before it is kept: an ONNX file runs in ``onnxruntime`` and a SavedModel is
reloaded with TensorFlow, on a batch of images, and their outputs must match
Keras's within ``1e-4``. A file that fails the check is not written.

Which backend can write which format (Keras 3.15):

=============  =====================  ========================  ======================
format         jax                    tensorflow                torch
=============  =====================  ========================  ======================
onnx           jax2onnx (repaired)    tf2onnx                   torch.onnx
saved_model    jax2tf (needs TF)      native                    no (needs torch_xla)
=============  =====================  ========================  ======================

jax2onnx writes a 2-D max pooling as a 4-D ``MaxPool`` that onnxruntime
refuses; :func:`repair_jax2onnx_max_pool` rewrites those nodes as a 2-D
``MaxPool`` between two transposes, and the check then runs as for the
other backends.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

from zoo.errors import ZooError, run_command

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
# How a later --overwrite recognises an export as the zoo's own (see check_output_free).
EXPORT_MANIFEST = "zoo-export.json"
ONNX_MARKER = "zoo.export"


class DeployError(ZooError):
    """Bad input for export or prediction; the message names the fix."""


# --------------------------------------------------------------------------- loading


def load_zoo_model(path):
    """Load a ``.keras`` file and check it is an image classifier as the zoo builds them.

    That is one channels-last image input ``(None, H, W, C)`` with ``C`` 1 or
    3 and one output ``(None, classes)``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DeployError(
            f"model file not found: {path}. Pass the model.keras a zoo-train run wrote "
            "(OUTPUT/model.keras)."
        )
    import keras

    import zoo.layers  # noqa: F401  (registers the zoo's own layers for loading)

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise DeployError(
            f"{path} is not a Keras model file: {type(error).__name__}: {first_line[:200]}. "
            "Pass a .keras file saved by zoo-train or model.save()."
        ) from None
    inputs, outputs = model.inputs, model.outputs
    shape_in = tuple(inputs[0].shape) if len(inputs) == 1 else ()
    shape_out = tuple(outputs[0].shape) if len(outputs) == 1 else ()
    if len(shape_in) != 4 or shape_in[3] not in (1, 3) or len(shape_out) != 2:
        raise DeployError(
            f"{path} is not a zoo image classifier: it takes {[tuple(i.shape) for i in inputs]} "
            f"and returns {[tuple(o.shape) for o in outputs]}, where the zoo's models take one "
            "(None, height, width, 1 or 3) image batch and return (None, classes)."
        )
    return model


def _as_model(model):
    return load_zoo_model(model) if isinstance(model, (str, os.PathLike)) else model


# --------------------------------------------------------------------------- export


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


def keras_outputs(model, images):
    import keras

    return keras.ops.convert_to_numpy(model(images, training=False))


def run_onnx(path, images):
    """Outputs of an ONNX file for ``images``, computed by onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def run_saved_model(path, images):
    """Outputs of a SavedModel's ``serve`` endpoint for ``images``, reloaded with TensorFlow."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)  # kept in a name: its variables die with the object
    return loaded.serve(tf.constant(images)).numpy()


RUNNERS = {"onnx": run_onnx, "saved_model": run_saved_model}


# --------------------------------------------------------------------------- a jax2onnx repair


def repair_jax2onnx_max_pool(path):
    """Rewrite the 4-D ``MaxPool`` nodes jax2onnx writes so that onnxruntime can run them.

    A workaround for one converter, used only for ONNX exports on the JAX
    backend. Keras's JAX max pooling over ``(N, H, W, C)`` reaches jax2onnx
    as a window ``(1, kh, kw, 1)``; jax2onnx adds two leading axes and pools
    over all four others, which onnxruntime refuses ("Unsupported pooling
    size": it pools over at most three axes). The same numbers come from
    ``Transpose`` to ``(N, C, H, W)``, a 2-D ``MaxPool`` and a ``Transpose``
    back, which is what this writes instead of ``Unsqueeze, Unsqueeze,
    MaxPool, Squeeze``. Returns how many nodes were rewritten.
    """
    import onnx
    from onnx import helper

    model = onnx.load(path)  # with any external weights file beside it
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewritten = 0
    for pool in [node for node in graph.node if node.op_type == "MaxPool"]:
        attributes = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
        kernel = list(attributes["kernel_shape"])
        strides = list(attributes.get("strides", [1] * 4))
        pads = list(attributes.get("pads", [0] * 8))
        inner = producer.get(pool.input[0])
        outer = producer.get(inner.input[0]) if inner is not None else None
        after = consumers.get(pool.output[0], [])
        if not (
            len(kernel) == 4
            and kernel[0] == kernel[3] == strides[0] == strides[3] == 1
            and not any(pads[i] for i in (0, 3, 4, 7))
            and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            and inner is not None
            and inner.op_type == outer.op_type == "Unsqueeze"
            and len(after) == 1
            and after[0].op_type == "Squeeze"
        ):
            continue
        squeeze, name = after[0], pool.name or f"max_pool_{rewritten}"
        replacement = [
            helper.make_node("Transpose", [outer.input[0]], [f"{name}_nchw"], perm=[0, 3, 1, 2]),
            helper.make_node(
                "MaxPool",
                [f"{name}_nchw"],
                [f"{name}_pooled"],
                kernel_shape=kernel[1:3],
                strides=strides[1:3],
                pads=[pads[1], pads[2], pads[5], pads[6]],
                ceil_mode=attributes.get("ceil_mode", 0),
            ),
            helper.make_node(
                "Transpose", [f"{name}_pooled"], [squeeze.output[0]], perm=[0, 2, 3, 1]
            ),
        ]
        position = list(graph.node).index(outer)
        for node in (outer, inner, pool, squeeze):
            graph.node.remove(node)
        for offset, node in enumerate(replacement):
            graph.node.insert(position + offset, node)
        rewritten += 1
    if rewritten:
        _save_onnx(model, path)
    return rewritten


def _save_onnx(model, path):
    """Save over ``path``, keeping the weights in a ``.data`` file if they were in one."""
    import onnx

    data_file = path + ".data"
    external = os.path.exists(data_file)
    if external:
        os.remove(data_file)  # its tensors are in memory; onnx appends to an existing file
    onnx.save(
        model,
        path,
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=os.path.basename(data_file),
    )


# --------------------------------------------------------------------------- never overwrite


def _targets(format, output):
    """Every path an export of ``format`` to ``output`` may write: ONNX adds a ``.data`` file."""
    return [output, output + ".data"] if format == "onnx" else [output]


def _saved_model_files(folder):
    """Every file under ``folder``, as sorted paths relative to it."""
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


def _previous_export(format, output):
    """The paths an earlier ``zoo.export`` wrote at ``output``, or an empty set if it is not one.

    A SavedModel folder is a previous export when it holds exactly the files its
    ``zoo-export.json`` lists; an ONNX file when its metadata key ``zoo.export``
    is present (that stamp also says whether a ``.data`` file belongs to it).
    """
    if os.path.islink(output):
        return set()
    try:
        if format == "saved_model":
            with open(os.path.join(output, EXPORT_MANIFEST), encoding="utf-8") as handle:
                listed = json.load(handle)["files"]
            exact = sorted([*listed, EXPORT_MANIFEST]) == _saved_model_files(output)
            return {output} if exact else set()
        import onnx

        model = onnx.load(output, load_external_data=False)
        stamps = [e.value for e in model.metadata_props if e.key == ONNX_MARKER]
        folder = os.path.dirname(output)
        return {os.path.join(folder, name) for name in json.loads(stamps[0])["files"]}
    except Exception:  # no manifest, not ONNX, no stamp, a stamp of another shape
        return set()


def check_output_free(format, output, overwrite=False):
    """Refuse to write over anything but a previous zoo export (and that only with ``overwrite``).

    An empty folder counts as free for a SavedModel. Raises :class:`DeployError`
    naming the path and the way out.
    """
    output = os.path.abspath(output)
    replaceable = _previous_export(format, output) if overwrite else set()
    for target in _targets(format, output):
        if not os.path.lexists(target) or target in replaceable:
            continue
        if format == "saved_model" and os.path.isdir(target) and not os.listdir(target):
            continue  # an empty folder holds nothing to lose
        if overwrite:
            raise DeployError(
                f"{target} already exists and is not a previous zoo export; --overwrite "
                "replaces only what zoo-export wrote. Choose another --output."
            )
        raise DeployError(
            f"{target} already exists; choose another --output, or pass --overwrite to "
            "replace a previous zoo export."
        )


def _mark_as_export(format, written, backend):
    """Stamp the export with what it consists of, so a later ``--overwrite`` can recognise it."""
    stamp = {"format": format, "backend": backend, "zoo": _zoo_version()}
    if format == "saved_model":
        stamp["files"] = _saved_model_files(written)
        with open(os.path.join(written, EXPORT_MANIFEST), "w", encoding="utf-8") as handle:
            json.dump(stamp, handle, indent=2)
        return
    import onnx

    stamp["files"] = [os.path.basename(t) for t in _targets(format, written) if os.path.exists(t)]
    model = onnx.load(written)
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_MARKER, json.dumps(stamp)
    _save_onnx(model, written)


def _zoo_version():
    from zoo import __version__

    return __version__


def _move_into_place(scratch, format, output, overwrite):
    """Rename what the exporter wrote in ``scratch`` to ``output``, after checking again.

    A previous export being replaced is first renamed aside, so that ``output``
    never holds a mix of the two; it is deleted only once the new one is in place.
    """
    check_output_free(format, output, overwrite)
    output = os.path.abspath(output)
    expected = {os.path.basename(target) for target in _targets(format, output)}
    unexpected = sorted(set(os.listdir(scratch)) - expected)
    if unexpected:
        raise DeployError(
            f"the exporter wrote files the zoo does not know ({', '.join(unexpected)}); "
            "nothing was written. Please report this with the model and backend."
        )
    destination = os.path.dirname(output)
    retired = tempfile.mkdtemp(prefix=".zoo-export.old.", dir=destination)
    try:
        for target in _targets(format, output):
            if os.path.lexists(target):
                os.replace(target, os.path.join(retired, os.path.basename(target)))
            written = os.path.join(scratch, os.path.basename(target))
            if os.path.lexists(written):
                os.replace(written, target)
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def export(model, format, output, tolerance=TOLERANCE, overwrite=False):
    """Export ``model`` (a ``keras.Model`` or a ``.keras`` path) as ``format`` to ``output``.

    ``format`` is ``"onnx"`` (one ``.onnx`` file, plus a ``.data`` file for
    weights too large to embed) or ``"saved_model"`` (a folder). The export
    is written in a scratch folder beside ``output``, run on a check batch and
    compared with Keras; only if every output is within ``tolerance`` is it
    moved to ``output``.

    Nothing already at ``output`` is touched: an existing path is refused,
    unless ``overwrite`` is true and the path is a previous zoo export (a
    SavedModel folder holding only what its ``zoo-export.json`` lists, or an
    ONNX file with the ``zoo.export`` metadata key). Returns ``{"format",
    "output", "backend", "max_abs_difference"}``. Raises :class:`DeployError`.
    """
    import keras

    backend = keras.backend.backend()
    _check_format(format, backend)
    model = _as_model(model)
    output = os.fspath(output)
    destination = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(destination):
        raise DeployError(f"folder {destination} does not exist; create it or change --output.")
    check_output_free(format, output, overwrite)
    images = check_batch(model)
    expected = keras_outputs(model, images)  # also marks the model as called, which JAX needs
    try:
        scratch = tempfile.mkdtemp(prefix=".zoo-export.", dir=destination)
    except OSError as error:
        raise DeployError(
            f"cannot write in {destination}: {error.strerror}; choose a folder you can write "
            "to with --output."
        ) from None
    try:
        written = os.path.join(scratch, os.path.basename(os.path.abspath(output)))
        try:
            model.export(written, format=KERAS_FORMAT[format], verbose=False)
            if format == "onnx" and backend == "jax":
                repair_jax2onnx_max_pool(written)
            _mark_as_export(format, written, backend)
            actual = RUNNERS[format](written, images)
        except Exception as error:
            message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
            others = [b for b in CAN_EXPORT[format] if b != backend]
            raise DeployError(
                f"{format} export on the {backend} backend failed: {type(error).__name__}: "
                f"{message}. The {' and '.join(others)} backend(s) can also export {format}: "
                f"run again with KERAS_BACKEND={others[0]}."
            ) from None
        difference = float(np.max(np.abs(np.asarray(actual) - expected)))
        if not difference <= tolerance:
            raise DeployError(
                f"the exported {format} model differs from Keras by {difference:.3g} "
                f"(more than {tolerance:g}); nothing was written."
            )
        _move_into_place(scratch, format, output, overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "format": format,
        "output": os.path.abspath(output),
        "backend": backend,
        "max_abs_difference": difference,
    }


# --------------------------------------------------------------------------- predict


def load_class_names(model_path, classes_path, count):
    """Class names from ``classes.json`` (beside the model unless given), else the indices."""
    path = classes_path or os.path.join(
        os.path.dirname(os.path.abspath(model_path)), "classes.json"
    )
    if not os.path.isfile(path):
        if classes_path:
            raise DeployError(f"class names file not found: {classes_path}.")
        return [str(i) for i in range(count)], False
    try:
        with open(path, encoding="utf-8") as handle:
            names = json.load(handle)
    except (OSError, ValueError) as error:
        raise DeployError(f"cannot read class names from {path}: {error}.") from None
    if not isinstance(names, list) or len(names) != count:
        raise DeployError(
            f"{path} should list {count} class names (the model's outputs), "
            f"found {len(names) if isinstance(names, list) else type(names).__name__}."
        )
    return [str(name) for name in names], True


def classify(model, image_paths, top=5):
    """Top ``top`` classes of each image: a list of ``[(class_index, probability), ...]``.

    Images are read as ``zoo-train`` reads them: converted to the model's
    channels, resized (bilinear) to its input and scaled to [0, 1].
    """
    from zoo.data import DataError, load_image_file

    shape = tuple(model.inputs[0].shape[1:])
    batch = []
    for path in image_paths:
        if not os.path.isfile(path):
            raise DeployError(f"image not found: {path}.")
        try:
            batch.append(load_image_file(path, shape))
        except DataError as error:
            raise DeployError(str(error)) from None
    scores = keras_outputs(model, np.stack(batch).astype("float32"))
    probabilities = _as_probabilities(scores)
    order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top]
    return [
        [(int(i), float(row[i])) for i in best]
        for row, best in zip(probabilities, order, strict=True)
    ]


def _as_probabilities(scores):
    """Softmax outputs pass through; logits (``classifier_activation=None``) get a softmax."""
    if np.all(scores >= 0) and np.allclose(scores.sum(axis=-1), 1.0, atol=1e-3):
        return scores
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- command lines


def _export_parser():
    parser = argparse.ArgumentParser(
        prog="zoo-export",
        description="Export a trained zoo model (model.keras) to ONNX or a TensorFlow "
        "SavedModel, checked against Keras before it is written.",
    )
    parser.add_argument("model", help="a .keras file, e.g. runs/lenet5/model.keras")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", required=True, help="the .onnx file or SavedModel folder")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUTPUT if it is a previous zoo export (anything else is never touched)",
    )
    return parser


def export_main(argv=None):
    return run_command("zoo-export", _export_command, argv)


def _export_command(argv):
    options = _export_parser().parse_args(argv)
    report = export(options.model, options.format, options.output, overwrite=options.overwrite)
    print(
        f"wrote {report['output']} ({options.format}, {report['backend']} backend); outputs "
        f"match Keras within {report['max_abs_difference']:.2g} on {CHECK_BATCH} images"
    )
    return 0


def _predict_parser():
    parser = argparse.ArgumentParser(
        prog="zoo-predict",
        description="Classify images with a trained zoo model; class names come from the "
        "classes.json that zoo-train wrote beside model.keras.",
    )
    parser.add_argument("model", help="a .keras file, e.g. runs/lenet5/model.keras")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--top", type=int, default=3, help="how many classes to print per image")
    parser.add_argument("--classes", default=None, help="class names JSON (default: beside model)")
    return parser


def predict_main(argv=None):
    return run_command("zoo-predict", _predict_command, argv)


def _predict_command(argv):
    options = _predict_parser().parse_args(argv)
    if options.top < 1:
        raise DeployError(f"--top must be at least 1, got {options.top}.")
    model = load_zoo_model(options.model)
    count = int(model.outputs[0].shape[-1])
    names, found = load_class_names(options.model, options.classes, count)
    results = classify(model, options.images, min(options.top, count))
    if not found:
        print("note: no classes.json beside the model; printing class indices", file=sys.stderr)
    for path, best in zip(options.images, results, strict=True):
        print(path)
        for index, probability in best:
            print(f"  {probability:7.4f}  {names[index]}")
    return 0

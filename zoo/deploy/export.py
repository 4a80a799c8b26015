"""Export a trained zoo model to ONNX or a TensorFlow SavedModel, checked before it is kept.

Command line::

    zoo-export runs/lenet5/model.keras --format onnx --output lenet5.onnx
    zoo-export runs/lenet5/model.keras --format saved_model --output lenet5_savedmodel

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
refuses; :func:`zoo.deploy._onnx_repair.repair_jax2onnx_max_pool` rewrites those nodes as a 2-D
``MaxPool`` between two transposes, and the check then runs as for the
other backends (see :mod:`zoo.deploy._onnx_repair`).

Nothing at ``output`` is ever replaced unless it is a previous zoo export and
``overwrite`` is asked for: see :func:`check_output_free`. An export killed
part-way leaves hidden folders named with its process id; the next export into
that folder removes them, or puts back the previous export they hold
(:func:`recover_killed_exports`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

import numpy as np

from zoo._io import dead_leftovers, disk_full
from zoo.deploy._onnx_repair import _save_onnx, repair_jax2onnx_max_pool
from zoo.deploy.model_file import DeployError, _as_model, keras_outputs, load_zoo_model

__all__ = [
    "FORMATS",
    "CAN_EXPORT",
    "export",
    "check_output_free",
    "load_zoo_model",
    "recover_killed_exports",
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
# How a later --overwrite recognises an export as the zoo's own (see check_output_free).
EXPORT_MANIFEST = "zoo-export.json"
ONNX_MARKER = "zoo.export"  # the metadata key, kept from 0.1.0 so older exports are found
# The folders an export works in beside OUTPUT, named with its process id so that the next
# run can tell a killed export's leftovers from a running one's (see recover_killed_exports).
SCRATCH = re.compile(r"\.zoo-export\.(?P<pid>[0-9]+)\..+")  # the new export, being checked
RETIRED = re.compile(r"\.zoo-export\.old\.(?P<pid>[0-9]+)\..+")  # the old one, moved aside


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
    """The paths an earlier export wrote at ``output``, or an empty set if it is not one.

    A SavedModel folder is a previous export when it holds exactly the files its
    ``zoo-export.json`` lists; an ONNX file when its metadata key ``zoo.deploy.export``
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

    Every file of a previous export being replaced is renamed aside first and
    put back if moving the new one in fails (or is interrupted); it is deleted
    only once the new export is in place. The main file (``output`` itself)
    goes aside first and comes in last, so a missing ``output`` beside a
    killed run's aside folder tells :func:`recover_killed_exports` to restore.
    """
    check_output_free(format, output, overwrite)
    output = os.path.abspath(output)
    targets = _targets(format, output)
    expected = {os.path.basename(target) for target in targets}
    unexpected = sorted(set(os.listdir(scratch)) - expected)
    if unexpected:
        raise DeployError(
            f"the exporter wrote files the zoo does not know ({', '.join(unexpected)}); "
            "nothing was written. Please report this with the model and backend."
        )
    retired = _work_folder(os.path.dirname(output), ".zoo-export.old.")
    moved_aside, moved_in = [], []
    try:
        for target in targets:  # first every old file aside, the main one first...
            if os.path.lexists(target):
                os.replace(target, os.path.join(retired, os.path.basename(target)))
                moved_aside.append(target)
        for target in reversed(targets):  # ...then every new one in, the main one last
            written = os.path.join(scratch, os.path.basename(target))
            if os.path.lexists(written):
                os.replace(written, target)
                moved_in.append(target)
    except BaseException:  # an OS error or Ctrl-C: put everything back as it was
        for target in moved_in:
            os.replace(target, os.path.join(scratch, os.path.basename(target)))
        for target in moved_aside:
            os.replace(os.path.join(retired, os.path.basename(target)), target)
        os.rmdir(retired)  # empty again
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _work_folder(destination, prefix):
    """A new hidden folder in ``destination`` whose name carries this process's id."""
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", dir=destination)


# --------------------------------------------------------------------------- after a kill


def recover_killed_exports(folder):
    """Undo what exports killed part-way left in ``folder``; return the paths restored.

    A killed export's scratch folder (its unfinished new export) is removed.
    Its aside folder holds the previous export: if that export's main file has
    no replacement, the switch never finished and the previous export goes
    back where it was; if a zoo export stands there now, the aside copy is
    removed. Only folders of processes that are no longer alive are touched.
    """
    for scratch in dead_leftovers(folder, SCRATCH):
        shutil.rmtree(scratch, ignore_errors=True)
    restored = []
    for retired in dead_leftovers(folder, RETIRED):
        names = sorted(os.listdir(retired), key=len)  # OUTPUT comes before OUTPUT.data
        main = os.path.join(folder, names[0]) if names else None
        if main is not None and not os.path.lexists(main):
            for name in names:  # over any new file the killed export had moved in
                os.replace(os.path.join(retired, name), os.path.join(folder, name))
            restored.append(main)
        elif main is not None and not _previous_export(_format_of(main), main):
            continue  # someone else's file took the place: keep the only copy we have
        shutil.rmtree(retired, ignore_errors=True)
    return restored


def _format_of(path):
    return "saved_model" if os.path.isdir(path) else "onnx"


def _write_failure(error, what, destination):
    """One line for an ``OSError`` met while writing an export into ``destination``."""
    reason = error.strerror or str(error).strip().splitlines()[0][:200]
    if disk_full(error):
        return DeployError(
            f"the disk is full: {what} in {destination} failed ({reason}); nothing was "
            "written. Free some space, or choose an --output on another disk."
        )
    return DeployError(
        f"cannot write in {destination}: {reason}; choose a folder you can write to with --output."
    )


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
    ONNX file with the ``zoo.deploy.export`` metadata key). What killed exports left
    beside ``output`` is cleaned or restored first (:func:`recover_killed_exports`).
    Returns ``{"format", "output", "backend", "max_abs_difference",
    "restored"}`` (the previous exports put back). Raises :class:`DeployError`.
    """
    import keras

    backend = keras.backend.backend()
    _check_format(format, backend)
    model = _as_model(model)
    output = os.fspath(output)
    destination = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(destination):
        raise DeployError(f"folder {destination} does not exist; create it or change --output.")
    restored = recover_killed_exports(destination)  # before the check: they count as there
    check_output_free(format, output, overwrite)  # the user's files come first
    _check_exporter_installed(format, backend)
    images = check_batch(model)
    expected = keras_outputs(model, images)  # also marks the model as called, which JAX needs
    try:
        scratch = _work_folder(destination, ".zoo-export.")
    except OSError as error:
        raise _write_failure(error, "creating a scratch folder", destination) from None
    try:
        written = os.path.join(scratch, os.path.basename(os.path.abspath(output)))
        try:
            model.export(written, format=KERAS_FORMAT[format], verbose=False)
            if format == "onnx" and backend == "jax":
                repair_jax2onnx_max_pool(written)
            _mark_as_export(format, written, backend)
            actual = RUNNERS[format](written, images)
        except Exception as error:
            raise _exporter_failure(error, format, backend, destination) from None
        difference = float(np.max(np.abs(np.asarray(actual) - expected)))
        if not difference <= tolerance:
            raise DeployError(
                f"the exported {format} model differs from Keras by {difference:.3g} "
                f"(more than {tolerance:g}); nothing was written."
            )
        try:
            _move_into_place(scratch, format, output, overwrite)
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


def _exporter_failure(error, format, backend, destination):
    """One line for an exporter that failed: the disk, or the backend's converter.

    Only a converter's failure suggests another backend; a full disk or a
    folder the OS refuses would fail on every backend alike.
    """
    if isinstance(error, OSError) and (disk_full(error) or error.errno is not None):
        return _write_failure(error, f"writing the {format} export", destination)
    message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    others = [b for b in CAN_EXPORT[format] if b != backend]
    return DeployError(
        f"{format} export on the {backend} backend failed: {type(error).__name__}: "
        f"{message}. The {' and '.join(others)} backend(s) can also export {format}: "
        f"run again with KERAS_BACKEND={others[0]}."
    )

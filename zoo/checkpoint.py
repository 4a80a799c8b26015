"""Checkpoints that are never half-written: save, find, load and verify.

After every epoch ``zoo-train`` writes one checkpoint as a unit::

    OUTPUT/checkpoint/epoch-0003/model.keras    weights, architecture, optimizer state
    OUTPUT/checkpoint/epoch-0003/state.json     what was trained, and how far
    OUTPUT/checkpoint/latest.json               {"epoch": 3, "folder": "epoch-0003"}

The epoch folder is filled under a temporary name and renamed into place
whole; only then does ``latest.json`` (written atomically) point at it, and
the previous epoch's folder is removed. A run killed at any instant leaves
``latest.json`` naming a complete folder whose model and state belong
together, which :func:`load` checks. ``OUTPUT/model.keras``,
``OUTPUT/state.json`` and ``OUTPUT/history.csv`` are refreshed after each
checkpoint for people and tools to read; resuming never trusts them.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile

from zoo._io import atomic_path, write_csv, write_json
from zoo.errors import ZooError

__all__ = [
    "ARTIFACTS",
    "CheckpointError",
    "check_same_model",
    "check_same_run",
    "clear_run",
    "earlier_run",
    "read_state",
    "save",
    "save_final",
    "load",
    "latest_epoch",
    "clean_stale",
    "epoch_callback",
]

FOLDER = "checkpoint"
POINTER = "latest.json"
# Everything a run writes in its output folder; nothing else there is ever touched.
ARTIFACTS = (
    "model.keras",
    "history.csv",
    "state.json",
    "metrics.json",
    "classes.json",
    "curves.png",
    "confusion_matrix.png",
    FOLDER,
    "logs",
)


class CheckpointError(ZooError):
    """A checkpoint is missing, damaged, or belongs to another run."""


def _epoch_folder(epoch):
    return f"epoch-{epoch:04d}"


def history_rows(history):
    """``{"loss": [...], ...}`` as CSV rows ``{"epoch": 1, "loss": ...}``."""
    keys = list(history)
    count = len(history[keys[0]]) if keys else 0
    return [{"epoch": i + 1, **{k: history[k][i] for k in keys}} for i in range(count)]


def save(model, output, state, history):
    """Write the checkpoint of ``state["epochs_completed"]`` epochs as one unit; return its path."""
    epoch = state["epochs_completed"]
    root = os.path.join(output, FOLDER)
    os.makedirs(root, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{_epoch_folder(epoch)}.", dir=root)
    try:
        model.save(os.path.join(scratch, "model.keras"))
        write_json(os.path.join(scratch, "state.json"), {**state, "history": history})
        final = os.path.join(root, _epoch_folder(epoch))
        if os.path.isdir(final):  # left by a run killed before it moved the pointer
            shutil.rmtree(final)
        os.replace(scratch, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    previous = latest_epoch(output)
    write_json(os.path.join(root, POINTER), {"epoch": epoch, "folder": _epoch_folder(epoch)})
    if previous is not None and previous != epoch:
        shutil.rmtree(os.path.join(root, _epoch_folder(previous)), ignore_errors=True)
    _publish(final, output, state, history)
    return final


def _publish(folder, output, state, history):
    """Refresh the files people read at the top of OUTPUT (never read back by resume)."""
    with atomic_path(os.path.join(output, "model.keras")) as temporary:
        try:
            os.link(os.path.join(folder, "model.keras"), temporary)
        except OSError:  # a file system without hard links
            shutil.copyfile(os.path.join(folder, "model.keras"), temporary)
    write_csv(os.path.join(output, "history.csv"), history_rows(history), ["epoch", *history])
    write_json(os.path.join(output, "state.json"), state)


def latest_epoch(output):
    """The epoch ``latest.json`` points at, or ``None`` when there is no checkpoint."""
    pointer = os.path.join(output, FOLDER, POINTER)
    if not os.path.isfile(pointer):
        return None
    try:
        with open(pointer, encoding="utf-8") as handle:
            return int(json.load(handle)["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(
            f"{pointer} is damaged; delete OUTPUT/{FOLDER} to train from scratch."
        ) from None


def read_state(output):
    """The latest checkpoint's state and history, and its folder, without loading the model."""
    epoch = latest_epoch(output)
    if epoch is None:
        raise CheckpointError(
            f"--resume: no checkpoint in {output} ({FOLDER}/{POINTER} is missing). Train "
            "without --resume first, or point --output at an earlier run."
        )
    folder = os.path.join(output, FOLDER, _epoch_folder(epoch))
    state_path = os.path.join(folder, "state.json")
    try:
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
        history = state.pop("history")
    except (OSError, ValueError, KeyError, AttributeError):
        raise CheckpointError(
            f"{state_path} is missing or damaged; the checkpoint cannot be resumed."
        ) from None
    if state.get("epochs_completed") != epoch or any(len(v) != epoch for v in history.values()):
        raise CheckpointError(
            f"{folder} does not hold epoch {epoch} (its state says "
            f"{state.get('epochs_completed')}); the checkpoint cannot be resumed."
        )
    return state, history, folder


def load(output, compile=True):
    """Load the latest checkpoint in ``output``: ``(model, state, history)``.

    Raises :class:`CheckpointError` when there is none, or when the model and
    the state in it do not belong together.
    """
    state, history, folder = read_state(output)
    import keras

    import zoo.layers  # noqa: F401  (registers the zoo's own layers for loading)

    try:
        model = keras.saving.load_model(os.path.join(folder, "model.keras"), compile=compile)
    except Exception as error:  # a truncated zip, a missing file, a layer not imported...
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"{folder}/model.keras cannot be loaded ({type(error).__name__}: {first_line}); "
            "the checkpoint cannot be resumed."
        ) from error
    return model, state, history


def clean_stale(output):
    """Remove temporary files and folders a killed run of the zoo left in ``output``.

    Only names the zoo's own writers use are touched: ``.NAME.XXXX`` beside an
    artifact (see :mod:`zoo._io`) and ``checkpoint/.epoch-NNNN.XXXX``.
    Returns what was removed.
    """
    patterns = [os.path.join(output, f".{name}.*") for name in ARTIFACTS]
    patterns.append(os.path.join(output, FOLDER, ".epoch-*"))
    patterns.append(os.path.join(output, FOLDER, f".{POINTER}.*"))
    removed = sorted(path for pattern in patterns for path in glob.glob(pattern))
    try:  # epoch folders the pointer does not name: a run killed before removing them
        current = latest_epoch(output)
        keep = os.path.join(output, FOLDER, _epoch_folder(current)) if current else None
        old = glob.glob(os.path.join(output, FOLDER, "epoch-*"))
    except CheckpointError:  # a damaged pointer: touch no epoch folder
        keep, old = None, []
    removed += sorted(path for path in old if path != keep)
    for path in removed:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    return removed


def check_same_run(state, config, output):
    """Refuse a ``--model`` or ``--dataset`` other than the checkpoint's (``None``: not given)."""
    for flag, given in (("model", config.model), ("dataset", config.dataset)):
        if given is not None and given != state.get(flag):
            raise CheckpointError(
                f"--resume: {output} was trained with --{flag} {state.get(flag)}, not {given}; "
                f"drop --{flag} to continue it, or train into a new --output."
            )


def check_same_model(model, config, output):
    """Refuse ``--image-size`` or ``--classes`` that differ from the checkpointed model."""
    shape, classes = tuple(model.input_shape[1:3]), int(model.output_shape[-1])
    if config.image_size is not None and tuple(config.image_size) != shape:
        raise CheckpointError(
            f"--resume: the model in {output} takes {shape[0]}x{shape[1]} images, not "
            f"{config.image_size[0]}x{config.image_size[1]}; drop --image-size to continue it."
        )
    if config.classes is not None and config.classes != classes:
        raise CheckpointError(
            f"--resume: the model in {output} has {classes} classes, not {config.classes}; "
            "drop --classes to continue it."
        )


def earlier_run(output):
    """The artifacts of an earlier run in ``output``, as sorted names (empty if none).

    A ``checkpoint`` folder holding only temporaries (a run killed while saving
    its first epoch) is not a run: :func:`clean_stale` removes what is in it.
    """
    return sorted(
        name
        for name in ARTIFACTS
        if os.path.lexists(os.path.join(output, name))
        and not (name == FOLDER and _only_temporaries(os.path.join(output, name)))
    )


def _only_temporaries(folder):
    return os.path.isdir(folder) and all(name.startswith(".") for name in os.listdir(folder))


def clear_run(output):
    """Remove an earlier run's artifacts from ``output`` (only :data:`ARTIFACTS`)."""
    for name in earlier_run(output):
        path = os.path.join(output, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def epoch_callback(output, history, state, writes=True):
    """A Keras callback that saves a checkpoint after every epoch with a finite loss.

    ``history`` (a dict of lists) is extended in place. An epoch whose loss is
    not finite is not saved, so the last checkpoint stays the last good one.
    In a multi-process JAX job saving gathers every process's variables, so
    every process saves; those with ``writes=False`` save to a scratch folder.
    """
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            if not math.isfinite(float(logs.get("loss", float("nan")))):
                return
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            if writes:
                save(self.model, output, {**state, "epochs_completed": epoch + 1}, history)
            else:
                _save_on_helper(self.model)

    return EpochCheckpoint()


def save_final(model, output, writes):
    """``OUTPUT/model.keras`` once training ends (a helper process saves to scratch: JAX
    gathers every process's variables when any of them saves)."""
    if not writes:
        _save_on_helper(model)
        return
    with atomic_path(os.path.join(output, "model.keras")) as temporary:
        model.save(temporary)


def _save_on_helper(model):
    """Save to a scratch folder that is then deleted: on a helper process of a multi-process
    JAX job, saving still has to happen (it gathers every process's variables)."""
    with tempfile.TemporaryDirectory() as scratch:
        model.save(os.path.join(scratch, "model.keras"))

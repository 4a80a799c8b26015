"""Epoch checkpoints that are never half-written: save, find, load and verify.

After every epoch `zoo-train` writes one checkpoint as a unit:

```text
OUTPUT/checkpoint/epoch-0003/model.keras    weights, architecture, optimizer state
OUTPUT/checkpoint/epoch-0003/state.json     what was trained, how, on what, how far
```

The epoch folder is filled under a temporary name (`.epoch-0003.XXXX`) and
renamed into place whole, so **an `epoch-NNNN` folder exists only when it is
complete**, and the checkpoint is the newest such folder: there is no pointer
file that could lag behind the folders. Older epoch folders are removed after
the new one is in place; a run killed in between leaves two complete ones, and
the newest wins. A run killed at any instant therefore leaves either a
complete newest epoch (`--resume` continues from it) or no complete epoch
at all, which is not a run: the next run cleans what the zoo left and starts.
After each checkpoint the files at the top of `OUTPUT` are refreshed from it
([`zoo.training.output_folder.publish`][]); the folder's names, its lock and
its clean-up are [`zoo.training.output_folder`][]'s.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile

from zoo._io import atomic_path, disk_full, write_json
from zoo.training import output_folder
from zoo.training.output_folder import FOLDER, CheckpointError, epoch_folder

__all__ = [
    "CheckpointError",
    "check_same_model",
    "check_same_run",
    "epoch_callback",
    "latest_epoch",
    "load",
    "publish_latest",
    "read_state",
    "save",
    "save_final",
]


def save(model, output, state, history, replacing=()):
    """Write the checkpoint of `state["epochs_completed"]` epochs as one unit; return its path.

    `replacing`: an earlier run's files ([`zoo.training.output_folder.run_files`][])
    that `--overwrite` replaces. They are removed here, once the new epoch is written and just
    before it is moved into place, so a run that fails before its first
    epoch leaves the earlier run as it was.
    """
    epoch = state["epochs_completed"]
    root = os.path.join(output, FOLDER)
    final = os.path.join(root, epoch_folder(epoch))
    try:
        os.makedirs(root, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=f".{epoch_folder(epoch)}.", dir=root)
        try:
            model.save(os.path.join(scratch, "model.keras"))
            write_json(os.path.join(scratch, "state.json"), {**state, "history": history})
            output_folder.clear_files(output, replacing)
            if os.path.isdir(final):  # not expected: a folder is kept whole until replaced
                os.replace(final, tempfile.mkdtemp(prefix=f".{epoch_folder(epoch)}.", dir=root))
            os.replace(scratch, final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        for path in output_folder.superseded(
            root
        ):  # the new epoch is in place: the older ones can go
            shutil.rmtree(path, ignore_errors=True)
        output_folder.publish(final, output, state, history)
    except OSError as error:
        raise _write_error(error, output) from None
    return final


def _write_error(error, output):
    """One line for an OSError while saving: a full disk says so, and what is kept."""
    problem = "the disk is full" if disk_full(error) else (error.strerror or str(error))
    return CheckpointError(
        f"cannot save the checkpoint in {output}: {problem}. The last complete epoch is kept; "
        "free space (or choose another --output), then --resume."
    )


def publish_latest(output, state, history):
    """Refresh the published files from the newest checkpoint (for a run stopped before it did)."""
    folder = os.path.join(output, FOLDER, epoch_folder(latest_epoch(output)))
    try:
        output_folder.publish(folder, output, state, history)
    except OSError as error:
        raise _write_error(error, output) from None


def latest_epoch(output):
    """The newest complete epoch in `output`'s checkpoint, or `None` when there is none."""
    folders = output_folder.epoch_folders(os.path.join(output, FOLDER))
    return folders[-1][1] if folders else None


def read_state(output):
    """The latest checkpoint's state and history, and its folder, without loading the model."""
    import json

    epoch = latest_epoch(output)
    if epoch is None:
        raise output_folder.nothing_to_resume(output)
    folder = os.path.join(output, FOLDER, epoch_folder(epoch))
    state_path = os.path.join(folder, "state.json")
    try:
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
        history = state.pop("history")
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
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
    """Load the latest checkpoint in `output`: `(model, state, history)`.

    Raises [`CheckpointError`][] when there is none, or when the model and
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


def check_same_run(state, config, output):
    """Refuse a `--model` or `--dataset` other than the checkpoint's (`None`: not given).

    A dataset path names the same dataset however it is written (`./pets`,
    `pets`, its absolute path).
    """
    for flag, given in (("model", config.model), ("dataset", config.dataset)):
        if given is None or given == state.get(flag) or _same_path(state, flag, given):
            continue
        raise CheckpointError(
            f"--resume: {output} was trained with --{flag} {state.get(flag)}, not {given}; "
            f"drop --{flag} to continue it, or train into a new --output."
        )


def _same_path(state, flag, given):
    recorded = state.get("dataset_path") if flag == "dataset" else None
    return recorded is not None and os.path.abspath(given) == recorded


def check_same_model(model, config, output):
    """Refuse `--image-size` or `--classes` that differ from the checkpointed model."""
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


def epoch_callback(output, state, history, writes=True, replacing=()):
    """A Keras callback that saves a checkpoint after every epoch with a finite loss.

    The callback keeps its own `history`: a copy of the one given, extended
    by each saved epoch (read it from `callback.history` after `fit`). An
    epoch whose loss is not finite is neither recorded nor saved, so the last
    checkpoint stays the last good one. `replacing`: an earlier run's files,
    removed by the first save (see [`save`][]). In a multi-process JAX job
    saving gathers every process's variables, so every process saves; those
    with `writes=False` save to a scratch folder.
    """
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history = {key: list(values) for key, values in history.items()}
            self.replacing = list(replacing)

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            if not math.isfinite(float(logs.get("loss", float("nan")))):
                return
            for key, value in logs.items():
                self.history.setdefault(key, []).append(float(value))
            if writes:
                done = {**state, "epochs_completed": epoch + 1}
                save(self.model, output, done, self.history, replacing=self.replacing)
                self.replacing = []
            else:
                _save_on_helper(self.model)

    return EpochCheckpoint()


def save_final(model, output, writes):
    """`OUTPUT/model.keras` once training ends (a helper process saves to scratch: JAX
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

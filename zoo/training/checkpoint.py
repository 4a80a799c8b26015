"""Checkpoints that are never half-written: save, find, load and verify.

After every epoch ``zoo-train`` writes one checkpoint as a unit::

    OUTPUT/checkpoint/epoch-0003/model.keras    weights, architecture, optimizer state
    OUTPUT/checkpoint/epoch-0003/state.json     what was trained, how, on what, how far

The epoch folder is filled under a temporary name (``.epoch-0003.XXXX``) and
renamed into place whole, so **an ``epoch-NNNN`` folder exists only when it is
complete**, and the checkpoint is the newest such folder: there is no pointer
file that could lag behind the folders. Older epoch folders are removed after
the new one is in place; a run killed in between leaves two complete ones, and
the newest wins. A run killed at any instant therefore leaves either a
complete newest epoch (``--resume`` continues from it) or no complete epoch
at all, which is not a run: the next run cleans what the zoo left and starts.

``OUTPUT/model.keras`` (a copy, never a link: what a user does to it cannot
reach the checkpoint), ``OUTPUT/state.json`` and ``OUTPUT/history.csv`` are
refreshed after each checkpoint for people and tools to read; resuming never
trusts them. While a run trains it holds the output folder (:func:`hold`):
a second run into the same folder is refused.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import re
import shutil
import tempfile

from zoo._io import atomic_path, disk_full, write_csv, write_json
from zoo.errors import ZooError

__all__ = [
    "ARTIFACTS",
    "CheckpointError",
    "check_same_model",
    "check_same_run",
    "clear_files",
    "earlier_run",
    "hold",
    "read_state",
    "run_files",
    "save",
    "save_final",
    "load",
    "publish",
    "latest_epoch",
    "clean_stale",
    "epoch_callback",
]

FOLDER = "checkpoint"
EPOCH_NAME = re.compile(r"epoch-(\d{4,})")
# The files a run publishes at the top of its output folder, by name.
PUBLISHED = (
    "model.keras",
    "history.csv",
    "state.json",
    "metrics.json",
    "classes.json",
    "curves.png",
    "confusion_matrix.png",
)
# Everything a run writes in its output folder; nothing else there is ever touched.
ARTIFACTS = (*PUBLISHED, FOLDER, "logs")
# Inside logs/: the event files of Keras's TensorBoard callback.
LOG_FILES = ("train/events.out.tfevents.*", "validation/events.out.tfevents.*")
# The file zoo-train creates and removes at once to check that OUTPUT is writable.
WRITE_TEST = "write-test"
# What an earlier version of the zoo wrote in checkpoint/ beside the epoch folders.
OLD_POINTER = "latest.json"


class CheckpointError(ZooError):
    """A checkpoint is missing, damaged, or belongs to another run."""


def _epoch_folder(epoch):
    return f"epoch-{epoch:04d}"


def history_rows(history):
    """``{"loss": [...], ...}`` as CSV rows ``{"epoch": 1, "loss": ...}``."""
    keys = list(history)
    count = len(history[keys[0]]) if keys else 0
    return [{"epoch": i + 1, **{k: history[k][i] for k in keys}} for i in range(count)]


def save(model, output, state, history, replacing=()):
    """Write the checkpoint of ``state["epochs_completed"]`` epochs as one unit; return its path.

    ``replacing``: an earlier run's files (:func:`run_files`) that ``--overwrite``
    replaces. They are removed here, once the new epoch is written and just
    before it is moved into place, so a run that fails before its first
    epoch leaves the earlier run as it was.
    """
    epoch = state["epochs_completed"]
    root = os.path.join(output, FOLDER)
    final = os.path.join(root, _epoch_folder(epoch))
    try:
        os.makedirs(root, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=f".{_epoch_folder(epoch)}.", dir=root)
        try:
            model.save(os.path.join(scratch, "model.keras"))
            write_json(os.path.join(scratch, "state.json"), {**state, "history": history})
            clear_files(output, replacing)
            if os.path.isdir(final):  # not expected: a folder is kept whole until replaced
                os.replace(final, tempfile.mkdtemp(prefix=f".{_epoch_folder(epoch)}.", dir=root))
            os.replace(scratch, final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        for path in _superseded(root):  # the new epoch is in place: the older ones can go
            shutil.rmtree(path, ignore_errors=True)
        _publish(final, output, state, history)
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


def _superseded(root):
    """Epoch folders older than the newest, and temporary epoch folders, in ``root``."""
    older = [os.path.join(root, name) for name, _ in _epoch_folders(root)[:-1]]
    return older + sorted(glob.glob(os.path.join(root, ".epoch-*")))


def _publish(folder, output, state, history):
    """Refresh the files people read at the top of OUTPUT (never read back by resume).

    ``model.keras`` is a copy: a user who saves over it changes nothing in
    the checkpoint.
    """
    with atomic_path(os.path.join(output, "model.keras")) as temporary:
        shutil.copyfile(os.path.join(folder, "model.keras"), temporary)
    write_csv(os.path.join(output, "history.csv"), history_rows(history), ["epoch", *history])
    write_json(os.path.join(output, "state.json"), state)


def publish(output, state, history):
    """Refresh the published files from the newest checkpoint (for a run stopped before it did)."""
    folder = os.path.join(output, FOLDER, _epoch_folder(latest_epoch(output)))
    try:
        _publish(folder, output, state, history)
    except OSError as error:
        raise _write_error(error, output) from None


def _epoch_folders(root):
    """``(name, epoch)`` of every complete epoch folder in ``root``, oldest first."""
    try:
        names = os.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        match = EPOCH_NAME.fullmatch(name)
        if match and os.path.isdir(os.path.join(root, name)):
            found.append((name, int(match.group(1))))
    return sorted(found, key=lambda pair: pair[1])


def latest_epoch(output):
    """The newest complete epoch in ``output``'s checkpoint, or ``None`` when there is none."""
    folders = _epoch_folders(os.path.join(output, FOLDER))
    return folders[-1][1] if folders else None


def read_state(output):
    """The latest checkpoint's state and history, and its folder, without loading the model."""
    import json

    epoch = latest_epoch(output)
    if epoch is None:
        raise CheckpointError(
            f"--resume: {output} holds no completed epoch to resume (a run stopped during its "
            "first epoch leaves none). Train without --resume: the run starts from scratch."
        )
    folder = os.path.join(output, FOLDER, _epoch_folder(epoch))
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
    artifact (see :mod:`zoo._io`), ``.write-test.XXXX``,
    ``checkpoint/.epoch-NNNN.XXXX``, and epoch folders older than the newest
    (a run killed before removing them).
    Call it only while holding the folder (:func:`hold`): another live run's
    temporaries would look the same. Returns what was removed.
    """
    root = os.path.join(output, FOLDER)
    patterns = [os.path.join(output, f".{name}.*") for name in (*ARTIFACTS, WRITE_TEST)]
    patterns.append(os.path.join(root, f".{OLD_POINTER}.*"))
    removed = sorted(path for pattern in patterns for path in glob.glob(pattern))
    removed += _superseded(root)
    for path in removed:
        _remove(path)
    return removed


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def hold(output):
    """Hold ``output`` for one run: while held, another run that asks for it is refused.

    The lock is the kernel's (``flock`` on the folder itself), so it leaves no
    file behind and ends with the process however it ends, SIGKILL included.
    Where ``fcntl`` does not exist (Windows) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    descriptor = os.open(output, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CheckpointError(
                f"{output} is in use by another zoo-train run; wait for it to end, or choose "
                "another --output."
            ) from None
        yield
    finally:
        os.close(descriptor)


def earlier_run(output):
    """The artifacts of an earlier run in ``output``, as sorted names (empty if none).

    A run is what can be resumed or read: a complete checkpoint epoch, or a
    published result file. A folder with neither (a run stopped during its
    first epoch: temporaries, TensorBoard logs) is not a run.
    """
    published = [name for name in PUBLISHED if os.path.lexists(os.path.join(output, name))]
    epochs = _epoch_folders(os.path.join(output, FOLDER))
    return sorted(published + ([FOLDER] if epochs else []))


def run_files(output):
    """Every file and folder the zoo writes that ``output`` holds now, as paths.

    Only the zoo's own names: the published files, the epoch folders and the
    older zoo's pointer in ``checkpoint/``, TensorBoard's event files in
    ``logs/``. A user's own files beside them (``logs/notes.txt``,
    ``checkpoint/best.pt``) are never listed, so never removed.
    """
    root = os.path.join(output, FOLDER)
    paths = [os.path.join(output, name) for name in PUBLISHED]
    paths += [os.path.join(root, name) for name, _ in _epoch_folders(root)]
    paths.append(os.path.join(root, OLD_POINTER))
    paths += [p for pattern in LOG_FILES for p in glob.glob(os.path.join(output, "logs", pattern))]
    return [path for path in paths if os.path.lexists(path)]


def clear_files(output, paths):
    """Remove ``paths`` (from :func:`run_files`), then the zoo's folders they leave empty."""
    for path in paths:
        _remove(path)
    if not paths:
        return
    for folder in ("logs/train", "logs/validation", "logs", FOLDER):
        with contextlib.suppress(OSError):  # not there, or holds something of the user's
            os.rmdir(os.path.join(output, folder))


def check_same_run(state, config, output):
    """Refuse a ``--model`` or ``--dataset`` other than the checkpoint's (``None``: not given).

    A dataset path names the same dataset however it is written (``./pets``,
    ``pets``, its absolute path).
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


def epoch_callback(output, history, state, writes=True, replacing=()):
    """A Keras callback that saves a checkpoint after every epoch with a finite loss.

    ``history`` (a dict of lists) is extended in place. An epoch whose loss is
    not finite is not saved, so the last checkpoint stays the last good one.
    ``replacing``: an earlier run's files, removed by the first save (see
    :func:`save`). In a multi-process JAX job saving gathers every process's
    variables, so every process saves; those with ``writes=False`` save to a
    scratch folder.
    """
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.replacing = list(replacing)

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            if not math.isfinite(float(logs.get("loss", float("nan")))):
                return
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            if writes:
                done = {**state, "epochs_completed": epoch + 1}
                save(self.model, output, done, history, replacing=self.replacing)
                self.replacing = []
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

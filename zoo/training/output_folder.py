"""The output folder of a run: what the zoo writes there, by name, and who holds it.

A run writes only these names in `OUTPUT` (`ARTIFACTS`):

```text
checkpoint/epoch-NNNN/    the newest complete epoch (see zoo.training.checkpoint)
model.keras  history.csv  state.json           refreshed after every epoch
metrics.json classes.json preprocessing.json curves.png confusion_matrix.png
                          at the end
logs/                     TensorBoard's event files, with --tensorboard
```

`model.keras` is a copy, never a link: what a user does to it cannot
reach the checkpoint. The published files are for people and tools to read;
resuming never trusts them.

While a run trains it holds the folder ([`hold`][]): a second run into it
is refused. Everything the zoo removes, it finds by these names
([`run_files`][], [`clean_stale`][]): a user's own files beside them
are never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile

from zoo._io import atomic_path, write_csv, write_json
from zoo.errors import ZooError
from zoo.training import TrainingError

__all__ = [
    "ARTIFACTS",
    "CheckpointError",
    "claim",
    "clean_stale",
    "clear_files",
    "earlier_run",
    "epoch_folder",
    "epoch_folders",
    "hold",
    "nothing_to_resume",
    "publish",
    "run_files",
    "superseded",
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
    "preprocessing.json",
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
    """A checkpoint is missing, damaged, or belongs to another run; or its folder is held."""


# --------------------------------------------------------------------------- holding it


@contextlib.contextmanager
def claim(config, is_chief=True):
    """Hold the output folder for this run: yields `(path, files this run replaces)`.

    The folder is created and checked writable, then held (a second run into
    it is refused, [`hold`][]) and cleared of a killed run's temporaries. A
    fresh run into a folder that holds an earlier run is refused, unless
    `--overwrite`: then that run's files (only the zoo's, [`run_files`][])
    are replaced by this run's first checkpoint, never before, so bad data or
    a bad flag found later loses nothing. A folder with no completed epoch
    holds no run: what the zoo left there is replaced the same way. In a
    multi-process job only the chief (process 0) holds and checks the
    folder: the others may share it.
    """
    output = config.output
    if not is_chief:
        os.makedirs(output, exist_ok=True)
        yield os.path.abspath(output), []
        return
    if config.resume and not os.path.isdir(output):
        raise nothing_to_resume(output)  # and nothing is created
    _make_writable(output)
    with hold(output):
        clean_stale(output)
        earlier = [] if config.resume else earlier_run(output)
        if earlier and not config.overwrite:
            raise TrainingError(
                f"{output} already holds a run ({', '.join(earlier)}); pass --resume to "
                "continue it, --overwrite to replace it, or choose another --output."
            )
        yield os.path.abspath(output), ([] if config.resume else run_files(output))


def nothing_to_resume(output):
    """The error for `--resume` into a folder with no complete epoch."""
    return CheckpointError(
        f"--resume: {output} holds no completed epoch to resume (a run stopped during its "
        "first epoch leaves none). Train without --resume: the run starts from scratch."
    )


def _make_writable(output):
    try:
        os.makedirs(output, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=output, prefix=f".{WRITE_TEST}.")
        probe.close()
    except OSError as error:
        raise TrainingError(
            f"cannot write to output folder {output}: {error.strerror or error}. "
            "Choose a writable folder with --output."
        ) from None


@contextlib.contextmanager
def hold(output):
    """Hold `output` for one run: while held, another run that asks for it is refused.

    The lock is the kernel's (`flock` on the folder itself), so it leaves no
    file behind and ends with the process however it ends, SIGKILL included.
    Where `fcntl` does not exist (Windows) nothing is locked.
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


# --------------------------------------------------------------------------- the zoo's names


def epoch_folder(epoch):
    """The name of epoch `epoch`'s checkpoint folder: `epoch-0003`."""
    return f"epoch-{epoch:04d}"


def epoch_folders(root):
    """`(name, epoch)` of every complete epoch folder in `root`, oldest first."""
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


def superseded(root):
    """Epoch folders older than the newest, and temporary epoch folders, in `root`."""
    older = [os.path.join(root, name) for name, _ in epoch_folders(root)[:-1]]
    return older + sorted(glob.glob(os.path.join(root, ".epoch-*")))


def earlier_run(output):
    """The artifacts of an earlier run in `output`, as sorted names (empty if none).

    A run is what can be resumed or read: a complete checkpoint epoch, or a
    published result file. A folder with neither (a run stopped during its
    first epoch: temporaries, TensorBoard logs) is not a run.
    """
    published = [name for name in PUBLISHED if os.path.lexists(os.path.join(output, name))]
    epochs = epoch_folders(os.path.join(output, FOLDER))
    return sorted(published + ([FOLDER] if epochs else []))


def run_files(output):
    """Every file and folder the zoo writes that `output` holds now, as paths.

    Only the zoo's own names: the published files, the epoch folders and the
    older zoo's pointer in `checkpoint/`, TensorBoard's event files in
    `logs/`. A user's own files beside them (`logs/notes.txt`,
    `checkpoint/best.pt`) are never listed, so never removed.
    """
    root = os.path.join(output, FOLDER)
    paths = [os.path.join(output, name) for name in PUBLISHED]
    paths += [os.path.join(root, name) for name, _ in epoch_folders(root)]
    paths.append(os.path.join(root, OLD_POINTER))
    paths += [p for pattern in LOG_FILES for p in glob.glob(os.path.join(output, "logs", pattern))]
    return [path for path in paths if os.path.lexists(path)]


# --------------------------------------------------------------------------- writing, removing


def history_rows(history):
    """`{"loss": [...], ...}` as CSV rows `{"epoch": 1, "loss": ...}`."""
    keys = list(history)
    count = len(history[keys[0]]) if keys else 0
    return [{"epoch": i + 1, **{k: history[k][i] for k in keys}} for i in range(count)]


def publish(folder, output, state, history):
    """Refresh the files people read at the top of `output` from the epoch `folder`.

    `model.keras` is a copy: a user who saves over it changes nothing in
    the checkpoint. Raises `OSError` as the writing does.
    """
    with atomic_path(os.path.join(output, "model.keras")) as temporary:
        shutil.copyfile(os.path.join(folder, "model.keras"), temporary)
    write_csv(os.path.join(output, "history.csv"), history_rows(history), ["epoch", *history])
    write_json(os.path.join(output, "state.json"), state)


def clean_stale(output):
    """Remove temporary files and folders a killed run of the zoo left in `output`.

    Only names the zoo's own writers use are touched: `.NAME.XXXX` beside an
    artifact (see `zoo._io`), `.write-test.XXXX`,
    `checkpoint/.epoch-NNNN.XXXX`, and epoch folders older than the newest
    (a run killed before removing them).
    Call it only while holding the folder ([`hold`][]): another live run's
    temporaries would look the same. Returns what was removed.
    """
    root = os.path.join(output, FOLDER)
    patterns = [os.path.join(output, f".{name}.*") for name in (*ARTIFACTS, WRITE_TEST)]
    patterns.append(os.path.join(root, f".{OLD_POINTER}.*"))
    removed = sorted(path for pattern in patterns for path in glob.glob(pattern))
    removed += superseded(root)
    for path in removed:
        _remove(path)
    return removed


def clear_files(output, paths):
    """Remove `paths` (from [`run_files`][]), then the zoo's folders they leave empty."""
    for path in paths:
        _remove(path)
    if not paths:
        return
    for folder in ("logs/train", "logs/validation", "logs", FOLDER):
        with contextlib.suppress(OSError):  # not there, or holds something of the user's
            os.rmdir(os.path.join(output, folder))


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)

"""What `--resume` restores, and what it checks before it trains a single step.

A resumed run continues the run in its output folder; it must never train
something other than what the user believes:

- **The recipe is the checkpoint's.** The optimizer, learning rate, schedule,
  label smoothing, batch size, `--limit` and validation split are recorded
  in every checkpoint's `state.json` and restored; a flag that asks for
  another value is refused (the optimizer's moments belong to the one that
  made them). `--epochs` is the new total, by default the total the run
  first asked for.
- **The schedule fits the new total.** A warm-up-cosine rate that reached
  zero at the end of a 2-epoch run would keep a resumed run to 6 epochs at
  zero, training nothing. The resumed model is compiled again for the new
  total, as a run of that length would have been, and the optimizer's state
  (its step count and moments) is carried over: with the same total this is
  exactly the schedule the run had.
- **The data is the same.** The class names and a fingerprint of the images
  and labels are recorded; a dataset whose classes or contents changed (a
  renamed class folder, another folder at the same relative path) is refused.
  A dataset given as a path is recorded as an absolute path, so resuming from
  another directory reads the same files.
- **Finished epochs still get their report.** A run stopped after its last
  epoch but before its report ([`report_done`][]) is finished by
  `--resume`: evaluate, write the report, train nothing.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from zoo.training import checkpoint
from zoo.training.checkpoint import CheckpointError

__all__ = [
    "RECIPE_FIELDS",
    "recipe_of",
    "settings",
    "data_identity",
    "check_same_data",
    "recompile",
    "report_done",
    "check_epochs_left",
]

# The flags a resumed run takes from its checkpoint; a different value is refused.
RECIPE_FIELDS = ("optimizer", "learning_rate", "schedule", "label_smoothing", "batch_size")
RECIPE_FIELDS += ("limit", "validation_split", "augment")


def recipe_of(config):
    """What the checkpoint records of how the run trains (the new total included)."""
    return {name: getattr(config, name) for name in (*RECIPE_FIELDS, "epochs")}


def settings(config):
    """`config` for a resumed run: the checkpoint's model, dataset and recipe filled in.

    Raises [`zoo.training.checkpoint.CheckpointError`][] when there is nothing to
    resume, or when a flag asks for something other than what the run used.
    """
    output = config.output
    state, _, _ = checkpoint.read_state(output)
    checkpoint.check_same_run(state, config, output)
    recorded = state.get("recipe", {})
    for name in RECIPE_FIELDS:
        given, used = getattr(config, name), recorded.get(name)
        if given is not None and used is not None and given != used:
            flag = "--" + name.replace("_", "-")
            raise CheckpointError(
                f"--resume: {output} was trained with {flag} {used}, not {given}; the "
                f"optimizer's state belongs to that recipe. Drop {flag} to continue it, or "
                "train into a new --output."
            )
    filled = {
        name: recorded[name]
        for name in (*RECIPE_FIELDS, "epochs")
        if getattr(config, name) is None and recorded.get(name) is not None
    }
    dataset = state.get("dataset_path") or state["dataset"]
    return config.replace(model=state["model"], dataset=dataset, **filled)


def dataset_path(dataset):
    """The absolute path of a dataset given as a path; `None` for a registered name."""
    return os.path.abspath(dataset) if os.path.exists(dataset) else None


def data_identity(data, dataset):
    """What a checkpoint records of its data: class names, path, and a fingerprint.

    The fingerprint is a BLAKE2 hash of every split's labels and of its images
    (the arrays' bytes; for image files, each file's path relative to the
    dataset and its size), so a resumed run can tell the same data from other
    data at the same path, at the cost of one pass over the arrays.
    """
    root = dataset_path(dataset)
    digest = hashlib.blake2b(digest_size=16)
    for split in (data.train, data.validation, data.test):
        if split is None:
            digest.update(b"none")
            continue
        digest.update(np.ascontiguousarray(split.labels, dtype="int64").tobytes())
        if split.streaming:
            for path in split.images:
                name = os.path.relpath(path, root) if root else path
                digest.update(f"{name}\0{os.path.getsize(path)}\0".encode())
        else:
            digest.update(str(split.images.shape).encode())
            digest.update(np.ascontiguousarray(split.images).tobytes())
    return {
        "class_names": [str(name) for name in data.class_names],
        "dataset_path": root,
        "data_fingerprint": digest.hexdigest(),
    }


def check_same_data(state, identity, output):
    """Refuse a resumed run whose data is not what its checkpoint was trained on."""
    dataset = state.get("dataset_path") or state.get("dataset")
    names = state.get("class_names")
    if names is not None and names != identity["class_names"]:
        raise CheckpointError(
            f"--resume: the dataset {dataset} now has the classes {identity['class_names']}, "
            f"but {output} was trained on {names}; restore the dataset, or train into a new "
            "--output."
        )
    fingerprint = state.get("data_fingerprint")
    if fingerprint is not None and fingerprint != identity["data_fingerprint"]:
        raise CheckpointError(
            f"--resume: the images or labels of {dataset} are not the ones {output} was "
            "trained on (files added, removed or changed, or another --limit); restore them, "
            "or train into a new --output."
        )


def recompile(model, compile_new):
    """Compile a resumed `model` afresh with `compile_new(model)`, keeping its optimizer's
    state (step count and moments), so the schedule spans the run's new total."""
    old = model.optimizer
    old_values = [variable.numpy() for variable in old.variables]
    compile_new(model)
    new = model.optimizer
    new.build(model.trainable_variables)
    shapes = [tuple(v.shape) for v in new.variables]
    if type(new) is not type(old) or shapes != [value.shape for value in old_values]:
        raise CheckpointError(
            f"--resume: the checkpoint's optimizer ({type(old).__name__}) does not match its "
            f"recorded recipe ({type(new).__name__}); train into a new --output."
        )
    for variable, value in zip(new.variables, old_values, strict=True):
        variable.assign(value)
    return model


def report_done(output, epochs):
    """Whether `output`'s report (`metrics.json`, written last) covers `epochs` epochs."""
    try:
        with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
            return json.load(handle).get("epochs_completed") == epochs
    except (OSError, ValueError, AttributeError):
        return False


def check_epochs_left(config, done, output):
    """Refuse a resumed run with nothing to do: every epoch trained and reported."""
    if done > config.epochs or (done == config.epochs and report_done(output, done)):
        raise CheckpointError(
            f"--resume: {done} epochs are already done in {output}; ask for more with "
            f"--epochs N (N > {done}, the total)."
        )

"""Where an export may write: never over a user's file, and never half a previous export.

[`check_output_free`][] refuses any path that is not a previous zoo export
(a previous export only with `overwrite`); an export recognises its own by a
stamp ([`mark_as_export`][]): the `zoo-export.json` a SavedModel folder
holds, or the `zoo.export` metadata key of an ONNX file.

An export is written in a scratch folder beside `output` and moved into
place by [`move_into_place`][], which sets a previous export aside first and
puts it back if the move fails. Both folders are hidden and named with the
process id, so when an export is killed part-way the next one into the same
folder can tell its leftovers from a running export's and undo them
([`recover_killed_exports`][]).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

from zoo._io import dead_leftovers
from zoo.deploy._onnx_repair import save_onnx
from zoo.deploy.model_file import DeployError

__all__ = [
    "EXPORT_MANIFEST",
    "ONNX_MARKER",
    "check_output_free",
    "mark_as_export",
    "move_into_place",
    "previous_export",
    "recover_killed_exports",
    "scratch_folder",
]

# How a later --overwrite recognises an export as the zoo's own (see check_output_free).
EXPORT_MANIFEST = "zoo-export.json"
ONNX_MARKER = "zoo.export"  # the metadata key, kept from 0.1.0 so older exports are found
# The folders an export works in beside OUTPUT, named with its process id so that the next
# run can tell a killed export's leftovers from a running one's (see recover_killed_exports).
SCRATCH = re.compile(r"\.zoo-export\.(?P<pid>[0-9]+)\..+")  # the new export, being checked
RETIRED = re.compile(r"\.zoo-export\.old\.(?P<pid>[0-9]+)\..+")  # the old one, moved aside


def _targets(format, output):
    """Every path an export of `format` to `output` may write: ONNX adds a `.data` file."""
    return [output, output + ".data"] if format == "onnx" else [output]


def _saved_model_files(folder):
    """Every file under `folder`, as sorted paths relative to it."""
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


def previous_export(format, output):
    """The paths an earlier export wrote at `output`, or an empty set if it is not one.

    A SavedModel folder is a previous export when it holds exactly the files its
    `zoo-export.json` lists; an ONNX file when its metadata key `zoo.export`
    is present (that stamp also says whether a `.data` file belongs to it).
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
    """Refuse to write over anything but a previous zoo export (and that only with `overwrite`).

    An empty folder counts as free for a SavedModel. Raises [`DeployError`][]
    naming the path and the way out.
    """
    output = os.path.abspath(output)
    replaceable = previous_export(format, output) if overwrite else set()
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


def mark_as_export(format, written, backend):
    """Stamp the export with what it consists of, so a later `--overwrite` can recognise it."""
    from zoo import __version__

    stamp = {"format": format, "backend": backend, "zoo": __version__}
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
    save_onnx(model, written)


def scratch_folder(destination):
    """A new hidden folder in `destination` for an export to be written and checked in."""
    return _work_folder(destination, ".zoo-export.")


def _work_folder(destination, prefix):
    """A new hidden folder in `destination` whose name carries this process's id."""
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", dir=destination)


def move_into_place(scratch, format, output, overwrite):
    """Rename what the exporter wrote in `scratch` to `output`, after checking again.

    Every file of a previous export being replaced is renamed aside first and
    put back if moving the new one in fails (or is interrupted); it is deleted
    only once the new export is in place. The main file (`output` itself)
    goes aside first and comes in last, so a missing `output` beside a
    killed run's aside folder tells [`recover_killed_exports`][] to restore.
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


def recover_killed_exports(folder):
    """Undo what exports killed part-way left in `folder`; return the paths restored.

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
        elif main is not None and not previous_export(_format_of(main), main):
            continue  # someone else's file took the place: keep the only copy we have
        shutil.rmtree(retired, ignore_errors=True)
    return restored


def _format_of(path):
    return "saved_model" if os.path.isdir(path) else "onnx"

"""Atomic file writes: a reader (or a crash) never sees half a file.

Each writer fills a temporary file in the destination folder, then renames it
over the destination with `os.replace`, which is atomic on POSIX and Windows.
A writer that puts its process id in a temporary's name lets the next run find
what a killed run left behind (`dead_leftovers`).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` (same suffix); rename it over `path` on success."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    suffix = ".keras" if name.endswith(".keras") else os.path.splitext(name)[1]
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=directory)
    os.close(handle)
    os.remove(temporary)  # writers such as model.save want to create the file themselves
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path, data):
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")


def write_csv(path, rows, fieldnames):
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def save_figure(figure, path, dpi=100):
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=dpi)


# --- temporaries a killed process left behind -----------------------------------------------


def process_alive(pid):
    """Whether a process with this id runs on this machine (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def dead_leftovers(folder, pattern):
    """Entries of `folder` whose names match `pattern` and whose writer has died.

    `pattern` is a compiled regular expression with a `pid` group: the
    process id that the writer put in the name. A live process's names never
    come back, so a run never removes what another run is still writing.
    """
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        match = pattern.fullmatch(name)
        if match and not process_alive(int(match.group("pid"))):
            found.append(os.path.join(folder, name))
    return found


def disk_full(error):
    """Whether `error` says the disk (or the user's quota) is full."""
    if not isinstance(error, OSError):
        return False
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    text = str(error).lower()  # h5py reports the C library's error inside its own message
    return "no space left" in text or "quota exceeded" in text

"""Atomic file writes: a reader (or a crash) never sees half a file.

Each writer fills a temporary file in the destination folder, then renames it
over the destination with ``os.replace``, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success."""
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

"""Every tutorial runs top to bottom on this backend; none is committed with outputs."""

import os
import pathlib
import time

import keras
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_six_tutorials():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_this_backend(path, tmp_path):
    book = nbformat.read(path, as_version=4)
    backend = keras.backend.backend()
    env = {**os.environ, "KERAS_BACKEND": backend, "MPLBACKEND": "Agg"}
    client = NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.perf_counter()
    client.execute(env=env)
    elapsed = time.perf_counter() - start
    first = "".join(o.get("text", "") for o in book.cells[1].outputs)
    assert f"on {backend}" in first  # the first code cell reports the backend in use
    print(f"{path.name} on {backend}: {elapsed:.0f} s")

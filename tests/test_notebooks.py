"""Every tutorial runs top to bottom on this backend and shows its pictures.

The notebooks run as Jupyter runs them (nbclient, ipykernel's default inline
Matplotlib backend, no MPLBACKEND override), and the test looks at what a
reader would see: the images and animations in the outputs, no warning that a
figure could not be shown, and nothing on stderr. Jupyter draws stderr as a pink box, and a
reader takes it for an error: TensorFlow's start-up log, a deprecation warning or a stray
progress bar all count. A cell that shows a warning on purpose (to teach what it means) says
so in its metadata with the tag ``shows-warning`` (``"tags": ["shows-warning"]``); only such
cells may write to stderr.

A library's C/C++ code writes to file descriptor 2 directly (TensorFlow's start-up log does).
Jupyter forwards that into the notebook, but ipykernel stops doing so when it sees pytest's
PYTEST_CURRENT_TEST variable, so the kernel starts without it and the test sees what a reader
sees, on every backend. On JAX and PyTorch TensorFlow must not even be imported; on TensorFlow
each chapter imports ``zoo`` before Keras, which keeps TensorFlow's start-up lines (CUDA drivers,
cuInit) out of the notebook.
"""

import os
import pathlib
import re
import time

import keras
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
MIN_WORDS = 1000  # of Markdown prose per chapter
MIN_PICTURES = 3  # displayed figures or animations per chapter
WARNING_TAG = "shows-warning"  # cell tag: this cell writes to stderr on purpose
HEADLESS_WARNINGS = re.compile(
    r"non-interactive|cannot be shown|FigureCanvasAgg is non-interactive|Matplotlib is currently "
    r"using agg",
    re.IGNORECASE,
)


def pictures(book):
    """The displayed images and animations: PNG/GIF/JPEG/SVG outputs and HTML <img>/<video>."""
    count = 0
    for cell in book.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if any(kind in data for kind in ("image/png", "image/gif", "image/jpeg")):
                count += 1
            elif re.search(r"<img|<video|animation", str(data.get("text/html", ""))):
                count += 1
    return count


def unexpected_stderr(book):
    """(cell index, text) of every stderr output in a cell not tagged ``shows-warning``."""
    found = []
    for index, cell in enumerate(book.cells):
        if WARNING_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append((index, output.get("text", "")))
    return found


def markdown_words(book):
    text = " ".join(cell.source for cell in book.cells if cell.cell_type == "markdown")
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|```.*?```|<[^>]+>", " ", text, flags=re.DOTALL)
    return len(re.findall(r"[A-Za-z][A-Za-z'-]*", text))


def test_stderr_rule_spares_only_tagged_cells():
    def cell(text, tags=()):
        made = nbformat.v4.new_code_cell("pass", metadata={"tags": list(tags)} if tags else {})
        made.outputs = [nbformat.v4.new_output("stream", name="stderr", text=text)]
        return made

    quiet = nbformat.v4.new_code_cell("print(1)")
    quiet.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    cells = [quiet, cell("oops\n"), cell("on purpose\n", [WARNING_TAG])]
    book = nbformat.v4.new_notebook(cells=cells)
    assert unexpected_stderr(book) == [(1, "oops\n")]
    book.cells[1].metadata["tags"] = ["other-tag"]
    assert unexpected_stderr(book) == [(1, "oops\n")]


def test_there_are_six_tutorials():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_a_chapter(path):
    """Prose, formulas and exercises with hidden solutions, never a Matplotlib override."""
    book = nbformat.read(path, as_version=4)
    assert markdown_words(book) >= MIN_WORDS, f"{path.name}: {markdown_words(book)} words"
    markdown = "\n".join(c.source for c in book.cells if c.cell_type == "markdown")
    assert "$$" in markdown, f"{path.name} has no displayed formula"
    assert markdown.count("<details>") >= 2, f"{path.name}: exercises need collapsed solutions"
    code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert "matplotlib.use(" not in code and "MPLBACKEND" not in code, path.name
    # The docs site's table of contents links a heading by an anchor that inline code breaks.
    headings = [line for line in markdown.splitlines() if re.match(r"#+ ", line)]
    assert [h for h in headings if "`" in h] == [], f"{path.name}: code in a heading"


def execute(path, tmp_path):
    book = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["KERAS_BACKEND"] = keras.backend.backend()
    env.pop("PYTEST_CURRENT_TEST", None)  # let ipykernel forward C-level stderr, as in Jupyter
    client = NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    start = time.perf_counter()
    client.execute(env=env)
    return book, time.perf_counter() - start


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_its_pictures(path, tmp_path):
    backend = keras.backend.backend()
    book, elapsed = execute(path, tmp_path)
    first = "".join(o.get("text", "") for o in book.cells[1].outputs)
    assert f"on {backend}" in first  # the first code cell reports the backend in use
    shown = pictures(book)
    assert shown >= MIN_PICTURES, f"{path.name} displayed {shown} pictures on {backend}"
    for cell in book.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("name") == "stderr" else ""
            assert not HEADLESS_WARNINGS.search(text), f"{path.name}: {text.strip()[:200]}"
    stray = unexpected_stderr(book)
    assert not stray, (
        f"{path.name} on {backend} wrote to stderr in cell {stray[0][0]} (tag the cell "
        f"{WARNING_TAG!r} if that is on purpose): {stray[0][1].strip()[:300]}"
    )
    print(f"{path.name} on {backend}: {elapsed:.0f} s, {shown} pictures")
    executed = os.environ.get("ZOO_EXECUTED_NOTEBOOKS")
    if executed:  # keep the executed copy, e.g. for the docs site
        folder = pathlib.Path(executed) / backend
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(book, folder / path.name)

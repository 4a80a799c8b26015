"""MkDocs hook: the executed tutorials from ``notebooks/`` become the site's Tutorials section.

Every ``notebooks/*.ipynb`` is executed with ``KERAS_BACKEND=jax`` (as Jupyter runs it: nbclient,
ipykernel's inline Matplotlib backend) into ``build/docs/executed/tutorials/``, and mkdocs-jupyter
renders the executed copy as the page ``tutorials/NAME/``. An executed copy is reused, not run
again, while its cells still match the notebook's; ``$ZOO_EXECUTED_NOTEBOOKS/jax/NAME.ipynb``
(written by ``tests/test_notebooks.py``) is tried too, so ``make test`` runs each notebook once.

Notebooks that need running run two at a time (each in its own kernel; much of their time is
imports and single-threaded Python, so two kernels share two cores well).

Environment:
    ZOO_EXECUTED_NOTEBOOKS  folder of already-executed notebooks, ``<backend>/NAME.ipynb``.
    ZOO_DOCS_NOTEBOOKS      the notebooks to publish (default: ``notebooks/`` of this repo).
    ZOO_DOCS_JOBS           how many notebooks run at once (default 2).
"""

from __future__ import annotations

import logging
import os
import pathlib
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import nbformat
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from nbclient import NotebookClient

log = logging.getLogger("mkdocs.hooks.notebooks")

BACKEND = "jax"
SECTION = "Tutorials"  # the nav entry this hook fills
TUTORIALS = "tutorials"  # folder of the tutorial pages in the site
TIMEOUT = 900  # seconds per cell


def _root(config) -> pathlib.Path:
    return pathlib.Path(config.config_file_path).resolve().parent


def _sources(config) -> list[pathlib.Path]:
    folder = os.environ.get("ZOO_DOCS_NOTEBOOKS") or _root(config) / "notebooks"
    return sorted(pathlib.Path(folder).glob("*.ipynb"))


def _cells(book) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in book.cells]


def _executed_copy(candidate: pathlib.Path, source) -> bool:
    """Whether ``candidate`` is ``source`` run to the end: same cells, every code cell executed."""
    if not candidate.is_file():
        return False
    try:
        book = nbformat.read(candidate, as_version=4)
    except Exception:  # a half-written or foreign file: run the notebook again
        return False
    return _cells(book) == _cells(source) and all(
        cell.execution_count is not None
        for cell in book.cells
        if cell.cell_type == "code" and cell.source.strip()  # Jupyter skips empty cells
    )


def _execute(source, target: pathlib.Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}
    env["KERAS_BACKEND"] = BACKEND
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="zoo-docs-") as cwd:
        client = NotebookClient(
            source,
            timeout=TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": cwd}},
        )
        client.execute(env=env)  # a failing cell fails the build
    _write(source, target)


def _write(book, target: pathlib.Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    nbformat.write(book, partial)
    partial.replace(target)


def reuse_executed(path: pathlib.Path, target: pathlib.Path) -> bool:
    """Whether ``target`` now holds ``path`` executed, kept or copied from an earlier run."""
    source = nbformat.read(path, as_version=4)
    if _executed_copy(target, source):
        log.info("Reusing the executed %s", target)
        return True
    if os.environ.get("ZOO_EXECUTED_NOTEBOOKS"):
        candidate = pathlib.Path(os.environ["ZOO_EXECUTED_NOTEBOOKS"]) / BACKEND / path.name
        if _executed_copy(candidate, source):
            log.info("Reusing the executed %s", candidate)
            _write(nbformat.read(candidate, as_version=4), target)
            return True
    return False


def execute_notebook(path: pathlib.Path, target: pathlib.Path) -> None:
    log.info("Executing %s with KERAS_BACKEND=%s", path.name, BACKEND)
    start = time.perf_counter()
    _execute(nbformat.read(path, as_version=4), target)
    log.info("Executed %s in %.0f s", path.name, time.perf_counter() - start)


def on_config(config):
    """Fill the empty ``Tutorials`` nav section with one page per notebook, in file order."""
    pages = [f"{TUTORIALS}/{path.name}" for path in _sources(config)]
    for entry in config.nav or []:
        if isinstance(entry, dict) and SECTION in entry and not entry[SECTION]:
            entry[SECTION] = pages
    return config


@event_priority(100)  # before mkdocs-jupyter wraps the .ipynb files as pages
def on_files(files, config):
    # A real File under a folder of its own (mkdocs-jupyter's wrapper loses a generated File's
    # path): build/docs/executed/tutorials/NAME.ipynb is the page tutorials/NAME/.
    executed = _root(config) / "build" / "docs" / "executed"
    sources = _sources(config)
    if not sources:
        raise FileNotFoundError("no notebooks to publish: notebooks/*.ipynb is empty")
    targets = {path: executed / TUTORIALS / path.name for path in sources}
    stale = [path for path in sources if not reuse_executed(path, targets[path])]
    if stale:
        jobs = int(os.environ.get("ZOO_DOCS_JOBS") or 2)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            # The last chapters are the longest: start them first. list() re-raises a failure.
            list(pool.map(lambda path: execute_notebook(path, targets[path]), stale[::-1]))
    for path in sources:
        uri = f"{TUTORIALS}/{path.name}"
        files.append(File(uri, str(executed), config.site_dir, config.use_directory_urls))
    return files

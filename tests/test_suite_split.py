"""`make test` runs PyTorch's suite in the torch-only venv, then only what that pass skipped.

tests/conftest.py writes the skipped tests' node ids to ``ZOO_SKIPPED_TESTS``; the
Makefile hands that file to pytest (``pytest @FILE``) in the full venv. If the list
missed a test, no venv would run it on PyTorch: these tests check the list.
"""

import os
import pathlib
import subprocess
import sys

TESTS = pathlib.Path(__file__).resolve().parent
MAKEFILE = (TESTS.parent / "Makefile").read_text()

SAMPLE = """
import pytest

def test_passes():
    pass

@pytest.mark.skip(reason="a marker")
def test_skipped_by_a_marker():
    pass

def test_skipped_inside():
    pytest.skip("needs a package")

@pytest.mark.xfail(reason="known")
def test_expected_to_fail():
    assert False

@pytest.mark.parametrize("kind", ["kept", "dropped"])
def test_one_case_skips(kind):
    if kind == "dropped":
        pytest.skip("this case only")
"""


def run_pytest(folder, *args, **env):
    environment = {**os.environ, "PYTHONPATH": str(TESTS), **env}
    command = [sys.executable, "-m", "pytest", "-p", "conftest", "-q", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, *args], cwd=folder, env=environment, capture_output=True, text=True, timeout=300
    )


def test_the_skipped_list_names_every_skip_and_nothing_else_and_pytest_reruns_it(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    listed = tmp_path / "out" / "skipped.txt"
    first = run_pytest(tmp_path, "test_sample.py", ZOO_SKIPPED_TESTS=str(listed))
    assert first.returncode == 0, first.stdout[-2000:]
    assert listed.read_text().splitlines() == [
        "test_sample.py::test_skipped_by_a_marker",
        "test_sample.py::test_skipped_inside",
        "test_sample.py::test_one_case_skips[dropped]",
    ]
    assert [p.name for p in listed.parent.iterdir()] == ["skipped.txt"]  # no temporary left
    again = run_pytest(tmp_path, f"@{listed}", ZOO_SKIPPED_TESTS="")
    assert again.returncode == 0 and "3 skipped" in again.stdout, again.stdout[-2000:]
    assert "passed" not in again.stdout  # only the listed tests ran


def test_make_test_runs_torch_in_the_torch_only_venv_then_its_skipped_list():
    assert "FULL_VENV_BACKENDS := jax tensorflow" in MAKEFILE
    assert "ZOO_SKIPPED_TESTS=$(CURDIR)/$(TORCH_ONLY_SKIPPED)" in MAKEFILE
    assert "@$(TORCH_ONLY_SKIPPED)" in MAKEFILE

"""Atomic writes: a failure while writing leaves the previous file whole and no temporary."""

import json

import pytest

from zoo._io import atomic_path, write_json


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"accuracy": 0.9})
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        with open(temporary, "w") as handle:
            handle.write('{"accur')  # half-written, then the process "dies"
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"accuracy": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_temporary_keeps_the_keras_suffix(tmp_path):
    with atomic_path(tmp_path / "model.keras") as temporary:
        assert temporary.endswith(".keras")
        open(temporary, "w").close()
    assert (tmp_path / "model.keras").exists()

"""The weights guide's preset table says what each declaration says, not a number typed once."""

import pathlib
import re

import pytest

from zoo.weights.presets import PRESETS

GUIDE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "guide" / "weights.md"
SHIPPED = [p for p in PRESETS.values() if p.test_accuracy is not None]


@pytest.mark.parametrize("preset", SHIPPED, ids=lambda p: f"{p.model}:{p.name}")
def test_each_shipped_preset_has_a_row_with_its_declared_accuracy(preset):
    section = GUIDE.read_text(encoding="utf-8")
    rows = [
        line
        for line in section.splitlines()
        if line.startswith(f'| `{preset.model}` | `"{preset.name}"`')
    ]
    assert len(rows) == 1, f"no single row in {GUIDE.name} for {preset.model}:{preset.name}"
    stated = re.search(r"\| (0\.\d+) on ", rows[0])
    assert stated and float(stated.group(1)) == preset.test_accuracy

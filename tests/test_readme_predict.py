"""The README's zoo-predict transcript is what zoo-predict prints for the drawings it describes."""

import pathlib

import pytest
from PIL import Image, ImageDraw

from zoo import cli
from zoo.weights.presets import find

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
COMMAND = "$ zoo-predict lenet5_modern:mnist my_digit.png nine.png\n"


def draw_the_readme_digits(folder):
    """The README's "7" (three strokes of a 14-pixel pen) and "9" (a ring and a stem)."""
    seven = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(seven).line(
        [(50, 40), (150, 45), (95, 165)], fill="black", width=14, joint="curve"
    )
    nine = Image.new("RGB", (200, 200), "white")
    pen = ImageDraw.Draw(nine)
    pen.ellipse((60, 30, 140, 110), outline="black", width=12)
    pen.line([(138, 70), (120, 170)], fill="black", width=12)
    seven.save(folder / "my_digit.png")
    nine.save(folder / "nine.png")


@pytest.mark.skipif(find("lenet5_modern", "mnist") is None, reason="needs the mnist preset")
def test_the_readme_transcript_is_what_zoo_predict_prints(tmp_path, monkeypatch, capsys):
    text = README.read_text(encoding="utf-8")
    assert COMMAND in text
    shown = text.split(COMMAND, 1)[1].split("\n$ ", 1)[0].splitlines()
    draw_the_readme_digits(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli.zoo_predict(["lenet5_modern:mnist", "my_digit.png", "nine.png"]) == 0
    assert capsys.readouterr().out.splitlines() == shown

"""The explainer page (``site/explainer/``) in headless Chromium: draw, read, clear, offline.

The page prepares a drawing as :func:`zoo.preprocess_digit` does and runs the zoo's ONNX export
with feature maps in onnxruntime-web. Here Playwright draws with the mouse, and each answer is
checked against Python: the same PNG through ``zoo.preprocess_digit`` (within 1/255 per
pixel), the same input through onnxruntime (within 1e-4 per output). Like ``test_site.py``,
the site is served from ``127.0.0.1`` and every request to another host is refused and
recorded.

The model is ``lenet5_modern`` with its ``mnist`` preset, or ``digits`` until that preset is
registered (``docs/hooks/explainer.py``); ``site/explainer/model.json`` says which. On drawn
strokes the digits preset is weaker, so only the plainest stroke (a "1") must be read right;
every other drawing must get the answer Python gets for a PNG of the same canvas.
"""

import base64
import functools
import io
import json
import os
import pathlib
import urllib.parse

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
PAGE = SITE / "explainer"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
PIXEL = 1 / 255  # the bound between the page's input and zoo.preprocess_digit's
TOLERANCE = 1e-4  # between onnxruntime-web and onnxruntime in Python


def _not_ready(reason):
    if os.environ.get("ZOO_REQUIRE_DOCS"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


if not (PAGE / "index.html").is_file():
    _not_ready("site/explainer/ has not been built: run `make docs` (`make test-docs` does both)")
if not os.access(CHROMIUM, os.X_OK):
    _not_ready(f"no Chromium at {CHROMIUM}: `make test-docs` installs Debian's chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[docs]'")
onnxruntime = pytest.importorskip("onnxruntime", reason="pip install -e '.[export]'")
Image = pytest.importorskip("PIL.Image")

MODEL = json.loads((PAGE / "model.json").read_text())


@pytest.fixture(scope="module")
def seen():
    """What the page asked for and said while the tests used it."""
    return {"remote": [], "requests": [], "errors": [], "missing": []}


@pytest.fixture(scope="module")
def page(server, seen):
    """The explainer page, loaded once with its model ready; the tests draw on it in turn."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1200, "height": 1400})

        def only_local(route):
            url = urllib.parse.urlsplit(route.request.url)
            if url.scheme in ("data", "blob") or url.hostname in LOCAL_HOSTS:
                seen["requests"].append(route.request.url)
                route.continue_()
            else:
                seen["remote"].append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        opened = context.new_page()
        opened.on("pageerror", lambda error: seen["errors"].append(str(error)))
        opened.on(
            "console",
            lambda message: message.type == "error" and seen["errors"].append(message.text),
        )
        opened.on(
            "response", lambda r: r.status >= 400 and seen["missing"].append(f"{r.status} {r.url}")
        )
        response = opened.goto(server + "explainer/", wait_until="load")
        assert response is not None and response.ok
        opened.evaluate("() => window.zooExplainer.ready")
        opened.evaluate("() => window.zooExplainer.whenIdle()")
        yield opened
        context.close()
        browser.close()


# ---------------------------------------------------------------------------- helpers


def draw(page, strokes):
    """Clear the canvas, then draw ``strokes`` (lists of (x, y) in [0, 1]) with the mouse."""
    page.click("#clear")
    box = page.locator("#digit-canvas").bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=4)
        page.mouse.up()
    page.evaluate("() => window.zooExplainer.whenIdle()")


def loop(cx, cy, rx, ry, points=24):
    angles = np.linspace(0, 2 * np.pi, points + 1)
    return [(cx + rx * np.sin(a), cy - ry * np.cos(a)) for a in angles]


STROKES = {
    "1": [[(0.5, 0.15), (0.5, 0.85)]],
    "7": [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
    "0": [loop(0.5, 0.5, 0.22, 0.32)],
}


def canvas_png(page):
    """What the reader drew, as the PNG a reader could save of it."""
    url = page.evaluate("() => document.getElementById('digit-canvas').toDataURL('image/png')")
    return base64.b64decode(url.split(",", 1)[1])


def png_url(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# The PNG decoded by the browser into a canvas, then the page's own preprocessing.
PREPROCESS_PNG = """async url => {
  const image = new Image();
  image.src = url;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  return window.zooExplainer.preprocessImageData(pixels);
}"""


@functools.cache
def python_session():
    path = str(PAGE / "model.onnx")
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def python_outputs(image):
    """Every output of the site's model in Python for one ``(28, 28, 1)`` image, by name."""
    session = python_session()
    values = session.run(None, {session.get_inputs()[0].name: image[None].astype("float32")})
    return {meta.name: value for meta, value in zip(session.get_outputs(), values, strict=True)}


def digit_image(text="4", size=140, font_size=90, at=None, ink=0, paper=255, mode="L"):
    from PIL import ImageDraw, ImageFont

    image = Image.new(mode, (size, size), paper if mode == "L" else (paper,) * 3)
    font = ImageFont.load_default(size=font_size)
    place = at or (size // 2, size // 2)
    fill = ink if mode == "L" else (ink, ink // 2, ink)
    ImageDraw.Draw(image).text(place, text, fill=fill, font=font, anchor="mm")
    return image


# ---------------------------------------------------------------------------- the tests


def test_page_has_its_stable_ids_and_is_linked_from_home(page):
    for selector in ("canvas#digit-canvas", "#clear", "#prediction", "#layer-maps"):
        assert page.locator(selector).count() == 1, selector
    home = (SITE / "index.html").read_text(encoding="utf-8")
    assert 'href="explainer/"' in home


def test_the_site_serves_the_named_feature_map_export():
    session = python_session()
    names = [output.name for output in session.get_outputs()]
    assert names == MODEL["outputs"] == ["probabilities", "conv1", "pool1", "conv2", "pool2"]
    assert session.get_inputs()[0].shape[1:] == [28, 28, 1]
    assert MODEL["preset"] in ("mnist", "digits")


@pytest.mark.parametrize("digit", sorted(STROKES))
def test_drawn_digit_is_read_as_python_reads_a_png_of_it(page, digit):
    import zoo

    draw(page, STROKES[digit])
    shown = page.locator("#prediction").inner_text()
    # Python, on a PNG of the same canvas: zoo.preprocess_digit, then onnxruntime.
    drawn = Image.open(io.BytesIO(canvas_png(page)))
    prepared = zoo.preprocess_digit(drawn)
    in_page = page.evaluate(
        """() => {
          const canvas = document.getElementById("digit-canvas");
          const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
          return window.zooExplainer.preprocessImageData(pixels);
        }"""
    )
    assert np.abs(np.reshape(in_page, (28, 28)) - prepared[..., 0]).max() <= PIXEL
    probabilities = python_outputs(prepared)["probabilities"][0]
    expected = int(np.argmax(probabilities))
    assert shown.startswith(str(expected)), f"page says {shown!r}, Python reads {expected}"
    bars = page.locator("#top3 .zx-bar").all_inner_texts()
    assert len(bars) == 3 and bars[0].startswith(str(expected))
    if digit == "1" or MODEL["preset"] == "mnist":  # the digits preset misreads some strokes
        assert shown.startswith(digit), f"a drawn {digit} read as {shown!r}"


def test_every_layer_map_is_drawn(page):
    draw(page, STROKES["7"])
    maps = page.evaluate(
        """() => Array.from(document.querySelectorAll("#layer-maps canvas")).map(canvas => {
          const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
          let opaque = 0, bright = 0;
          for (let i = 0; i < data.length; i += 4) {
            if (data[i + 3] > 0) opaque++;
            if (data[i + 3] > 0 && data[i] > 0) bright++;
          }
          return {layer: canvas.dataset.layer, opaque: opaque, bright: bright,
                  pixels: canvas.width * canvas.height};
        })"""
    )
    assert [m["layer"] for m in maps] == MODEL["outputs"][1:]
    for shown in maps:
        assert shown["opaque"] > shown["pixels"] / 2, shown  # every channel's tile painted
        assert 0 < shown["bright"] < shown["opaque"], shown  # and with a pattern, not flat


def test_clear_empties_the_canvas_and_the_answer(page):
    draw(page, STROKES["0"])
    assert not page.locator("#prediction").inner_text().startswith("Draw")
    page.click("#clear")
    page.evaluate("() => window.zooExplainer.whenIdle()")
    state = page.evaluate(
        """() => {
          const ink = canvas => Array.from(canvas.getContext("2d")
            .getImageData(0, 0, canvas.width, canvas.height).data);
          const pad = ink(document.getElementById("digit-canvas"));
          const maps = Array.from(document.querySelectorAll("#layer-maps canvas"));
          return {
            notWhite: pad.filter(v => v !== 255).length,
            mapPixels: maps.map(c => ink(c).filter(v => v !== 0).length),
            bars: document.querySelectorAll("#top3 .zx-bar").length,
          };
        }"""
    )
    assert state["notWhite"] == 0
    assert page.locator("#prediction").inner_text().startswith("Draw a digit")
    assert state["bars"] == 0 and set(state["mapPixels"]) == {0}


def striped_paper():
    """A "6" on paper striped 200/240 by column: half its border each, so the background is
    the mean of NumPy's two middle values, which a median without it would miss."""
    pixels = np.asarray(digit_image("6", size=120)).copy()
    paper = pixels == 255
    stripes = np.where(np.arange(120) % 2 == 0, 200, 240)[None, :].repeat(120, axis=0)
    pixels[paper] = stripes[paper]
    return Image.fromarray(pixels.astype("uint8"))


PNGS = {
    "dark ink on paper": lambda: digit_image("4"),
    "striped paper": striped_paper,
    "light ink on black": lambda: digit_image("7", ink=255, paper=0),
    "colour, off centre": lambda: digit_image("2", size=160, at=(45, 50), mode="RGB", ink=20),
    "small in a big image": lambda: digit_image("3", size=240, font_size=36, at=(150, 90)),
    "wide": lambda: digit_image("5", size=90, font_size=120),
}


@pytest.mark.parametrize("name", sorted(PNGS))
def test_page_prepares_a_png_as_preprocess_digit_does(page, name):
    import zoo

    image = PNGS[name]()
    in_page = page.evaluate(PREPROCESS_PNG, png_url(image))
    assert isinstance(in_page, list), in_page
    expected = zoo.preprocess_digit(image)[..., 0]
    assert expected.max() == 1.0  # the digit is there to compare
    difference = np.abs(np.asarray(in_page).reshape(28, 28) - expected)
    assert difference.max() <= PIXEL, f"{name}: {difference.max() * 255:.2f}/255 apart"


def test_page_refuses_a_blank_png_as_preprocess_digit_does(page):
    import zoo
    from zoo.data import DataError

    blank = Image.new("L", (60, 60), 250)
    with pytest.raises(DataError):
        zoo.preprocess_digit(blank)
    assert "refused" in page.evaluate(PREPROCESS_PNG, png_url(blank))


def test_browser_outputs_equal_onnxruntime_in_python(page):
    import zoo

    image = zoo.preprocess_digit(digit_image("4"))
    in_browser = page.evaluate("x => window.zooExplainer.run(x)", image.ravel().tolist())
    expected = python_outputs(image)
    assert list(in_browser) == list(expected)
    for name, value in expected.items():
        got = np.asarray(in_browser[name]["data"]).reshape(in_browser[name]["dims"])
        assert got.shape == value.shape, name
        np.testing.assert_allclose(got, value, atol=TOLERANCE, err_msg=name)


def test_nothing_left_this_machine_and_nothing_failed(page, seen):
    """Last: everything the tests above made the page do, checked at once."""
    draw(page, STROKES["1"])
    assert seen["remote"] == []
    assert seen["errors"] == []
    assert seen["missing"] == []
    wasm = [url for url in seen["requests"] if url.endswith(".wasm")]
    assert wasm and all(url.split("/")[-2] == "ort" for url in wasm), wasm
    assert any(url.endswith("explainer/model.onnx") for url in seen["requests"])

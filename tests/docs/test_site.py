"""The built documentation site, as a reader sees it in headless Chromium, with no network.

``make test-docs`` builds ``site/`` (``make docs``) and runs this file once; the per-backend runs
of ``make test`` leave this folder out. Every page is served from ``127.0.0.1`` and any request
to another host is refused and recorded, so a figure, a formula or a script that only works
online fails here.

Environment:
    CHROMIUM           the browser (default ``/usr/bin/chromium``, Debian's ``chromium``).
    ZOO_REQUIRE_DOCS   set by the Makefile: a missing site or browser fails instead of skipping.
"""

import os
import pathlib
import re
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MIN_IMAGES = 3  # figures or animations shown per tutorial page
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
TYPESET = ".MathJax_SVG, .MathJax_SVG_Display, .MathJax, mjx-container, .katex"


def _not_ready(reason):
    if os.environ.get("ZOO_REQUIRE_DOCS"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


if not (SITE / "index.html").is_file():
    _not_ready("site/ has not been built: run `make docs` first (`make test-docs` does both)")
if not os.access(CHROMIUM, os.X_OK):
    _not_ready(f"no Chromium at {CHROMIUM}: `make test-docs` installs Debian's chromium")
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[docs]'")

TUTORIALS = sorted(p.parent.name for p in (SITE / "tutorials").glob("*/index.html"))
PAGES = ["", "api/", *(f"tutorials/{name}/" for name in TUTORIALS)]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()


# What the page shows once loaded and typeset; read in the browser in one go.
READ_PAGE = """() => {
  const content = document.querySelector("article") || document.body;
  const images = Array.from(content.querySelectorAll("img")).map(img => ({
    src: img.currentSrc.slice(0, 40), complete: img.complete, width: img.naturalWidth}));
  const typeset = Array.from(document.querySelectorAll(TYPESET)).filter(
    el => el.getBoundingClientRect().width > 0).length;
  return {
    text: document.body.innerText,
    images: images,
    typeset: typeset,
    mathjax: Boolean(window.MathJax && window.MathJax.isReady),
    mathErrors: (window.mathjaxErrors || []).concat(
      Array.from(document.querySelectorAll(".MathJax_Error, merror")).map(el => el.textContent)),
    ids: Array.from(document.querySelectorAll("[id]")).map(el => el.id),
  };
}""".replace("TYPESET", repr(TYPESET))


@pytest.fixture(scope="module")
def visit(server, browser):
    """Open a page (once; later calls reuse what it showed) and return what a reader sees."""
    seen = {}

    def open_page(path):
        if path in seen:
            return seen[path]
        remote, errors, missing = [], [], []
        context = browser.new_context()

        def only_local(route):
            url = urllib.parse.urlsplit(route.request.url)
            if url.scheme in ("data", "blob") or url.hostname in LOCAL_HOSTS:
                route.continue_()
            else:
                remote.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", lambda r: r.status >= 400 and missing.append(f"{r.status} {r.url}"))
        response = page.goto(server + path, wait_until="load")
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        # Open the collapsed exercise solutions: their formulas and figures count too.
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        # MathJax 2 typesets after the page loads; wait for its queue to drain.
        try:
            page.wait_for_function("window.MathJax && window.MathJax.isReady", timeout=30_000)
            page.evaluate("() => new Promise(done => MathJax.Hub.Queue([done]))")
        except sync_api.TimeoutError:
            pass  # reported by test_formulas_are_typeset_not_raw
        page.wait_for_load_state("networkidle")
        shown = page.evaluate(READ_PAGE)
        shown.update(remote=remote, errors=errors, missing=missing)
        context.close()
        seen[path] = shown
        return shown

    return open_page


def test_every_notebook_has_a_tutorial_page():
    assert TUTORIALS == [p.stem for p in NOTEBOOKS]


def test_no_page_refers_to_a_remote_script_or_style():
    """Nothing in the built HTML loads from another host (links for the reader may)."""
    remote = re.compile(
        r"""<(?:script|link|img|iframe|source|video)\b[^>]*?\b(?:src|href)=["']?(?:https?:)?//"""
        r"""|import\(\s*["'](?:https?:)?//|@import\s+(?:url\()?["']?(?:https?:)?//""",
        re.IGNORECASE,
    )
    found = {}
    for html in SITE.rglob("*.html"):
        hits = remote.findall(html.read_text(encoding="utf-8"))
        if hits:
            found[str(html.relative_to(SITE))] = hits[:3]
    assert not found


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.strip("/") or "home")
def test_page_stays_on_this_machine(visit, path):
    shown = visit(path)
    assert shown["remote"] == [], f"{path or 'home'} asked other hosts for {shown['remote']}"
    assert shown["errors"] == [], f"{path} raised {shown['errors']}"
    assert shown["missing"] == [], f"{path}: {shown['missing']}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.strip("/") or "home")
def test_formulas_are_typeset_not_raw(visit, path):
    shown = visit(path)
    assert shown["mathjax"], f"{path}: MathJax did not start"
    raw = [line for line in shown["text"].splitlines() if "$$" in line or "\\frac" in line]
    assert raw == [], f"{path} shows TeX source: {raw[:3]}"
    assert shown["mathErrors"] == [], f"{path}: {shown['mathErrors'][:3]}"


@pytest.mark.parametrize("name", TUTORIALS)
def test_every_displayed_formula_of_a_tutorial_is_typeset(visit, name):
    html = (SITE / "tutorials" / name / "index.html").read_text(encoding="utf-8")
    formulas = len(re.findall(r"\$\$.+?\$\$", html, re.DOTALL))
    shown = visit(f"tutorials/{name}/")
    assert shown["typeset"] >= formulas, f"{name}: {shown['typeset']} of {formulas} typeset"


def test_convolution_formula_is_typeset(visit):
    shown = visit("tutorials/01_convolution/")
    assert shown["typeset"] >= 1, "the output-size formula is not typeset"


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_shows_its_images(visit, name):
    shown = visit(f"tutorials/{name}/")
    broken = [image["src"] for image in shown["images"] if image["width"] == 0]
    assert broken == [], f"{name}: images that did not load: {broken}"
    loaded = sum(1 for image in shown["images"] if image["complete"] and image["width"] > 0)
    assert loaded >= MIN_IMAGES, f"{name} shows {loaded} images, expected at least {MIN_IMAGES}"


def _public_modules():
    import pkgutil

    import zoo

    found = pkgutil.walk_packages(zoo.__path__, "zoo.")
    return {name for _, name, _ in found if not any(p.startswith("_") for p in name.split("."))}


def test_api_page_lists_every_builder_and_module(visit):
    import zoo
    from zoo import models, registry

    shown = visit("api/")
    ids = set(shown["ids"])
    # The builder behind every registered model (lenet, alexnet) and the registry's functions.
    builders = {models.model_spec(name).builder for name in models.list_models()}
    expected = {f"{builder.__module__}.{builder.__name__}" for builder in builders}
    expected |= {f"zoo.registry.{name}" for name in registry.__all__}
    # Every public module of the package, folder by folder (zoo.accel, zoo.training.run, ...).
    expected |= _public_modules()
    missing = sorted(expected - ids)
    # Every name ``import zoo`` offers (zoo.lenet, zoo.export, ...), under its defining module.
    missing += [name for name in zoo.__all__ if not any(i.endswith(f".{name}") for i in ids)]
    assert missing == [], f"the API page has no entry for {missing}"
    for name in ("lenet", "alexnet", "get_model", "list_models", "model_info", "export"):
        assert re.search(rf"\b{name}\b", shown["text"]), name

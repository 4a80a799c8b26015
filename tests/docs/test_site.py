"""The built documentation site, as a reader sees it in headless Chromium, with no network.

`make test-docs` builds `site/` (`make docs`) and runs this file once; the per-backend runs
of `make test` leave this folder out. Every page is served from `127.0.0.1` and any request
to another host is refused and recorded, so a figure, a formula or a script that only works
online fails here. Besides what each page loads and typesets, the tests read what a reader
would trip over: reStructuredText markup shown as text, an object documented twice, and, at
two window widths, a formula or a code line cut off by the page or hidden under a copy button.

Environment:
    CHROMIUM           the browser (default `/usr/bin/chromium`, Debian's `chromium`).
    ZOO_REQUIRE_DOCS   set by the Makefile: a missing site or browser fails instead of skipping.
"""

import functools
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
# The API reference: an overview (api/) and one page per area (api/models/, api/training/...).
API_PAGES = ["api/", *sorted(f"api/{p.parent.name}/" for p in (SITE / "api").glob("*/index.html"))]
PAGES = ["", *API_PAGES, *(f"tutorials/{name}/" for name in TUTORIALS)]
WIDTHS = [1280, 1920]  # desktop windows the layout tests check, in CSS pixels
MAX_API_PAGE_HEIGHT = 25_000  # px at 1280 wide; the one page it replaced was ~100,000


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()


def _only_local(route, refused=None):
    """Let a request to this machine through; refuse (and record) one to any other host."""
    url = urllib.parse.urlsplit(route.request.url)
    if url.scheme in ("data", "blob") or url.hostname in LOCAL_HOSTS:
        route.continue_()
    else:
        if refused is not None:
            refused.append(route.request.url)
        route.abort()


def _wait_for_typesetting(page):
    """MathJax 2 typesets after the page loads; wait for its queue to drain."""
    try:
        page.wait_for_function("window.MathJax && window.MathJax.isReady", timeout=30_000)
        page.evaluate("() => new Promise(done => MathJax.Hub.Queue([done]))")
    except sync_api.TimeoutError:
        pass  # reported by test_formulas_are_typeset_not_raw
    page.wait_for_load_state("networkidle")


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
    documented: Array.from(content.querySelectorAll(".doc-heading[id]")).map(el => el.id),
    literalMarkers: Array.from(content.querySelectorAll("p")).map(p => p.textContent.trim())
      .filter(text => text.endsWith("::")),
    links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
    navLinks: Array.from(document.querySelectorAll(".md-nav--primary a[href]"))
      .filter(a => !a.closest(".md-nav--secondary")).map(a => a.href),  // not the page's own TOC
    height: document.documentElement.scrollHeight,
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
        context.route("**/*", functools.partial(_only_local, refused=remote))
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", lambda r: r.status >= 400 and missing.append(f"{r.status} {r.url}"))
        response = page.goto(server + path, wait_until="load")
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        # Open the collapsed exercise solutions: their formulas and figures count too.
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        _wait_for_typesetting(page)
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


def _api(visit):
    """Every API page as shown: `{path: shown}`."""
    return {path: visit(path) for path in API_PAGES}


def _griffe_package():
    """The package as mkdocstrings reads it (static analysis: no backend is imported)."""
    griffe = pytest.importorskip("griffe", reason="pip install -e '.[docs]'")
    return griffe.load("zoo", search_paths=[str(ROOT)], allow_inspection=False)


def _canonical(collection, path):
    """The path of the object that `path` names once imports are followed (`path` if unknown)."""
    try:
        found = collection[path]
        return found.final_target.path if found.is_alias else found.path
    except Exception:  # a heading griffe cannot resolve is compared as it is
        return path


def test_api_pages_list_every_builder_and_module(visit):
    import zoo
    from zoo import models, registry

    pages = _api(visit)
    ids = {i for shown in pages.values() for i in shown["ids"]}
    text = "\n".join(shown["text"] for shown in pages.values())
    # The builder behind every registered model (lenet, alexnet) and the registry's functions.
    builders = {models.model_spec(name).builder for name in models.list_models()}
    expected = {f"{builder.__module__}.{builder.__name__}" for builder in builders}
    expected |= {f"zoo.registry.{name}" for name in registry.__all__}
    # Every public module of the package, folder by folder (zoo.accel, zoo.training.run, ...).
    expected |= _public_modules()
    missing = sorted(expected - ids)
    # Every name `import zoo` offers (zoo.lenet, zoo.export, ...), under its defining module.
    missing += [name for name in zoo.__all__ if not any(i.endswith(f".{name}") for i in ids)]
    assert missing == [], f"the API pages have no entry for {missing}"
    for name in ("lenet", "alexnet", "get_model", "list_models", "model_info", "export"):
        assert re.search(rf"\b{name}\b", text), name
    # The overview names each of them as a reader writes it.
    overview = visit("api/")["text"]
    assert [name for name in zoo.__all__ if f"zoo.{name}" not in overview] == []


def test_api_pages_document_every_public_object_of_its_module(visit):
    """What a module defines and exports (with a docstring) has an entry on some API page, so
    the `members:` lists in docs/api/*.md, which leave out re-exported names, drop nothing."""
    documented = {i for shown in _api(visit).values() for i in shown["documented"]}
    package = _griffe_package()
    missing = []

    def walk(module):
        for name, member in module.members.items():
            if member.is_alias or not member.is_public or name.startswith("_"):
                continue
            if member.is_module:
                walk(member)
            elif member.docstring and member.path not in documented:
                missing.append(member.path)

    walk(package)
    assert missing == [], f"not on any API page: {missing}"


def test_each_object_is_documented_once(visit):
    """`zoo.models.get_model` is `zoo.registry.get_model`: one entry, not two."""
    collection = _griffe_package().modules_collection
    where = {}
    for path, shown in _api(visit).items():
        for heading in shown["documented"]:
            where.setdefault(_canonical(collection, heading), []).append(f"{path}#{heading}")
    twice = {name: places for name, places in where.items() if len(places) > 1}
    assert twice == {}, f"documented more than once: {twice}"


# reStructuredText that Markdown leaves as text: a role (":func:`x`" shows as ":func:x"),
# a literal in double backticks, and the "::" that announces a literal block.
REST_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|const):`?\w")
REST_LITERAL = re.compile(r"``[^`\n]+``")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.strip("/") or "home")
def test_no_page_shows_restructuredtext(visit, path):
    shown = visit(path)
    found = [m.group(0) for m in REST_ROLE.finditer(shown["text"])]
    found += [m.group(0) for m in REST_LITERAL.finditer(shown["text"])]
    found += [f"paragraph ending {text[-30:]!r}" for text in shown["literalMarkers"]]
    assert found == [], f"{path or 'home'} shows reStructuredText: {found[:5]}"


@pytest.mark.parametrize("path", API_PAGES, ids=lambda p: p.strip("/"))
def test_api_page_is_one_area_not_the_whole_package(visit, path):
    """The reference was one page some 100,000 px tall; each area's page stays far shorter."""
    height = visit(path)["height"]
    assert height <= MAX_API_PAGE_HEIGHT, f"{path} is {height} px tall at 1280 px wide"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.strip("/") or "home")
def test_links_lead_to_a_page_and_anchor(visit, server, path):
    """The site's navigation on every page, and every link of an API page (its table of contents
    and its cross-references to other API pages) lead to a page and a heading that exist."""
    shown = visit(path)
    broken = []
    for link in shown["links"] if path in API_PAGES else shown["navLinks"]:
        if not link.startswith(server):
            continue
        url = urllib.parse.urlsplit(link)
        target = SITE / urllib.parse.unquote(url.path).lstrip("/")
        if target.is_dir() or not target.suffix:
            target = target / "index.html"
        if not target.is_file():
            broken.append(link)
        elif url.fragment and target.suffix == ".html":
            html = target.read_text(encoding="utf-8")
            if f'id="{urllib.parse.unquote(url.fragment)}"' not in html:
                broken.append(link)
    assert broken == [], f"{path or 'home'} links to what is not there: {sorted(set(broken))[:5]}"


def test_api_section_of_the_navigation_lists_every_api_page(visit, server):
    links = {link.removeprefix(server) for link in visit("api/")["links"]}
    assert set(API_PAGES) <= links, sorted(set(API_PAGES) - links)


# Where a reader cannot see part of a formula or a code line, read in the browser at one window
# width. A box that clips its content (overflow other than `visible`) hides what lies past its
# right edge unless the reader can scroll it (overflow-x `auto` or `scroll`); a copy button
# hides the code it covers.
READ_LAYOUT = """() => {
  const content = document.querySelector("article") || document.body;
  const style = el => getComputedStyle(el);
  const scrollable = box => ["auto", "scroll"].includes(style(box).overflowX)
    && box.scrollWidth > box.clientWidth;
  const innerRight = box => box.getBoundingClientRect().left + box.clientLeft + box.clientWidth;
  // Where a box wraps text, the space that ends a line may hang past its edge: not hidden text.
  const slack = (box, text) => text && !["pre", "nowrap"].includes(style(box).whiteSpace)
    ? parseFloat(style(box).fontSize) : 1;
  // The first box from `el` up that cuts content reaching `right` off, with no scrolling to it.
  function clippedBy(el, right, text = false) {
    for (let box = el; box && box !== document.documentElement; box = box.parentElement) {
      if (style(box).overflowX === "visible" || right <= innerRight(box) + slack(box, text)) {
        continue;
      }
      if (!scrollable(box)) return box;
      right = innerRight(box);  // the rest is scrolled to; the box itself must still be seen
    }
    return null;
  }
  const describe = box => box.tagName.toLowerCase() + "." + String(box.className).split(" ")[0];
  const formulas = [], codeLines = [];
  for (const display of content.querySelectorAll(".MathJax_Display, mjx-container[display]")) {
    const right = display.getBoundingClientRect().left + display.scrollWidth;
    const box = clippedBy(display, right);
    const text = display.textContent.slice(0, 40);
    if (box) formulas.push(`cut off by ${describe(box)}: ${text}`);
  }
  for (const pre of content.querySelectorAll("pre")) {
    const code = pre.querySelector(":scope > code") || pre;
    const cell = pre.closest(".CodeMirror");
    const buttons = [
      ...pre.querySelectorAll(".md-code__nav, .md-clipboard"),
      ...(cell ? cell.querySelectorAll(":scope > .zeroclipboard-container") : []),
    ].map(b => b.getBoundingClientRect()).filter(r => r.width > 0);
    let right = 0;
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim() || node.parentElement.closest(".md-code__nav")) continue;
      range.selectNodeContents(node);
      for (const rect of range.getClientRects()) {
        right = Math.max(right, rect.right);
        // Only the part of the text its scrolling box shows can be under a button.
        let clip = node.parentElement;
        while (clip !== document.body && style(clip).overflowX === "visible") {
          clip = clip.parentElement;
        }
        const seen = clip.getBoundingClientRect();
        const left = Math.max(rect.left, seen.left), top = Math.max(rect.top, seen.top);
        const shownRight = Math.min(rect.right, innerRight(clip));
        const bottom = Math.min(rect.bottom, seen.bottom);
        for (const b of buttons) {
          const w = Math.min(shownRight, b.right) - Math.max(left, b.left);
          const h = Math.min(bottom, b.bottom) - Math.max(top, b.top);
          const text = node.textContent.trim().slice(0, 40);
          if (w > 1 && h > 1) codeLines.push(`under its copy button: ${text}`);
        }
      }
    }
    const box = right ? clippedBy(code, right, true) : null;
    const text = code.textContent.trim().slice(0, 40);
    if (box) codeLines.push(`a line cut off by ${describe(box)}: ${text}`);
  }
  return {formulas, code: codeLines};
}"""


@pytest.fixture(scope="module")
def layout(server, browser):
    """Open a page in a window `width` px wide; return what it hides: `{"formulas", "code"}`."""
    seen = {}

    def open_page(path, width):
        if (path, width) not in seen:
            context = browser.new_context(viewport={"width": width, "height": 900})
            context.route("**/*", _only_local)
            page = context.new_page()
            page.goto(server + path, wait_until="load")
            page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            _wait_for_typesetting(page)
            seen[path, width] = page.evaluate(READ_LAYOUT)
            context.close()
        return seen[path, width]

    return open_page


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.strip("/") or "home")
def test_display_formulas_are_seen_whole(layout, path, width):
    """A display formula wider than the text column scrolls in its own box, never cut off."""
    cut = layout(path, width)["formulas"]
    assert cut == [], f"{path or 'home'} at {width} px, formulas: {len(cut)} {cut[:4]}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.strip("/") or "home")
def test_code_lines_are_seen_whole(layout, path, width):
    """A long code line scrolls (or wraps), and no line runs under the copy button."""
    hidden = layout(path, width)["code"]
    assert hidden == [], f"{path or 'home'} at {width} px, code: {len(hidden)} {hidden[:4]}"

"""MkDocs hook: formulas typeset with a MathJax served from the site itself, never from a CDN.

MathJax 2.7 comes from the ``jupyter-server-mathjax`` package (the copy Jupyter serves offline):
its files are copied to ``assets/mathjax/`` (less the menu's translations and the SVG output's
fonts, which the site does not use), and ``docs/javascripts/mathjax-config.js`` configures it
before it loads: Jupyter's own ``TeX-AMS-MML_HTMLorMML-full`` setup, with the STIX web fonts.

nbconvert's notebook template loads MathJax (and, when a notebook has diagrams, Mermaid) from
cdnjs; this hook removes those scripts from the tutorial pages, so no page refers to a remote
script.
"""

from __future__ import annotations

import os
import pathlib
import re

import jupyter_server_mathjax
from mkdocs.structure.files import File

MATHJAX = pathlib.Path(jupyter_server_mathjax.__file__).parent / "static"
TARGET = "assets/mathjax"
SKIP = ("localization/", "jax/output/SVG/")  # translations of the menu; fonts for SVG output
KEEP = ("localization/en/",)

# The blocks nbconvert's templates (base/mathjax.html.j2, base/mermaid_js.html.j2) write.
NBCONVERT_MATHJAX = re.compile(
    r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.DOTALL
)
NBCONVERT_MERMAID = re.compile(
    r'<script type="module">(?:(?!</script>).)*?mermaid.*?</script>', re.DOTALL
)


def _wanted(relative: str) -> bool:
    return relative.startswith(KEEP) or not relative.startswith(SKIP)


def on_files(files, config):
    if not (MATHJAX / "MathJax.js").is_file():
        raise FileNotFoundError(f"MathJax is not at {MATHJAX}: pip install jupyter-server-mathjax")
    for dirpath, _, names in os.walk(MATHJAX):
        for name in names:
            path = pathlib.Path(dirpath, name)
            relative = path.relative_to(MATHJAX).as_posix()
            if _wanted(relative):
                files.append(File.generated(config, f"{TARGET}/{relative}", abs_src_path=str(path)))
    return files


def on_page_content(html, page, config, files):
    if page.file.src_uri.endswith(".ipynb"):
        html = NBCONVERT_MATHJAX.sub("", html)
        html = NBCONVERT_MERMAID.sub("", html)
    return html

"""MkDocs hook: what the explainer page (``docs/explainer/``) runs in the reader's browser.

Two things the page needs are generated, never committed:

- ``explainer/model.onnx``: ``lenet5_modern`` with its ``mnist`` preset (``digits`` while no
  ``mnist`` preset is registered, with a warning on stderr), exported by the zoo's own
  :func:`zoo.export` with ``feature_maps=True`` on JAX: the class probabilities and every
  convolution's and pooling's maps, checked against Keras before it is kept. Beside it,
  ``explainer/model.json`` says which preset and names the outputs.
- ``explainer/ort/``: onnxruntime-web's WebAssembly build (the script, its ``.mjs`` loader and
  its ``.wasm``), from ``node_modules/`` (``make docs`` runs ``npm ci`` first).

The export runs in a child process started as the build begins, so it overlaps the notebooks'
execution; it is cached under ``build/docs/explainer/``, keyed on the source files that shape
it, so a build that changed none of them does not export again.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

PAGE = "explainer"  # the page's folder in the site
ORT = "node_modules/onnxruntime-web/dist"
# The WebAssembly build without threads' worker script: one .js, its loader, its binary.
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
CACHE = "build/docs/explainer"
# What decides the exported file: the exporter, the model builders, the layers, the presets.
KEY_SOURCES = ("zoo/deploy", "zoo/models", "zoo/layers.py", "zoo/weights/presets")

# Run with KERAS_BACKEND=jax in a child process: the docs build runs on JAX whatever the
# environment says, and Keras's backend cannot change once imported.
EXPORT = """
import json, sys
import zoo
from zoo.deploy.export import output_names
from zoo.weights.presets import find

folder = sys.argv[1]
preset = "mnist" if find("lenet5_modern", "mnist") else "digits"
if preset != "mnist":
    print("WARNING: no mnist preset of lenet5_modern is registered; the explainer page uses "
          "the 'digits' preset (trained on 8x8 scans, weaker on drawn digits)", file=sys.stderr)
model = zoo.get_model("lenet5_modern", weights=preset)
report = zoo.export(model, "onnx", folder + "/model.onnx", overwrite=True, feature_maps=True)
info = {"model": "lenet5_modern", "preset": preset, "outputs": output_names(model, True),
        "max_abs_difference": report["max_abs_difference"]}
with open(folder + "/model.json", "w") as file:
    json.dump(info, file, indent=1)
"""

_export = {}  # the running export: process and cache folder


def _root(config) -> pathlib.Path:
    return pathlib.Path(config.config_file_path).resolve().parent


def _key(root: pathlib.Path) -> str:
    digest = hashlib.sha256(EXPORT.encode())
    for name in KEY_SOURCES:
        path = root / name
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(file.relative_to(root).as_posix().encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def on_pre_build(config):
    root = _root(config)
    cache = root / CACHE
    key = _key(root)
    stamp = cache / "key"
    fresh = stamp.is_file() and stamp.read_text() == key
    if fresh and (cache / "model.onnx").is_file() and (cache / "model.json").is_file():
        _export.clear()
        return
    cache.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=path)  # this checkout's zoo
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    process = subprocess.Popen(
        [sys.executable, "-c", EXPORT, str(cache)], cwd=root, env=env, stdout=subprocess.DEVNULL
    )
    _export.update(process=process, stamp=stamp, key=key)


def on_files(files, config):
    root = _root(config)
    missing = [name for name in ORT_FILES if not (root / ORT / name).is_file()]
    if missing:
        raise PluginError(
            f"onnxruntime-web is not installed ({ORT}/{missing[0]} is missing): run `npm ci` "
            "in the repository root, or `make docs`, which does."
        )
    for name in ORT_FILES:
        files.append(
            File.generated(config, f"{PAGE}/ort/{name}", abs_src_path=str(root / ORT / name))
        )
    for name in ("model.onnx", "model.json"):
        files.append(
            File.generated(config, f"{PAGE}/{name}", abs_src_path=str(root / CACHE / name))
        )
    return files


@event_priority(100)  # before the files are copied into the site
def on_env(env, config, files):
    """Wait for the export started in :func:`on_pre_build`; a failed export fails the build."""
    process = _export.pop("process", None)
    if process is None:
        return env
    if process.wait() != 0:
        raise PluginError(f"exporting the explainer's model failed (exit {process.returncode})")
    _export.pop("stamp").write_text(_export.pop("key"))
    return env


def on_shutdown():
    process = _export.pop("process", None)  # a build that failed before on_env
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait()

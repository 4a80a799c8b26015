"""`make weights`: train every shipped preset again and check it against its declaration.

Each preset the package ships is declared in [`zoo.weights.presets`][] with its file,
SHA-256, test accuracy and `training` (the seed and the settings that differ from the
model's recipe). This trains it with `zoo.training.run` on its dataset (for the digits:
8x8 images resized to 28x28, the stratified train split, 10% of it held out for validation;
for MNIST: the first 8,000 images of the t10k folder its `data_path` names, outside the
package, which a checkout without that folder skips, saying so),
writes the weights alone (no optimizer state) over the shipped file, and compares the new
file's SHA-256 and test accuracy with the declaration. On JAX the same seed gives the same
bytes; where they differ (a new Keras, a new preset), it says what to write into the
declaration, so the declaration stays the one record of the file:

```bash
KERAS_BACKEND=jax python -c "from zoo.training.presets import make_presets; make_presets()"
```

It imports `zoo.training` when called: it is the maintainer's tool that makes the files,
above the loading code the rest of [`zoo.weights`][] is.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from zoo.errors import ZooError
from zoo.weights import sha256_of
from zoo.weights.convert import save_atomically
from zoo.weights.presets import PRESETS

__all__ = ["dataset_of", "make_presets", "repository_root", "shipped_presets"]


def shipped_presets():
    """The presets whose files the package ships (and `make weights` makes)."""
    return [preset for preset in PRESETS.values() if preset.location == "package"]


def repository_root():
    """The folder that holds `zoo/`: a checkout's root, where `data_path` starts."""
    return Path(__file__).resolve().parents[2]


def dataset_of(preset, root=None):
    """What `train` takes as the dataset of `preset`, or `None` where its data is absent.

    A `zoo.data` name as it is; a `data_path` as a folder under `root` (the
    repository's root, [`repository_root`][]).
    """
    if not preset.data_path:
        return preset.dataset
    path = data_folder(preset, root)
    return str(path) if path.is_dir() else None


def data_folder(preset, root=None):
    """Where `preset`'s `data_path` points from `root` (default: [`repository_root`][])."""
    return (Path(root or repository_root()) / preset.data_path).resolve()


def make_presets(folder=None, root=None):
    """Train every shipped preset, write its file into `folder` and check its declaration.

    `folder` defaults to the installed `zoo/weights/presets`; a preset's `data_path` is
    looked for under `root` (default: [`repository_root`][]), and a preset whose data is
    absent there is skipped with one line saying so (its file stays as it is). Returns one dict
    per preset trained (`model`, `name`, `file`, `sha256`, `test_accuracy`) and
    raises `ZooError`, after writing every file, if any differs from what its declaration
    says.
    """
    import tempfile

    from zoo.models import get_model
    from zoo.training.run import train

    folder = folder or str(resources.files("zoo.weights.presets"))
    made, stale = [], []
    for preset in shipped_presets():
        dataset = dataset_of(preset, root)
        if dataset is None:
            where = data_folder(preset, root)
            print(
                f"skipping {preset.model} '{preset.name}': its dataset {preset.dataset} is not "
                f"at {where} (a checkout without the shared data); {preset.file} stays as it is"
            )
            continue
        with tempfile.TemporaryDirectory() as scratch:
            result = train(
                model=preset.model,
                dataset=dataset,
                output=scratch,
                quiet=True,
                **preset.training,
            )
        shape, classes = tuple(result.model.input_shape[1:]), int(result.model.output_shape[-1])
        if (shape, classes) != (preset.input_shape, preset.classes):
            raise ZooError(
                f"preset '{preset.name}' of {preset.model} is declared at input_shape="
                f"{preset.input_shape!r} with {preset.classes} classes, but trained at "
                f"{shape!r} with {classes}: fix its declaration or its training."
            )
        plain = get_model(preset.model, input_shape=shape, classes=classes)
        plain.set_weights(result.model.get_weights())  # the weights alone
        path = os.path.join(folder, preset.file)
        save_atomically(plain, path)
        facts = {
            "model": preset.model,
            "name": preset.name,
            "file": preset.file,
            "sha256": sha256_of(path),
            "test_accuracy": round(float(result.metrics["test_accuracy"]), 4),
        }
        made.append(facts)
        print(
            f"{preset.model} '{preset.name}': test accuracy {facts['test_accuracy']:.4f} on "
            f"{preset.dataset} -> {preset.file}"
        )
        if (facts["sha256"], facts["test_accuracy"]) != (preset.sha256, preset.test_accuracy):
            stale.append(
                f"{preset.model} '{preset.name}': sha256={facts['sha256']!r}, "
                f"test_accuracy={facts['test_accuracy']}"
            )
    if stale:
        raise ZooError(
            "the new files differ from their declarations; write into zoo/weights/presets/: "
            + "; ".join(stale)
        )
    return made

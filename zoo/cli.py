"""The commands: `zoo-train`, `zoo-export`, `zoo-predict`, `zoo-convert`.

Each command is a function of its arguments that parses them, calls the
package and prints what a person reads; [`run_command`][] turns a
[`zoo.errors.ZooError`][] into one line on stderr and an exit code
(`--debug` or `ZOO_DEBUG=1` shows the traceback instead). `python -m zoo
COMMAND ...` runs the same functions (`python -m zoo` alone prints the
model table). The package is imported lazily (`zoo-train --backend torch` must choose
the backend before Keras loads), and each command imports Keras lean (`import_keras_lean`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from zoo.accel.runtime import import_keras_lean, tensorflow_start_up_hidden
from zoo.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, ZooError, one_line

__all__ = ["main", "run_command", "zoo_convert", "zoo_export", "zoo_predict", "zoo_train"]


def _debugging(argv):
    return "--debug" in argv or os.environ.get("ZOO_DEBUG", "") not in ("", "0")


def _say(line):
    """One line on stderr in one write, so the lines of a job's processes never interleave."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def run_command(prog, command, argv=None):
    """Run `command(argv)` as the command `prog`; return its exit status.

    A [`ZooError`][] becomes `prog: error: MESSAGE` on stderr and its exit code; Ctrl-C
    becomes `prog: interrupted` and 130. With `--debug` (removed from `argv`) or
    `ZOO_DEBUG=1` the exception propagates with its traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debugging(argv)
    argv = [a for a in argv if a != "--debug"]
    try:
        return command(argv) or 0
    except ZooError as error:
        if debug:
            raise
        _say(f"{prog}: error: {one_line(error)}")  # one line, whatever the message held
        return error.exit_code
    except ModuleNotFoundError as error:
        package = (error.name or "").split(".")[0]
        if debug or package not in ("tensorflow", "jax", "torch"):
            raise
        _say(
            f"{prog}: error: Keras's backend needs {package}, which is not installed. Set "
            "KERAS_BACKEND to the backend you installed (jax, tensorflow or torch), or "
            f"pip install 'zoo[{package}]'."
        )
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        if debug:
            raise
        _say(f"{prog}: interrupted")
        jax_job = sys.modules.get("zoo.training.distribute.jax_plan")  # loaded if one ran
        if jax_job is not None:
            jax_job.leave_at_once_if_joined(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED


def _parser(prog, description, takes_model=True):
    """The parser of `prog`; with `takes_model`, its first argument is a `model.keras`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    if takes_model:
        parser.add_argument("model", help="a .keras file, e.g. runs/lenet5/model.keras")
    return parser


# --------------------------------------------------------------------------- zoo-train


def _train(argv):
    from zoo.training.config import TrainConfig
    from zoo.training.distribute import torch_ddp
    from zoo.training.run import run

    config = TrainConfig.from_argv(argv)
    if config.processes and not torch_ddp.launched_by_torchrun():
        return torch_ddp.launch(argv, config.processes)  # this process starts the workers
    run(config, own_process=True)
    return 0


def zoo_train(argv=None):
    """`zoo-train`: one line on stderr and exit code 2 for bad input."""
    return run_command("zoo-train", _train, argv)


# --------------------------------------------------------------------------- zoo-export


def export_parser():
    from zoo.deploy.export import FORMATS

    parser = _parser(
        "zoo-export",
        "Export a trained zoo model (model.keras) to ONNX or a TensorFlow SavedModel, checked "
        "against Keras before it is written.",
    )
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", required=True, help="the .onnx file or SavedModel folder")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUTPUT if it is a previous zoo export (anything else is never touched)",
    )
    parser.add_argument(
        "--feature-maps",
        action="store_true",
        help="ONNX only: also output each convolution's and pooling's maps, named by layer",
    )
    return parser


def _export(argv):
    from zoo.deploy.export import CHECK_BATCH, export
    from zoo.deploy.safe_output import recover_killed_exports

    options = export_parser().parse_args(argv)
    import_keras_lean()
    folder = os.path.dirname(os.path.abspath(options.output))
    if os.path.isdir(folder):  # said first: the export may then refuse what came back
        for path in recover_killed_exports(folder):
            print(f"note: restored {path}, which a killed export had moved aside", file=sys.stderr)
    report = export(
        options.model,
        options.format,
        options.output,
        overwrite=options.overwrite,
        feature_maps=options.feature_maps,
    )
    print(
        f"wrote {report['output']} ({options.format}, {report['backend']} backend); outputs "
        f"match Keras within {report['max_abs_difference']:.2g} on {CHECK_BATCH} images"
    )
    return 0


def zoo_export(argv=None):
    """`zoo-export`: one line on stderr and exit code 2 for bad input."""
    with tensorflow_start_up_hidden():
        return run_command("zoo-export", _export, argv)


# --------------------------------------------------------------------------- zoo-predict


def predict_parser():
    from zoo.deploy.predict import BATCH_SIZE, PREPARATIONS, UNSURE_BELOW, preset_inputs

    parser = _parser(
        "zoo-predict",
        _wrapped(
            "Classify images with a trained zoo model or a shipped preset. MODEL is a model.keras "
            "that zoo-train wrote (class names from the classes.json beside it; a 1000-class model "
            "without one gets the ImageNet names) or MODEL:WEIGHTS, a shipped preset such as "
            f"lenet5_modern:digits; a path that exists is read as a path. A top probability below "
            f"{UNSURE_BELOW} is marked (unsure) after it."
        ),
        takes_model=False,
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "\n".join(
        [
            "What input each model expects (--preprocess chooses how a file is prepared):",
            "  OUTPUT/model.keras  what zoo-train recorded in OUTPUT/preprocessing.json: digit",
            "      for MNIST-like data (mnist, or an IDX folder of 28x28 MNIST-style digits),",
            "      else scale; a folder without that record: scale",
            *preset_inputs(),
            "scale: resized to the input, pixels to [0, 1]; digit: one digit, any size,",
            "      dark on light or light on dark, prepared as MNIST's (zoo.preprocess_digit);",
            "      torch: scaled, then ImageNet's mean and std (torchvision's weights)",
        ]
    )
    parser.add_argument(
        "model", help="a .keras file (runs/lenet5/model.keras) or MODEL:WEIGHTS (lenet5:digits)"
    )
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...) or folders of them")
    parser.add_argument("--top", type=int, default=3, help="how many classes to print per image")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help=f"images read and classified at a time (default {BATCH_SIZE})",
    )
    parser.add_argument("--classes", default=None, help="class names JSON (default: beside model)")
    parser.add_argument(
        "--preprocess",
        choices=PREPARATIONS,
        default=None,
        help="how to prepare each file (default: what the model or preset recorded, else scale)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list: {"image": ..., "top": [{"class": ..., "probability": ...}], '
        '"unsure": ...} per image, {"image": ..., "error": ...} per file left out',
    )
    return parser


def _wrapped(text):
    import textwrap

    return textwrap.fill(text, width=88)


def _predict(argv):
    from zoo.deploy.model_file import DeployError
    from zoo.deploy.predict import (
        EXIT_SOME_FAILED,
        UNSURE_BELOW,
        collect_images,
        load_class_names,
        open_source,
        predict_files,
    )

    options = predict_parser().parse_args(argv)
    for flag, value in (("top", options.top), ("batch-size", options.batch_size)):
        if value < 1:
            raise DeployError(f"--{flag} must be at least 1, got {value}.")
    import_keras_lean()
    source = open_source(options.model)
    count = int(source.model.outputs[0].shape[-1])
    names = source.names
    if names is None or options.classes:
        names, found = load_class_names(options.model, options.classes, count)
        if not found:
            print("note: no classes.json beside the model; printing class indices", file=sys.stderr)
    paths, problems = collect_images(options.images)
    entries = [{"image": folder, "error": problem} for folder, problem in problems]
    for _, problem in problems:
        _say_skipped(problem)
    top, predicted = min(options.top, count), 0
    preprocess = options.preprocess or source.prepare
    for path, best, problem in predict_files(
        source.model, paths, top, preprocess, options.batch_size
    ):
        if problem is not None:
            _say_skipped(problem)
            entries.append({"image": path, "error": one_line(problem)})
            continue
        unsure = best[0][1] < UNSURE_BELOW
        ranked = [{"class": names[i], "probability": round(p, 6)} for i, p in best]
        entries.append({"image": path, "top": ranked, "unsure": unsure})
        if not options.json:
            lines = [path] + [f"  {probability:7.4f}  {names[i]}" for i, probability in best]
            lines[1] += "  (unsure)" if unsure else ""
            print("\n".join(lines), flush=True)
        predicted += 1
    if options.json:
        print(json.dumps(entries, indent=2), flush=True)
    if not predicted:
        raise DeployError("no image could be read; nothing was predicted.")
    return EXIT_SOME_FAILED if predicted < len(paths) or problems else 0


def _say_skipped(problem):
    """One line on stderr for an image left out; the others go on."""
    _say(f"zoo-predict: error: {one_line(problem)}")


def zoo_predict(argv=None):
    """`zoo-predict`: exit code 0 when every image was classified.

    An image that cannot be read (missing, not an image, too large to decode, or a blank
    digit with `--preprocess digit`) is one line on stderr (and, with `--json`, an
    `{"image", "error"}` entry) and the others are still classified, batch by batch, with
    exit code 1. Bad input that stops everything (the model, a flag, no readable image at
    all) is one line and exit code 2.
    """
    with tensorflow_start_up_hidden():
        return run_command("zoo-predict", _predict, argv)


# --------------------------------------------------------------------------- zoo-convert


def convert_parser():
    from zoo.weights import IMAGENET_FILE

    parser = _parser(
        "zoo-convert",
        "Convert a torchvision AlexNet state dict (.pth) into a Keras .weights.h5 that "
        "alexnet_torchvision loads on every backend, without torch.",
        takes_model=False,
    )
    parser.add_argument("source", help="a torchvision AlexNet .pth, e.g. " + IMAGENET_FILE)
    parser.add_argument("destination", help="the .weights.h5 to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    return parser


def _convert(argv):
    from zoo.weights.convert import convert

    options = convert_parser().parse_args(argv)
    import_keras_lean()
    classes = convert(options.source, options.destination, options.overwrite)
    print(
        f"wrote {options.destination}: load it with zoo.get_model('alexnet_torchvision', "
        f"classes={classes}, weights={options.destination!r})"
    )
    return 0


def zoo_convert(argv=None):
    """`zoo-convert SRC.pth DST.weights.h5 [--overwrite]`."""
    with tensorflow_start_up_hidden():
        return run_command("zoo-convert", _convert, argv)


# --------------------------------------------------------------------------- python -m zoo

COMMANDS = {
    "train": zoo_train,
    "export": zoo_export,
    "predict": zoo_predict,
    "convert": zoo_convert,
}


def main(argv=None):
    """`python -m zoo COMMAND ARGS`: the command `zoo-COMMAND`; alone, the model table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        import zoo
        from zoo.models import models_table

        print(f"zoo {zoo.__version__}: {len(zoo.list_models())} models\n")
        print(models_table())
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        names = ", ".join(COMMANDS)
        _say(f"python -m zoo: error: unknown command {argv[0]!r}; use one of: {names}")
        return EXIT_BAD_INPUT
    return command(argv[1:])

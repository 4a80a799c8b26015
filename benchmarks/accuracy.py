"""Test accuracy of a model's default recipe, over seeds, on every backend (``make accuracy``).

Command line::

    python benchmarks/accuracy.py                         # lenet5_modern, 5 seeds, 3 backends
    python benchmarks/accuracy.py --seeds 0 1 --backends torch --datasets digits

Each backend runs in its own subprocess and trains, once per seed, exactly what
``zoo-train --model MODEL --dataset DATASET --seed N`` trains with nothing else
given: the model's recipe, as it adapts to the dataset's size (its ``min_steps``),
never to the backend. The table has one row per backend and dataset, one column per
seed, then the mean and the worst seed; below it, each target and whether it held:

- digits (scikit-learn's 1,797 images): every backend's mean >= 0.97 and worst seed
  >= 0.96, and the backends' means within 0.5 point of each other;
- mnist-t10k (``../shared/data/mnist-t10k``; skipped, and said, when absent): every
  backend's mean >= 0.985.

Exits 1 when a target is missed. BENCHMARKS.md keeps the latest table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_T10K = os.path.join(REPO_ROOT, "..", "shared", "data", "mnist-t10k")
BACKENDS = ("jax", "tensorflow", "torch")
SEEDS = (0, 1, 2, 3, 4)
# dataset: (lowest mean, lowest worst seed, widest spread of the backends' means)
TARGETS = {"digits": (0.97, 0.96, 0.005), "mnist-t10k": (0.985, None, None)}


def dataset_argument(name):
    """What ``zoo-train --dataset`` takes for a dataset of the table."""
    return MNIST_T10K if name == "mnist-t10k" else name


def train_seeds(model, dataset, seeds):
    """In this process (its backend): each seed's test accuracy with the default recipe."""
    import zoo

    accuracies = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as output:
            result = zoo.train(
                model=model,
                dataset=dataset_argument(dataset),
                seed=seed,
                output=os.path.join(output, "run"),
                quiet=True,
            )
        accuracies.append(float(result.metrics["test_accuracy"]))
    return accuracies


def run_backend(backend, model, datasets, seeds):
    """`{dataset: [accuracy per seed]}` from a subprocess on `backend`."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", backend, "--model", model]
    command += ["--datasets", *datasets, "--seeds", *map(str, seeds)]
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"accuracy: {backend} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def summarise(accuracies):
    """`{dataset: {backend: {"seeds", "mean", "worst"}}}` from the per-seed accuracies."""
    table = {}
    for backend, by_dataset in accuracies.items():
        for dataset, values in by_dataset.items():
            row = {"seeds": values, "mean": statistics.fmean(values), "worst": min(values)}
            table.setdefault(dataset, {})[backend] = row
    return table


def verdicts(table):
    """One `(text, held)` per target of each dataset in `table`."""
    lines = []
    for dataset, rows in table.items():
        lowest_mean, lowest_worst, widest = TARGETS.get(dataset, (None, None, None))
        means = {backend: row["mean"] for backend, row in rows.items()}
        if lowest_mean is not None:
            held = min(means.values()) >= lowest_mean
            lines.append((f"{dataset}: every mean >= {lowest_mean}", held))
        if lowest_worst is not None:
            worst = min(row["worst"] for row in rows.values())
            text = f"{dataset}: worst seed {worst:.4f} >= {lowest_worst}"
            lines.append((text, worst >= lowest_worst))
        if widest is not None and len(means) > 1:
            spread = max(means.values()) - min(means.values())
            lines.append((f"{dataset}: means within {widest} ({spread:.4f})", spread <= widest))
    return lines


def markdown(table, model):
    """The table (backend x seed) and the targets, as Markdown."""
    seeds = max(len(row["seeds"]) for rows in table.values() for row in rows.values())
    header = ["dataset", "backend", *(f"seed {i}" for i in range(seeds)), "mean", "worst"]
    lines = [f"`{model}`, default recipe", "", "| " + " | ".join(header) + " |"]
    lines.append("| --- | --- |" + " ---: |" * (seeds + 2))
    for dataset, rows in table.items():
        for backend, row in rows.items():
            cells = [f"{value:.4f}" for value in (*row["seeds"], row["mean"], row["worst"])]
            lines.append(f"| {dataset} | {backend} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {'met' if held else 'MISSED'}: {text}" for text, held in verdicts(table)]
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(prog="accuracy", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="lenet5_modern")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--datasets", nargs="+", choices=tuple(TARGETS), default=list(TARGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--json", metavar="PATH", help="also write the table as JSON to PATH")
    parser.add_argument("--worker", metavar="BACKEND", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    options = build_parser().parse_args(argv)
    if options.worker:
        found = {d: train_seeds(options.model, d, options.seeds) for d in options.datasets}
        print(json.dumps(found))
        return 0
    datasets = list(options.datasets)
    if "mnist-t10k" in datasets and not os.path.isdir(MNIST_T10K):
        print(f"accuracy: {MNIST_T10K} is absent; mnist-t10k is left out", file=sys.stderr)
        datasets.remove("mnist-t10k")
    backends = [b for b in options.backends if importlib.util.find_spec(b)]
    for missing in sorted(set(options.backends) - set(backends)):
        print(f"accuracy: {missing} is not installed; its rows are left out", file=sys.stderr)
    accuracies = {b: run_backend(b, options.model, datasets, options.seeds) for b in backends}
    table = summarise(accuracies)
    print(markdown(table, options.model))
    if options.json:
        from zoo._io import write_json

        write_json(options.json, {"model": options.model, "table": table})
    return 0 if all(held for _, held in verdicts(table)) else 1


if __name__ == "__main__":
    sys.exit(main())

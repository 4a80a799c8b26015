"""AlexNet's training step on a GPU: the zoo on PyTorch and JAX against plain PyTorch loops.

Part of ``make gpu-check`` (``benchmarks/gpu_check.sh``); also runs on a CPU, smaller::

    python benchmarks/gpu_bench.py                                   # 224x224, batch 128
    python benchmarks/gpu_bench.py --device cpu --image-size 67 --batch-size 4 --steps 2

Each runner trains AlexNet (the zoo's ``alexnet``; ``benchmarks/torch_baseline.py``'s
network of the same layers for PyTorch) on random channels-last images already on
the device, in its own subprocess, under each dtype policy: ``float32``, and
``mixed_bfloat16`` (Keras's policy; ``torch.autocast`` to bfloat16 for the plain
loops). Runners: ``zoo-torch`` and ``zoo-jax`` (``compile_model`` then
``train_on_batch``, as ``zoo-train`` steps), ``torch-eager`` and ``torch-compile``
(channels-last weights and images). Figures: images per second over the timed
steps (median step time after the warm-up steps), and the ratio to ``torch-eager``
under the same policy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNERS = {  # runner: the package it needs
    "zoo-torch": "torch",
    "zoo-jax": "jax",
    "torch-eager": "torch",
    "torch-compile": "torch",
}
POLICIES = ("float32", "mixed_bfloat16")


def random_batch(job):
    import numpy as np

    rng = np.random.default_rng(0)
    size, batch = job["image_size"], job["batch_size"]
    images = rng.random((batch, size, size, 3), dtype="float32")
    return images, rng.integers(0, job["classes"], batch)


def median_step(step, job):
    """Median seconds of `step()` over the timed steps, after the warm-up ones."""
    for _ in range(job["warmup"]):
        step()
    seconds = []
    for _ in range(job["steps"]):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def run_zoo(job):
    """The zoo's step on this process's Keras backend (train_on_batch waits for the result)."""
    import keras

    import zoo
    from zoo.accel import accelerate
    from zoo.training.compile import compile_model

    keras.config.set_dtype_policy(job["policy"])
    model = zoo.get_model("alexnet", input_shape=(job["image_size"],) * 2 + (3,))
    compile_model(model, "adam", 1e-3)
    accelerate(model)
    with keras.device(job["device"]):
        images, labels = (keras.ops.convert_to_tensor(a) for a in random_batch(job))
    return median_step(lambda: model.train_on_batch(images, labels), job)


def run_torch(job, compiled):
    """The plain PyTorch loop: channels-last, Adam, bfloat16 autocast under mixed_bfloat16."""
    import torch

    sys.path.insert(0, HERE)
    from torch_baseline import alexnet, keras_style_init

    device = torch.device("cuda" if job["device"].startswith("gpu") else "cpu")
    torch.manual_seed(0)
    model = alexnet(job["classes"], job["image_size"])
    keras_style_init(model)
    model = model.to(device, memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    images, labels = random_batch(job)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).to(device, memory_format=torch.channels_last)
    y = torch.from_numpy(labels).long().to(device)
    mixed = job["policy"] == "mixed_bfloat16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed):
            loss = torch.nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # waits for the GPU, as train_on_batch's NumPy result does

    return median_step(step, job)


def worker(job):
    runner = job["runner"]
    if runner.startswith("zoo-"):
        seconds = run_zoo(job)
    else:
        seconds = run_torch(job, compiled=runner == "torch-compile")
    print(json.dumps({**job, "images_per_s": job["batch_size"] / seconds}))


def run_one(job, timeout):
    """`job` in its own process; its result, or `{"error": ...}` (never raises)."""
    env = dict(os.environ)
    if job["runner"].startswith("zoo-"):
        env["KERAS_BACKEND"] = RUNNERS[job["runner"]]
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**job, "error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        return {**job, "error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def add_ratios(results):
    """Each result's ratio to torch-eager under the same policy (None without one)."""
    eager = {
        r["policy"]: r["images_per_s"]
        for r in results
        if r["runner"] == "torch-eager" and "images_per_s" in r
    }
    for result in results:
        base = eager.get(result["policy"])
        speed = result.get("images_per_s")
        result["ratio"] = None if base is None or speed is None else speed / base
    return results


def markdown(results):
    lines = ["| runner | policy | train img/s | × torch-eager |", "| --- | --- | ---: | ---: |"]
    for r in results:
        speed = f"{r['images_per_s']:,.1f}" if "images_per_s" in r else r.get("error", "")
        ratio = "" if r.get("ratio") is None else f"{r['ratio']:.2f}"
        lines.append(f"| {r['runner']} | {r['policy']} | {speed} | {ratio} |")
    return "\n".join(lines)


def build_parser():
    parser = argparse.ArgumentParser(prog="gpu_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="gpu:0", help="Keras device name (gpu:0, cpu:0)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after 3 warm-up)")
    parser.add_argument("--runners", nargs="+", choices=tuple(RUNNERS), default=list(RUNNERS))
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--worker", metavar="JOB", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    options = build_parser().parse_args(argv)
    if options.worker:
        worker(json.loads(options.worker))
        return 0
    base = {
        "device": options.device,
        "image_size": options.image_size,
        "batch_size": options.batch_size,
        "steps": options.steps,
        "warmup": 3,
        "classes": 1000,
    }
    results = []
    for policy in options.policies:
        for runner in options.runners:
            job = {**base, "runner": runner, "policy": policy}
            if importlib.util.find_spec(RUNNERS[runner]) is None:
                results.append({**job, "error": f"{RUNNERS[runner]} is not installed"})
                continue
            print(f"{runner}, {policy} ...", file=sys.stderr, flush=True)
            results.append(run_one(job, options.timeout))
    add_ratios(results)
    print(markdown(results))
    if options.json:
        from zoo._io import write_json

        write_json(options.json, results)
    return 0 if all("images_per_s" in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

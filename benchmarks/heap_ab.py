"""The zoo's heap settings (``zoo.accel.heap``) on and off, in alternating subprocesses.

    python benchmarks/heap_ab.py                         # every installed backend, 4 rounds
    python benchmarks/heap_ab.py --runners zoo-torch --rounds 6 --seeds 4

Each round runs, for every zoo runner, the benchmark's LeNet throughput job (``bench.py``'s
own worker, batch 128, on the MNIST split) and ``--seeds`` time-to-accuracy seeds twice:
as the zoo runs them, and with ``ZOO_HEAP=glibc`` (glibc's defaults), in alternating
order. It prints the median of each figure over the rounds, with and without, and the
ratio; BENCHMARKS.md quotes it. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402

FIGURES = (  # (report key, label, higher is better)
    ("train_images_per_s", "train img/s", True),
    ("inference_images_per_s", "inference img/s", True),
    ("tta_seconds", "time to 0.98 (s)", False),
    ("startup_seconds", "start-up (s)", False),
    ("peak_rss_mb", "peak RSS (MiB)", False),
)


def run(runner, job, steady):
    """One bench worker run, with the zoo's heap settings when ``steady``."""
    os.environ.pop("ZOO_HEAP", None)
    if not steady:
        os.environ["ZOO_HEAP"] = "glibc"
    try:
        return bench.run_one(runner, job, timeout=1800)
    finally:
        os.environ.pop("ZOO_HEAP", None)


def measure(runners, rounds, seeds):
    """``{(runner, setting): {figure: [values]}}`` over ``rounds`` alternating rounds."""
    figures = {}
    with tempfile.TemporaryDirectory(prefix="zoo-heap-ab-") as folder:
        data = os.path.join(folder, "lenet.npz")
        _, real = bench.write_lenet_data(bench.DEFAULT_DATA, data)
        throughput = bench.make_jobs(data, quick=True)["lenet5_modern"]
        jobs = [throughput]
        if real:
            jobs += bench.make_tta_jobs(data, False, bench.zoo_recipe(), seeds=seeds)
        for index in range(rounds):
            order = (True, False) if index % 2 == 0 else (False, True)
            for runner in runners:
                for steady in order:
                    for job in jobs:
                        result = run(runner, job, steady)
                        if "error" in result:
                            raise SystemExit(f"{runner}: {result['error']}")
                        values = figures.setdefault((runner, steady), {})
                        for key, _, _ in FIGURES:
                            if result.get(key) is not None:
                                values.setdefault(key, []).append(result[key])
            print(f"round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    return figures


def table(figures, runners):
    lines = [
        "| runner | figure | zoo heap | glibc defaults | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for runner in runners:
        for key, label, higher in FIGURES:
            steady = figures.get((runner, True), {}).get(key)
            plain = figures.get((runner, False), {}).get(key)
            if not steady or not plain:
                continue
            a, b = statistics.median(steady), statistics.median(plain)
            ratio = a / b if higher else b / a  # above 1: the zoo's heap is better
            lines.append(f"| {runner} | {label} | {a:,.2f} | {b:,.2f} | {ratio:.2f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    zoo_runners = [r for r in bench.RUNNERS if r.startswith("zoo-")]
    parser.add_argument("--runners", default=",".join(zoo_runners))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2, help="time-to-accuracy seeds per round")
    args = parser.parse_args()
    try:
        chosen = bench._choices(args.runners, zoo_runners, "--runners")
    except bench.BenchError as error:
        parser.exit(2, f"heap_ab: error: {error}\n")
    if args.rounds < 1 or args.seeds < 0:
        parser.exit(2, "heap_ab: error: --rounds must be at least 1 and --seeds at least 0.\n")
    runners = [r for r in chosen if bench.available(r) is None]
    figures = measure(runners, args.rounds, args.seeds)
    print(table(figures, runners))
    print("\nratio: the zoo's settings against glibc's defaults, above 1 better (medians)")


if __name__ == "__main__":
    main()

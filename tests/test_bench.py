"""The benchmark: its native baselines are the zoo's networks, its arithmetic is right,
and ``--quick`` runs end to end on this backend. No test asserts a time."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import set_fixed_weights

from zoo.accel.cpu import cpu_model
from zoo.models import get_model, model_info
from zoo.training.compile import compile_model

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
sys.path.insert(0, os.path.abspath(BENCHMARKS))
import bench  # noqa: E402  (benchmarks/bench.py: the driver lives outside the package)

BACKEND = keras.backend.backend()


# --------------------------------------------------------------------------- the baselines


def test_torch_baseline_has_the_zoos_parameter_counts():
    pytest.importorskip("torch")
    import torch_baseline

    def count(net):
        return sum(p.numel() for p in net.parameters())

    assert count(torch_baseline.lenet5_modern(10)) == model_info("lenet5_modern")["params"]
    assert count(torch_baseline.alexnet(1000)) == model_info("alexnet")["params"] == 62_378_344


def test_jax_baseline_has_the_zoos_parameter_counts():
    pytest.importorskip("jax")
    import jax
    import jax_baseline

    def count(layers, shape, classes):
        params = jax_baseline.init_params(layers, shape, classes, jax.random.PRNGKey(0))
        return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))

    assert count(jax_baseline.LENET5_MODERN, (28, 28, 1), 10) == 61_706
    assert count(jax_baseline.ALEXNET, (227, 227, 3), 1000) == 62_378_344


def _keras_lenet_logits(images):
    model = get_model("lenet5_modern", classifier_activation=None)
    weights = set_fixed_weights(model, seed=3)
    return weights, np.asarray(model.predict(images, verbose=0))


def test_torch_baseline_computes_what_the_zoo_computes():
    """Keras weights copied into the PyTorch LeNet (kernels transposed, fc1 rows reordered
    from channels-last to channels-first flattening) give the same logits."""
    torch = pytest.importorskip("torch")
    import torch_baseline

    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    weights, expected = _keras_lenet_logits(images)
    net = torch_baseline.lenet5_modern(10)
    layers = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    kernels, biases = weights[0::2], weights[1::2]
    with torch.no_grad():
        for index, (layer, kernel, bias) in enumerate(zip(layers, kernels, biases, strict=True)):
            if kernel.ndim == 4:
                kernel = kernel.transpose(3, 2, 0, 1)
            elif index == 2:  # fc1: rows are (h, w, c) in Keras, (c, h, w) in PyTorch
                kernel = kernel.reshape(5, 5, 16, 120).transpose(2, 0, 1, 3).reshape(400, 120).T
            else:
                kernel = kernel.T
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            layer.bias.copy_(torch.from_numpy(bias))
        actual = net(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)


def test_jax_baseline_computes_what_the_zoo_computes():
    pytest.importorskip("jax")
    import jax_baseline

    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    weights, expected = _keras_lenet_logits(images)
    pairs = iter(zip(weights[0::2], weights[1::2], strict=True))
    params = [
        dict(zip(("w", "b"), next(pairs), strict=True)) if layer[0] in ("conv", "dense") else {}
        for layer in jax_baseline.LENET5_MODERN
    ]
    actual = np.asarray(jax_baseline.forward(jax_baseline.LENET5_MODERN, params, images))
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)


def test_time_to_accuracy_counts_training_time_until_the_target():
    import _harness

    accuracies = iter([0.5, 0.9, 0.985, 0.99])
    epoch_seconds = []
    seconds, epochs, reached = _harness.time_to_accuracy(
        lambda: None, lambda: next(accuracies), 0.98, max_epochs=10, epoch_seconds=epoch_seconds
    )
    assert epochs == 3 and reached == 0.985 and 0 <= seconds < 1
    assert len(epoch_seconds) == 3 and sum(epoch_seconds) == seconds
    never = iter([0.1, 0.2])
    seconds, epochs, reached = _harness.time_to_accuracy(
        lambda: None, lambda: next(never), 0.98, max_epochs=2
    )
    assert seconds is None and epochs == 2 and reached == 0.2


def test_the_first_step_clock_notes_step_two_once_then_stops_listening(monkeypatch):
    from zoo.accel.batch_hooks import listens

    monkeypatch.setitem(bench.FIRST_STEP, "at", None)
    clock = bench._first_step()
    clock.on_train_batch_begin(0)
    assert bench.FIRST_STEP["at"] is None and listens(clock, "on_train_batch_begin")
    clock.on_train_batch_begin(1)
    noted = bench.FIRST_STEP["at"]
    assert noted is not None
    assert not listens(clock, "on_train_batch_begin")  # the zoo's fit calls it no more
    clock.on_train_batch_begin(2)
    assert bench.FIRST_STEP["at"] == noted


def test_batches_cover_every_image_once_with_a_partial_last_batch():
    import _harness

    batches = _harness.batch_slices(300, 128, np.random.default_rng(0))
    assert [len(b) for b in batches] == [128, 128, 44]
    assert sorted(np.concatenate(batches).tolist()) == list(range(300))


# --------------------------------------------------------------------------- driver arithmetic


def _run(runner, model, train, infer, rss=100.0):
    return {
        "runner": runner,
        "model": model,
        "train_images_per_s": train,
        "inference_images_per_s": infer,
        "peak_rss_mb": rss,
    }


def test_rounds_are_summarised_by_median_and_range_and_ratios_pair_rounds():
    runs = [
        {**_run("torch-eager", "lenet5_modern", 1000.0, 4000.0), "round": 0},
        {**_run("zoo-jax", "lenet5_modern", 600.0, 3000.0), "round": 0},
        {**_run("torch-eager", "lenet5_modern", 2000.0, 2000.0), "round": 1},
        {**_run("zoo-jax", "lenet5_modern", 1200.0, 2000.0), "round": 1},
        {**_run("torch-eager", "lenet5_modern", 1500.0, 2000.0), "round": 2},
        {**_run("zoo-jax", "lenet5_modern", 900.0, 2100.0), "round": 2},
        {"runner": "jax-jit", "model": "lenet5_modern", "error": "exit 1: boom", "round": 0},
    ]
    results = {r["runner"]: r for r in bench.summarise(runs)}
    bench.add_ratios(list(results.values()), runs)
    eager, zoo_jax = results["torch-eager"], results["zoo-jax"]
    assert eager["train_images_per_s"] == 1500.0 and eager["train_ratio"] == 1.0
    assert eager["train_images_per_s_range"] == [1000.0, 2000.0]
    # Every round zoo-jax ran at 0.6x that round's torch-eager: the ratio is steady even
    # though both throughputs moved by half (the machine's load, not the code).
    assert zoo_jax["train_images_per_s"] == 900.0 and zoo_jax["train_ratio"] == 0.6
    assert zoo_jax["train_ratio_range"] == [0.6, 0.6]
    assert zoo_jax["inference_ratio"] == 1.0 and zoo_jax["inference_ratio_range"] == [0.75, 1.05]
    assert zoo_jax["noisy"] == ["train_images_per_s", "inference_images_per_s"]
    assert zoo_jax["repeats"] == 3 and "round" not in zoo_jax
    assert "error" in results["jax-jit"] and "train_ratio" not in results["jax-jit"]
    table = bench.markdown_table(list(results.values())).splitlines()
    assert table[0].startswith("| model | runner | train img/s | × torch-eager")
    assert table[3] == (
        "| lenet5_modern | zoo-jax | 900 | 0.60 ⚠ | 2,100 | 1.00 (0.75–1.05) ⚠ | 100 | 3 |"
    )
    assert "exit 1: boom" in table[4]
    assert "zoo-jax" in table[-1] and "wider than 10%" in table[-1]


def test_a_steady_row_is_not_flagged():
    runs = [
        {**_run("torch-eager", "lenet5_modern", 1000.0 + i, 2000.0), "round": i} for i in range(3)
    ]
    (result,) = bench.summarise(runs)
    assert result["noisy"] == [] and result["train_images_per_s_range"] == [1000.0, 1002.0]
    assert "⚠" not in bench.markdown_table([result])


def test_round_orders_are_pinned_by_the_seed():
    runners = ["zoo-jax", "zoo-tensorflow", "zoo-torch", "torch-eager", "jax-jit"]
    first = [bench.round_order(runners, i, 7) for i in range(4)]
    assert first == [bench.round_order(runners, i, 7) for i in range(4)]  # a second run
    assert all(sorted(order) == sorted(runners) for order in first)
    assert len({tuple(order) for order in first}) > 1  # rounds differ from each other
    assert first != [bench.round_order(runners, i, 8) for i in range(4)]
    assert bench.round_order(runners, 3, None) == runners  # --order-seed -1: as listed


def test_mlperf_mean_drops_the_fastest_and_slowest_seed():
    assert bench.mlperf_mean([10.0, 1.0, 4.0, 6.0, 5.0]) == 5.0  # (4 + 5 + 6) / 3
    assert bench.mlperf_mean([10.0, None, 4.0, 6.0, 5.0]) == 7.0  # not reached: the slowest
    assert bench.mlperf_mean([None, None, 4.0, 6.0, 5.0]) is None  # a kept seed never got there
    assert bench.mlperf_mean([3.0]) == 3.0 and bench.mlperf_mean([]) is None


def _tta(runner, seed, seconds, epochs):
    return {
        "runner": runner,
        "model": "lenet5_modern",
        "seed": seed,
        "tta_seconds": seconds,
        "tta_epochs": epochs,
        "final_accuracy": 0.981,
        "startup_seconds": 2.0 + seed,
        "peak_rss_mb": 300.0,
    }


def test_time_to_accuracy_rows_compare_with_torch_eagers_plain_recipe():
    runs = [_tta("torch-eager", s, 10.0 + s, 12) for s in range(5)]
    runs += [_tta("zoo-jax", s, 4.0 + 2 * s, 3) for s in range(5)]
    runs.append({"runner": "zoo-jax", "model": "lenet5_modern", "error": "exit 1: boom"})
    rows = {row["runner"]: row for row in bench.summarise_tta(runs)}
    eager, zoo_jax = rows["torch-eager"], rows["zoo-jax"]
    assert eager["mean_seconds"] == 12.0 and eager["ratio"] == 1.0 and eager["recipe"] == "plain"
    assert zoo_jax["mean_seconds"] == 8.0 and zoo_jax["ratio"] == 0.67
    assert zoo_jax["recipe"] == "zoo" and zoo_jax["startup_seconds"] == 4.0
    assert zoo_jax["seconds"] == [4.0, 6.0, 8.0, 10.0, 12.0] and zoo_jax["errors"] == [
        "exit 1: boom"
    ]
    table = bench.tta_table(list(rows.values())).splitlines()
    assert (
        "| zoo-jax | zoo | 4.0, 6.0, 8.0, 10.0, 12.0 (1 failed: exit 1: boom) | 3, 3, 3, 3, 3 "
        in (table[3])
    )
    assert "| 8.0 | 0.67 | 4.0 | 300 |" in table[3]


def test_time_to_accuracy_rows_compare_with_the_same_recipe_and_on_equal_epochs():
    def runs_of(runner, seconds, epochs):
        return [_tta(runner, s, t, e) for s, (t, e) in enumerate(zip(seconds, epochs, strict=True))]

    runs = runs_of("torch-eager-zoo-recipe", [2.0, 2.0, 3.0, 2.0, 2.0], [2, 2, 3, 2, 2])
    runs += runs_of("zoo-jax", [3.0, 2.4, 2.4, 3.3, 2.2], [3, 2, 2, 3, 2])
    runs += runs_of("zoo-torch", [2.1, None, 3.1, 2.1, 2.1], [2, 5, 3, 2, 2])
    runs += runs_of("torch-eager", [9.0] * 5, [10] * 5)
    rows = {row["runner"]: row for row in bench.summarise_tta(runs)}
    jax, torch = rows["zoo-jax"], rows["zoo-torch"]
    assert jax["same_recipe_ratio"] == 1.3  # MLPerf means 2.6 and 2.0
    assert jax["equal_epoch_seeds"] == [1, 4] and jax["equal_epochs_ratio"] == 1.15  # 4.6 / 4
    assert torch["same_recipe_ratio"] == 1.22  # (2.1 + 2.1 + 3.1) / 3, the unreached seed last
    assert torch["equal_epoch_seeds"] == [0, 2, 3, 4] and torch["equal_epochs_ratio"] == 1.04
    plain, same = rows["torch-eager"], rows["torch-eager-zoo-recipe"]
    assert "same_recipe_ratio" not in plain and "equal_epochs_ratio" not in plain  # another recipe
    assert "same_recipe_ratio" not in same  # not compared with itself
    table = {
        line.split(" | ")[0][2:]: line for line in bench.tta_table(list(rows.values())).splitlines()
    }
    assert table["zoo-jax"].endswith("| 1.30 | 1.15 (2 seeds) |")
    assert table["torch-eager-zoo-recipe"].endswith("| — | — |")


def test_native_loops_follow_the_zoos_schedule_step_for_step():
    import _harness

    from zoo.training.compile import learning_rate_schedule

    recipe = {"learning_rate": 3e-3, "schedule": "warmup-cosine"}
    schedule = learning_rate_schedule(3e-3, "warmup-cosine", 625)
    for step in (0, 1, 31, 62, 63, 300, 624, 625):
        keras_rate = float(keras.ops.convert_to_numpy(schedule(step)))
        assert _harness.learning_rate(recipe, step, 625) == pytest.approx(keras_rate, abs=1e-9)
    plain = {"learning_rate": 1e-3, "schedule": "constant"}
    assert _harness.learning_rate(plain, 400, 625) == 1e-3


def test_quick_jobs_are_smaller_than_full_ones():
    quick, full = bench.make_jobs("x.npz", quick=True), bench.make_jobs("x.npz", quick=False)
    for model in bench.MODELS:
        assert quick[model]["batch_size"] == full[model]["batch_size"]
        assert quick[model]["inference_repeats"] < full[model]["inference_repeats"]
    assert full["lenet5_modern"]["batch_size"] == 128 and full["alexnet"]["batch_size"] == 16
    assert full["alexnet"]["input_shape"] == [227, 227, 3]
    recipe = {"epochs": 5, "batch_size": 64, "learning_rate": 3e-3, "schedule": "warmup-cosine"}
    quick_tta = bench.make_tta_jobs("x.npz", quick=True, zoo_recipe=recipe)
    full_tta = bench.make_tta_jobs("x.npz", quick=False, zoo_recipe=recipe)
    assert [job["seed"] for job in full_tta] == list(range(10)) and len(quick_tta) == 1
    five = bench.make_tta_jobs("x.npz", quick=False, zoo_recipe=recipe, seeds=5)
    assert [job["seed"] for job in five] == [0, 1, 2, 3, 4]
    assert full_tta[0]["recipes"] == {"plain": bench.PLAIN_RECIPE, "zoo": recipe}
    assert {r["epochs"] for r in quick_tta[0]["recipes"].values()} == {1}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--runners", "zoo-jax,pytorch"], "unknown pytorch"),
        (["--models", "vgg16"], "unknown vgg16"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--tta-seeds", "0"], "--tta-seeds must be at least 1"),
        (["--order-seed", "-2"], "--order-seed must be -1"),
        (["--compile-options", "{jit"], "not valid JSON"),
        (["--json", "/no/such/folder/out.json"], "does not exist"),
        (["--data", "/no/such/mnist", "--runners", "torch-eager"], "--data:"),
    ],
)
def test_bad_flags_exit_2_with_one_message(argv, message, capsys):
    assert bench.main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("bench: error:") and message in error[0]


def test_compile_model_passes_the_benchmarks_options_to_keras():
    model = compile_model(get_model("lenet5_modern"), "adam", 1e-3, steps_per_execution=4)
    assert model.steps_per_execution == 4
    assert model.loss == "sparse_categorical_crossentropy"


# --------------------------------------------------------------------------- end to end

# This backend's zoo runner and the native loops its install can run; torch-eager, the
# reference of every ratio, comes along wherever PyTorch is installed.
QUICK_RUNNERS = {
    "jax": ["zoo-jax", "jax-jit"],
    "tensorflow": ["zoo-tensorflow"],
    "torch": ["zoo-torch", "torch-compile"],
}[BACKEND]


def test_quick_benchmark_runs_end_to_end_on_this_backend(tmp_path):
    # torch-eager, the baseline of every ratio, runs in the PyTorch pass: the same process on any
    # backend's pass, so the JAX and TensorFlow passes leave it out (make test stays in its time).
    runners = QUICK_RUNNERS + (["torch-eager"] if BACKEND == "torch" else [])
    out = tmp_path / "bench.json"
    command = [sys.executable, bench.__file__, "--quick", "--repeats", "1"]
    command += ["--runners", ",".join(runners)]
    done = subprocess.run(
        [*command, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["machine"]["cpu_count"] >= 1
    assert report["machine"]["cpu"] == cpu_model()
    results = {(r["model"], r["runner"]): r for r in report["results"]}
    assert set(results) == {(m, r) for m in bench.MODELS for r in runners}
    for result in results.values():
        assert "error" not in result, result
        assert result["train_images_per_s"] > 0 and result["inference_images_per_s"] > 0
        assert result["peak_rss_mb"] > 50
        if "torch-eager" in runners:
            assert result["train_ratio"] > 0
        else:
            assert "train_ratio" not in result  # no baseline ran: no ratio is made up
    tta = {row["runner"]: row for row in report["time_to_accuracy"]}
    for run in report["tta_runs"]:  # every runner times each epoch, first included
        assert len(run["epoch_seconds"]) == run["tta_epochs"] and min(run["epoch_seconds"]) > 0
    if "mnist-t10k" in report["lenet_data"]:  # one epoch on real digits learns something
        assert set(tta) == {r for r in runners if r in bench.TTA_RUNNERS}
        for row in tta.values():
            assert row["epochs"] == [1] and 0.5 < row["final_accuracy"][0] <= 1, row
            assert 0 < row["startup_seconds"] < 600 and not row["errors"]
    else:  # random labels: time to accuracy is not measured
        assert tta == {}
    table = done.stdout.strip().split("\n\n")[0].splitlines()
    assert table[0].startswith("| model | runner") and len(table) == 2 + len(results)
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]


# --------------------------------------------------------------------------- recipe and memory


def test_recipe_search_reads_recipes_and_seeds_and_finds_the_first_epoch():
    import recipe_search

    assert recipe_search.parse_recipe("64,3e-3,5,warmup-cosine") == {
        "optimizer": "adam",
        "batch_size": 64,
        "learning_rate": 0.003,
        "epochs": 5,
        "schedule": "warmup-cosine",
        "label_smoothing": 0.0,
    }
    assert recipe_search.parse_recipe("32,1e-3,4,constant,0.1")["label_smoothing"] == 0.1
    assert recipe_search.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert recipe_search.parse_seeds("2,7") == [2, 7]
    assert recipe_search.first_epoch_at([0.95, 0.979, 0.98, 0.99], 0.98) == 3
    assert recipe_search.first_epoch_at([0.95, 0.979], 0.98) is None
    assert recipe_search.model_input_shape("lenet5_modern") == (28, 28, 1)
    assert recipe_search.model_input_shape("alexnet") == (67, 67, 3)  # AlexNet's smallest
    assert recipe_search.model_input_shape("alexnet", 99) == (99, 99, 3)


def test_memory_stages_prints_a_growing_peak_for_each_stage_of_a_run():
    """Peak RSS never falls, every stage has a row, and Keras came in without its extras."""
    script = os.path.join(BENCHMARKS, "memory_stages.py")
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    done = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| ")]
    stages = [row[1].strip() for row in rows[2:]]
    assert stages[0] == "Python and NumPy" and stages[-1] == "predict 2,000 images"
    assert len(stages) == (7 if BACKEND == "tensorflow" else 8)  # TensorFlow comes with Keras
    peaks = [float(row[2]) for row in rows[2:]]
    assert peaks == sorted(peaks) and peaks[-1] > peaks[0]
    imported = done.stdout.strip().splitlines()[-1]
    for extra in ("sklearn", "matplotlib", "jax", "tensorflow"):
        if extra != BACKEND:
            assert extra not in imported, imported


def test_startup_ab_times_each_way_of_importing_keras_on_this_backend():
    """One row per way of importing Keras (TorchDynamo's row on PyTorch only), each a time."""
    script = os.path.join(BENCHMARKS, "startup_ab.py")
    done = subprocess.run(
        [sys.executable, script, "--rounds", "1", "--backends", BACKEND],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| ")]
    sides = [(row[1].strip(), row[2].strip()) for row in rows[2:]]
    expected = ["plain", "zoo"] + (["zoo + TorchDynamo"] if BACKEND == "torch" else [])
    assert sides == [(BACKEND, side) for side in expected]
    assert all(float(row[3]) > 0 for row in rows[2:])
    assert done.stdout.strip().splitlines()[-1].startswith("ml_dtypes ")


def test_pool_impls_times_kerass_pooling_and_the_zoos_on_this_backend():
    """A row per max-pooling layer of LeNet-5, each Keras's and the zoo's time; TensorFlow,
    which has no pooling speed-up, is one line saying so."""
    script = os.path.join(BENCHMARKS, "pool_impls.py")
    done = subprocess.run(
        [sys.executable, script, "--calls", "1", "--models", "lenet"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": BACKEND},
    )
    if BACKEND == "tensorflow":
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1] == (
            "pool_impls: Keras's pooling is all there is on tensorflow"
        )
        return
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [row[1].strip() for row in rows[2:]] == ["lenet5_modern pool1", "lenet5_modern pool2"]
    for row in rows[2:]:
        keras_ms, zoo_ms = float(row[4]), float(row[5].split()[0])
        ratio = float(row[5].split()[1].strip("()"))
        assert keras_ms > 0 and zoo_ms > 0
        assert ratio == pytest.approx(zoo_ms / keras_ms, abs=0.01)


def test_speedups_ab_trains_each_model_and_a_conv_variant_and_times_predict():
    script = os.path.join(BENCHMARKS, "speedups_ab.py")
    done = subprocess.run(
        [sys.executable, script, "--rounds", "1", "--images", "256", "--predict"]
        + ["--variant", "conv2=im2col", "--without", "pool-first"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": BACKEND},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    names = [line.split(": ")[0] for line in lines]
    prefix = f"{BACKEND} lenet5_modern "
    wanted = ("keras", "zoo", "zoo without pool-first", "zoo with conv2=im2col")
    assert names == [prefix + name for name in wanted]
    for line in lines:
        train, predict = line.split(": ")[1].split(", ")
        assert train.endswith(" img/s") and float(train.split()[0].replace(",", "")) > 0
        assert predict.startswith("predict ") and float(predict.split()[1].replace(",", "")) > 0


def test_a_runs_peak_memory_is_its_own_not_the_process_that_started_it():
    """``ru_maxrss`` survives ``exec``: read from a child of this big test process, it would be
    this process's size. A run's figure must be its own (here, Python, NumPy and bench.py)."""
    ballast = np.ones(200 * 2**20 // 8)  # 200 MiB in this process, touched
    code = f"import sys; sys.path.insert(0, {BENCHMARKS!r}); import bench; "
    code += "print(bench.peak_rss_mb())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(ballast.sum()) == ballast.size
    assert 5 < float(done.stdout) < 150


def test_torch_baselines_label_smoothing_is_keras_label_smoothing():
    """torch-eager-zoo-recipe smooths as the zoo's compiled loss does, to 1e-6."""
    torch = pytest.importorskip("torch")
    from zoo.training.compile import loss_for

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 10)).astype("float32")
    labels = rng.integers(0, 10, 8)
    theirs = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits), torch.from_numpy(labels), label_smoothing=0.1
    )
    probabilities = keras.ops.softmax(keras.ops.convert_to_tensor(logits))
    ours = loss_for(0.1)(np.eye(10, dtype="float32")[labels], probabilities)
    assert float(keras.ops.convert_to_numpy(ours)) == pytest.approx(float(theirs), abs=1e-6)


def test_torch_step_profile_compares_the_loops_operator_by_operator():
    """Keras's code, the zoo's and the plain loop are profiled over real training steps:
    convolution gradients show up in each."""
    pytest.importorskip("torch")
    script = os.path.join(BENCHMARKS, "profile_torch_step.py")
    done = subprocess.run(
        [sys.executable, script, "--steps", "3"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:5]]
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| ---")
    }
    for row in ("wall ms per step", "in operators", "outside (Python)"):
        assert all(float(cell) != 0 for cell in rows[row]), rows[row]
    assert rows[""] == ["keras-torch", "zoo-torch", "torch-eager"]
    backward = rows["`aten::convolution_backward`"]
    assert all(float(cell) > 0 for cell in backward), backward


# --------------------------------------------------------------------------- make gpu-check


@pytest.mark.skipif(BACKEND != "torch", reason="runs once, in the PyTorch pass: it starts both")
def test_gpu_check_runs_its_cpu_path_and_reports_the_bench(tmp_path):
    """`make gpu-check`'s steps on a CPU, smaller: the script a GPU session runs works."""
    pytest.importorskip("torch")
    env = {**os.environ, "GPU_CHECK_CPU": "1", "GPU_CHECK_OUT": str(tmp_path)}
    env["GPU_PYTHON"] = sys.executable
    script = os.path.join(BENCHMARKS, "gpu_check.sh")
    done = subprocess.run(["bash", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "gpu-check passed" in done.stdout
    results = json.loads((tmp_path / "gpu_bench.json").read_text())
    by_runner = {r["runner"]: r for r in results}
    assert set(by_runner) == {"zoo-torch", "torch-eager"}
    assert by_runner["torch-eager"]["ratio"] == 1.0 and by_runner["zoo-torch"]["images_per_s"] > 0
    assert "passed" in (tmp_path / "tests-torch.log").read_text()


def test_gpu_bench_sizes_the_baseline_alexnet_for_the_image():
    torch = pytest.importorskip("torch")
    import torch_baseline

    for size in (67, 224, 227):
        net = torch_baseline.alexnet(10, size)
        assert net(torch.zeros(1, 3, size, size)).shape == (1, 10)
        keras_params = get_model("alexnet", input_shape=(size, size, 3), classes=10).count_params()
        assert sum(p.numel() for p in net.parameters()) == keras_params


@pytest.mark.parametrize(
    "arguments, problem",
    [(["--runners", "zoo-foo"], "unknown zoo-foo"), (["--rounds", "0"], "--rounds must be")],
)
def test_heap_ab_refuses_bad_arguments_in_one_line_before_running_anything(arguments, problem):
    script = os.path.join(BENCHMARKS, "heap_ab.py")
    done = subprocess.run(
        [sys.executable, script, *arguments], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0] and lines[0].startswith("heap_ab: error:")

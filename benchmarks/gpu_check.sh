#!/usr/bin/env bash
# make gpu-check: the zoo on a GPU, within 8 minutes (issue 32).
#
#   1. which devices PyTorch and JAX see (fails here if neither sees a GPU, unless GPU_CHECK_CPU=1);
#   2. on PyTorch, then on JAX: the model, training, training-step, predict and export tests;
#   3. benchmarks/gpu_bench.py: AlexNet at 224x224, batch 128, float32 and mixed_bfloat16,
#      zoo-torch and zoo-jax against torch-eager and torch.compile on the same GPU.
#
# Results land in $GPU_CHECK_OUT (default runs/gpu-check): the tests' logs and gpu_bench.json.
# On the lent GPU machine (Python 3.12, PyTorch and JAX with CUDA, no Keras): `make gpu-wheels`
# here first, carry .whl, and there run
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
#   PYTHONPATH=/tmp/site:$PWD GPU_PYTHON=python3 GPU_CHECK_OUT=$OUT bash benchmarks/gpu_check.sh
# GPU_CHECK_CPU=1 runs the same steps on a CPU, smaller: the CPU path the test suite checks.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${GPU_PYTHON:-.venv/bin/python}
OUT=${GPU_CHECK_OUT:-runs/gpu-check}
mkdir -p "$OUT"
failed=""

"$PY" - <<'PY' || { [ "${GPU_CHECK_CPU:-0}" = 1 ] || exit 2; }
import importlib.util, sys
found = []
if importlib.util.find_spec("torch"):
    import torch
    print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "no cuda",
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
    found.append(torch.cuda.is_available())
if importlib.util.find_spec("jax"):
    import jax
    print("jax", jax.__version__, jax.devices())
    found.append(jax.default_backend() == "gpu")
sys.exit(0 if any(found) else "gpu-check: neither PyTorch nor JAX sees a GPU")
PY

if [ "${GPU_CHECK_CPU:-0}" = 1 ]; then
    tests=(tests/test_lean_predict.py)
    bench=(--device cpu:0 --image-size 67 --batch-size 2 --steps 1 --runners zoo-torch torch-eager
           --policies float32)
    device=cpu:0
else
    tests=(tests/test_builders.py tests/test_training_step.py tests/test_lean_predict.py
           tests/test_deploy.py "tests/test_train.py::test_lenet_on_digits_reaches_095_with_the_default_recipe"
           "tests/test_train.py::test_resume_continues_history_and_epochs")
    bench=()
    device=gpu:0
fi

for backend in torch jax; do
    "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('$backend') is None)" \
        || { echo "=== $backend is not installed: its tests are left out ==="; continue; }
    echo "=== tests, KERAS_BACKEND=$backend ==="
    KERAS_BACKEND=$backend timeout 150 "$PY" -m pytest -q -p no:cacheprovider "${tests[@]}" \
        2>&1 | tee "$OUT/tests-$backend.log" | tail -3
    [ "${PIPESTATUS[0]}" = 0 ] || failed="$failed tests-$backend"
done

echo "=== AlexNet bench on $device ==="
timeout 240 "$PY" benchmarks/gpu_bench.py --device "$device" --json "$OUT/gpu_bench.json" "${bench[@]}" \
    || failed="$failed bench"

if [ -n "$failed" ]; then echo "gpu-check FAILED:$failed"; exit 1; fi
echo "gpu-check passed"

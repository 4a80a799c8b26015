# zoo: set up and test on every Keras backend.
#   make install          create .venv and install the zoo with every extra (idempotent)
#   make test             the whole suite once per backend: jax, tensorflow, then torch in a
#                         venv with only PyTorch installed (and, beside the other backends, the
#                         torch tests that pass skipped), then the docs
#   make test-jax         one backend (also test-tensorflow, test-torch)
#   make test-torch-only  the suite in a second venv holding only zoo[torch] (no TensorFlow, no JAX)
#   make lint             ruff
#   make notebooks        open the tutorials in JupyterLab
#   make train            train LeNet-5 on the embedded digits (BACKEND=jax|tensorflow|torch)
#   make bench            benchmark every backend against native loops (BENCH_ARGS=--quick)
#   make accuracy         the default recipe's test accuracy, backend x seed (ACCURACY_ARGS=...)
#   make gpu-check        on a GPU machine: tests on PyTorch and JAX, AlexNet GPU bench (see the
#                         script); make gpu-wheels downloads what that machine lacks into .whl/
#   make docs             build the documentation site into site/ (runs the notebooks on JAX;
#                         installs onnxruntime-web with npm for the explainer page)
#   make test-docs        build it and check every page in headless Chromium (installs chromium)
#   make weights          retrain the shipped presets (zoo/weights/presets) on JAX, print accuracy;
#                         the MNIST ones only where ../shared/data/mnist-t10k is (else skipped)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BACKENDS := jax tensorflow torch
# The backends `make test` runs in the full venv; torch runs in the torch-only venv instead.
FULL_VENV_BACKENDS := jax tensorflow
BACKEND ?= jax
TRAIN_ARGS ?=
BENCH_ARGS ?=
ACCURACY_ARGS ?=
PYTEST_ARGS ?=
export TF_CPP_MIN_LOG_LEVEL ?= 2
# TensorFlow's oneDNN kernels, which it leaves off on CPUs without AVX-512 VNNI (there the TF
# test pass took 1.6x as long); zoo-train sets the same in its own processes.
export TF_ENABLE_ONEDNN_OPTS ?= 1
# Docs: the browser the site test drives (Debian's package), and where the notebook tests leave
# their executed copies for the docs build to reuse.
CHROMIUM ?= /usr/bin/chromium
EXECUTED_NOTEBOOKS := $(CURDIR)/build/executed-notebooks
# torchvision's AlexNet source, the reference of tests/test_weights.py. Unpacked, never imported
# as a package: the registry's torchvision wheel is a CUDA build that cannot load beside CPU torch.
TORCHVISION_REF := build/torchvision-ref
TORCHVISION_VERSION := 0.28.0
# The explainer page's onnxruntime-web (package.json, package-lock.json), installed by npm; npm
# itself comes from Debian when the machine has none (as chromium does).
NPM ?= $(or $(shell command -v npm 2>/dev/null),/usr/bin/npm)
NODE_STAMP := node_modules/.zoo-installed
# A user's one-backend install: zoo[torch] and the test tools, nothing else.
TORCH_ONLY_VENV := .venv-torch-only
# The node ids of the tests the torch-only pass skipped (tests/conftest.py writes it).
TORCH_ONLY_SKIPPED := build/torch-only-skipped.txt

.PHONY: install test lint train bench accuracy gpu-check gpu-wheels notebooks $(addprefix test-,$(BACKENDS)) clean docs test-docs \
	weights test-torch-only

install: $(STAMP)

# Re-install only when the package metadata or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,dev,notebooks,docs]"
	@test -f $(TORCHVISION_REF)/torchvision/models/alexnet.py || $(BIN)/python -m pip install \
		--quiet --no-deps --target $(TORCHVISION_REF) torchvision==$(TORCHVISION_VERSION)
	@touch $(STAMP)

# Run every backend even if one fails, then the docs site once (it reuses the notebooks the JAX
# run executed), then fail if any did. PyTorch runs once, not twice: the whole suite in the
# torch-only venv (a user's `pip install zoo[torch]`), then in the full venv just the tests that
# pass skipped for want of another package (ONNX converters, TensorFlow, JAX), read from the
# file it wrote; if that file is missing, the whole torch suite runs there.
test: install
	@failed=""; \
	for backend in $(FULL_VENV_BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend ==="; \
		KERAS_BACKEND=$$backend ZOO_EXECUTED_NOTEBOOKS=$(EXECUTED_NOTEBOOKS) \
			$(BIN)/python -m pytest --ignore=tests/docs $(PYTEST_ARGS) || failed="$$failed $$backend"; \
	done; \
	echo "=== KERAS_BACKEND=torch, only PyTorch installed ==="; \
	rm -f $(TORCH_ONLY_SKIPPED); \
	$(MAKE) --no-print-directory test-torch-only ZOO_SKIPPED_TESTS=$(CURDIR)/$(TORCH_ONLY_SKIPPED) \
		|| failed="$$failed torch-only"; \
	echo "=== KERAS_BACKEND=torch, beside the other backends: what torch-only skipped ==="; \
	if [ ! -f $(TORCH_ONLY_SKIPPED) ]; then \
		$(MAKE) --no-print-directory test-torch || failed="$$failed torch"; \
	elif [ -s $(TORCH_ONLY_SKIPPED) ]; then \
		KERAS_BACKEND=torch $(BIN)/python -m pytest $(PYTEST_ARGS) @$(TORCH_ONLY_SKIPPED) \
			|| failed="$$failed torch"; \
	fi; \
	echo "=== docs ==="; \
	ZOO_EXECUTED_NOTEBOOKS=$(EXECUTED_NOTEBOOKS) $(MAKE) --no-print-directory test-docs || failed="$$failed docs"; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; \
	echo "All backends and the docs passed: $(BACKENDS) torch-only docs"

$(addprefix test-,$(BACKENDS)): test-%: install
	KERAS_BACKEND=$* $(BIN)/python -m pytest --ignore=tests/docs $(PYTEST_ARGS)

# As keras-hub checks that TensorFlow is optional: the suite where `pip install zoo[torch]` is all
# there is. Tests that need another backend or an ONNX converter skip and say which package.
test-torch-only: $(TORCH_ONLY_VENV)/.installed
	@$(TORCH_ONLY_VENV)/bin/python -c "import importlib.util as u, sys; \
		extra = [m for m in ('tensorflow', 'jax') if u.find_spec(m)]; \
		sys.exit(f'not a torch-only environment: {extra} installed' if extra else 0)"
	KERAS_BACKEND=torch ZOO_SKIPPED_TESTS=$(ZOO_SKIPPED_TESTS) \
		$(TORCH_ONLY_VENV)/bin/python -m pytest --ignore=tests/docs $(PYTEST_ARGS)

$(TORCH_ONLY_VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(TORCH_ONLY_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_ONLY_VENV)
	$(TORCH_ONLY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TORCH_ONLY_VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[torch,dev]"
	@touch $@

train: install
	KERAS_BACKEND=$(BACKEND) $(BIN)/zoo-train --model lenet5 --dataset digits \
		--output runs/lenet5-digits-$(BACKEND) --overwrite $(TRAIN_ARGS)

# Prints a Markdown table; the JSON lands in runs/ (BENCHMARKS.md holds the latest table).
bench: install
	@mkdir -p runs
	$(BIN)/python benchmarks/bench.py --json runs/bench.json $(BENCH_ARGS)

# Prints a Markdown table and its targets (exit 1 if one is missed); BENCHMARKS.md keeps it.
accuracy: install
	@mkdir -p runs
	$(BIN)/python benchmarks/accuracy.py --json runs/accuracy.json $(ACCURACY_ARGS)

# No install step: the GPU machine brings its own PyTorch and JAX (GPU_PYTHON names its Python).
gpu-check:
	bash benchmarks/gpu_check.sh

# Keras and the two packages it needs that the GPU machine lacks, as wheels for its Python 3.12.
GPU_WHEELS := keras==3.15.1 namex optree
gpu-wheels: install
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)

# The shipped presets: each trained on JAX as its declaration in zoo/weights/presets/FAMILY.py
# says (seed 0: the same bytes each time); fails, naming the new SHA-256 and test accuracy, if
# a file no longer matches its declaration.
weights: install
	KERAS_BACKEND=jax $(BIN)/python -c "from zoo.training.presets import make_presets; make_presets()"

notebooks: install
	KERAS_BACKEND=$(BACKEND) $(BIN)/jupyter lab notebooks

lint: install
	$(BIN)/ruff check zoo tests benchmarks
	$(BIN)/ruff format --check zoo tests benchmarks

# The site: mkdocs-material, the executed notebooks (mkdocs-jupyter), the API from the docstrings
# (mkdocstrings) and MathJax served from site/ itself. See mkdocs.yml and docs/hooks/.
docs: install $(NODE_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build

# onnxruntime-web for the explainer page (docs/hooks/explainer.py copies it into the site);
# again only when the lock file changes. No install scripts: the browser files need none.
$(NODE_STAMP): package.json package-lock.json | $(NPM)
	$(NPM) ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# Debian's npm (and Node.js), installed once when the machine has no npm at all.
/usr/bin/npm:
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
	@test -x $@

# The browser test: every page in headless Chromium, no request leaving 127.0.0.1.
test-docs: docs $(CHROMIUM)
	KERAS_BACKEND=jax ZOO_REQUIRE_DOCS=1 CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest tests/docs

# Debian's chromium, installed once (Playwright drives it; it cannot download its own browser).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	@test -x $(CHROMIUM)

clean:
	rm -rf $(VENV) $(TORCH_ONLY_VENV) build site node_modules *.egg-info .pytest_cache .ruff_cache .hypothesis

# zoo: set up and test on every Keras backend.
#   make install          create .venv and install the zoo with every extra (idempotent)
#   make test             the whole suite once per backend: jax, tensorflow, torch
#   make test-jax         one backend (also test-tensorflow, test-torch)
#   make lint             ruff
#   make notebooks        open the tutorials in JupyterLab
#   make train            train LeNet-5 on the embedded digits (BACKEND=jax|tensorflow|torch)
#   make bench            benchmark every backend against native loops (BENCH_ARGS=--quick)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BACKENDS := jax tensorflow torch
BACKEND ?= jax
TRAIN_ARGS ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test lint train bench notebooks $(addprefix test-,$(BACKENDS)) clean

install: $(STAMP)

# Re-install only when the package metadata or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,dev,notebooks]"
	@touch $(STAMP)

# Run every backend even if one fails, then fail if any did.
test: install
	@failed=""; \
	for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend ==="; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest $(PYTEST_ARGS) || failed="$$failed $$backend"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; \
	echo "All backends passed: $(BACKENDS)"

$(addprefix test-,$(BACKENDS)): test-%: install
	KERAS_BACKEND=$* $(BIN)/python -m pytest $(PYTEST_ARGS)

train: install
	KERAS_BACKEND=$(BACKEND) $(BIN)/zoo-train --model lenet5 --dataset digits \
		--output runs/lenet5-digits-$(BACKEND) $(TRAIN_ARGS)

# Prints a Markdown table; the JSON lands in runs/ (BENCHMARKS.md holds the latest table).
bench: install
	@mkdir -p runs
	$(BIN)/python benchmarks/bench.py --json runs/bench.json $(BENCH_ARGS)

notebooks: install
	KERAS_BACKEND=$(BACKEND) $(BIN)/jupyter lab notebooks

lint: install
	$(BIN)/ruff check zoo tests benchmarks
	$(BIN)/ruff format --check zoo tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis

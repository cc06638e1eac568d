# The two commands of the README. Each sets itself up on a fresh machine with Python >= 3.10.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# memory-gym pins Gymnasium 0.29, which gymnax excludes: Mystery Path is tested in a venv of its own.
MP_VENV ?= .venv-mysterypath
MP_STAMP := $(MP_VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test lint typecheck docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $(STAMP)

$(MP_STAMP): pyproject.toml
	test -x $(MP_VENV)/bin/python || $(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MP_VENV)/bin/python -m pip install --quiet -e '.[mysterypath]' pytest hypothesis
	touch $(MP_STAMP)

## make run: a short PPO run on T-Maze with AReLiT (progress, metrics.csv, learning_curve.png).
run: $(STAMP)
	$(BIN)/relit-eqx train --out runs/tmaze-arelit-$$(date +%Y%m%d-%H%M%S)

## make test: lint, type-check, the test suite, the user project of examples/custom_memory
## (its own package and tests, run from its own directory), and the strict docs build.
test: lint typecheck $(STAMP) $(MP_STAMP)
	$(BIN)/python -m pytest -n 2 -q --durations=15 $(PYTEST_ARGS)
	$(MP_VENV)/bin/python -m pytest -q -p no:cacheprovider -m mysterypath tests/test_mysterypath.py
	cd examples/custom_memory && $(abspath $(BIN))/python -m pytest -n 2 -q -p no:cacheprovider
	$(BIN)/mkdocs build --strict --quiet --site-dir $$(mktemp -d)

lint: $(STAMP)
	$(BIN)/ruff check relit_eqx tests benchmarks examples
	$(BIN)/ruff format --check relit_eqx tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy relit_eqx

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/relit-eqx bench inference --quick --out bench-out

clean:
	rm -rf $(VENV) $(MP_VENV) site .pytest_cache .ruff_cache .mypy_cache

# Two entry points (see README): `make run` and `make test`. Each creates .venv with
# the interpreter in $(PYTHON) (Python >= 3.11), installs the package, then runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast chromium bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bayes-poem run models/sed_clinical_success.toml --out results/sed_clinical_success --force

# What CI runs (.ci/run). Chromium first, before the venv is built: installed with apt-get
# when it can be, else one line saying what to install and make stops (no pytest).
test: chromium $(STAMP)
	$(BIN)/python -m pytest

chromium:
	@./scripts/ensure_chromium.sh

# The unit tier: every test not marked mcmc/slow/browser (tests/conftest.py adds `unit`
# and fails any unit test that samples), on both cores (pytest-xdist); a file's tests
# stay in one worker (--dist loadfile), so a module-scoped fixture is built once.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m unit -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python benchmarks/cli_vs_pymc.py

lint: $(STAMP)
	$(BIN)/ruff check bayes_poem tests benchmarks scripts

clean:
	rm -rf $(VENV) results .pytest_cache

# Entry points for a fresh machine (see README): `make demo`, `make test`, and the
# longer `make claims`.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
PYTEST_ARGS ?=
# the tests and the workflow call snakemake, dvc, ... from the environment
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo claims test test-fast lint clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev,chem,workflow]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --cores $(CORES)

# the paper's claims over 3 seeds (config/claims.yaml; <= 2 h on 2 cores, not part of demo/CI)
claims: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) claims --configfile config/claims.yaml

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

clean-venv:
	rm -rf $(VENV)

# A fresh machine needs only Python 3.11+: every target makes .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench docs figures install clean gpu-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bpcli train specs/lecture_cnn.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the tests marked slow (over about 1 s each: training runs, sweeps, fuzzing) left out
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# PyTorch (the bench extra) is optional: without it the table's torch column stays empty
bench: $(STAMP)
	-$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench.py

# what benchmarks/gpu_check.sh needs on a GPU machine without network: pure-Python wheels only
gpu-deps: $(STAMP)
	rm -rf .gpu_deps
	$(BIN)/python -m pip install --quiet --no-deps --target .gpu_deps pytest pluggy iniconfig \
		packaging hypothesis attrs sortedcontainers threadpoolctl

# docs/spec-reference.md from the field tables; tests/test_docs.py fails while it is stale
docs: $(STAMP)
	$(BIN)/python -m bpcli.spec.reference --write docs/spec-reference.md

# every picture in docs/, re-made by the bpcli commands users type; prints the numbers the docs quote
figures: $(STAMP)
	$(BIN)/python docs/figures.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

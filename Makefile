# Assay — two commands: `make demo` (run the platform with a demo challenge) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= $(or $(ASSAY_PORT),8000)

.PHONY: demo test lint install-server install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install when pyproject.toml changes (the stamp is older than it).
$(VENV)/.server-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.server-installed

install-server: $(VENV)/.server-installed
install-test: $(VENV)/.test-installed

demo: install-server
	ASSAY_PORT=$(PORT) $(BIN)/assay demo --port $(PORT)

lint: install-test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis

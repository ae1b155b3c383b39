# Assay — two commands: `make demo` (run the platform with a demo challenge) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= $(or $(ASSAY_PORT),8000)

.PHONY: demo test lint install-server install-test system-deps clean

# Debian packages the test suite uses for real (bubblewrap: the evaluation sandbox). Installed when
# missing and when we may (root with apt-get); otherwise the tests that need them say why they skip.
system-deps:
	@missing=""; command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing"; \
	    (apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	     (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1)) || \
	    echo "WARNING: could not install$$missing; sandbox tests will be skipped"; \
	  else echo "WARNING: missing$$missing (install them to run the sandbox tests)"; fi; \
	fi

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

test: lint system-deps
	$(BIN)/pytest

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis

# Assay — two commands: `make demo` (run the platform with a demo challenge) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= $(or $(ASSAY_PORT),8000)

.PHONY: demo test stack screenshots lint docker-engine install-server install-test install-evalai system-deps clean bench bench-quick bench-deps

# Debian packages the test suite uses for real (bubblewrap: the evaluation sandbox; chromium and
# chromium-driver: the browser tests, driven by Playwright; Pango, HarfBuzz's subsetter and a font:
# WeasyPrint, which renders the audit report as PDF). Installed when missing and when we may
# (root with apt-get); otherwise the tests that need them say why they skip.
system-deps: docker-engine
	@missing=""; command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	for pkg in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q ' installed' || missing="$$missing $$pkg"; \
	done; \
	$(APT_INSTALL)

# A Docker engine for container submissions (the demo's container challenge, tests/containers),
# busybox-static, whose rootfs the demo and test images are built from (nothing is pulled from the
# internet or a registry: images are built FROM scratch), and docker-registry, the local registry the `evalai push` tests
# push to, and docker-compose, which checks the production stack's file offline (tests/deploy). Best effort:
# without them, container phases wait for a worker that has Docker, and the compose check says why it skips.
docker-engine:
	@missing=""; command -v dockerd >/dev/null 2>&1 || missing="$$missing docker.io"; \
	dpkg-query -W -f='$${Status}' busybox-static 2>/dev/null | grep -q ' installed' || missing="$$missing busybox-static"; \
	command -v docker-registry >/dev/null 2>&1 || missing="$$missing docker-registry"; \
	{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || missing="$$missing docker-compose"; \
	$(APT_INSTALL)
	@if command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "starting dockerd for container submissions (log: /var/log/dockerd.log)"; \
	  (setsid dockerd --storage-driver=overlay2 --iptables=false --ip6tables=false --bridge=none \
	    --data-root=/var/lib/docker >/var/log/dockerd.log 2>&1 &); \
	  for i in $$(seq 30); do docker info >/dev/null 2>&1 && break; sleep 0.5; done; \
	fi

# Installs $$missing (set by the recipe line it ends) with apt-get when we are root; warns otherwise.
APT_INSTALL = if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing"; \
	    (apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	     (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1)) || \
	    echo "WARNING: could not install$$missing; what needs them will be skipped"; \
	  else echo "WARNING: missing$$missing (install them to use the sandbox, browser and container features)"; fi; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install when pyproject.toml changes (the stamp is older than it). The audit extra: the server
# summarises audited submissions (assay.audit) and the demo builds its audit templates (scikit-learn).
$(VENV)/.server-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server,containers,audit]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.server-installed

install-server: $(VENV)/.server-installed
install-test: $(VENV)/.test-installed

# The real evalai CLI (1.3.18), for the compatibility tests, in its own venv: it pins click 6.7 and
# friends, which must not reach .venv. Its lxml==4.6.2 pin does not build on Python 3.11, so it is
# installed without its dependencies, and those are installed at current versions, keeping the
# pins its code relies on (click, beautifultable, validators, termcolor).
EVALAI_VENV := .venv-evalai
$(EVALAI_VENV)/.installed: Makefile | $(BIN)/python
	$(PYTHON) -m venv $(EVALAI_VENV)
	$(EVALAI_VENV)/bin/pip install --quiet --no-deps evalai==1.3.18
	$(EVALAI_VENV)/bin/pip install --quiet click==6.7 beautifultable==0.7.0 validators==0.12.6 termcolor==1.1.0 \
	  decorator beautifulsoup4 lxml python-dateutil requests tqdm boto3 docker
	touch $@

install-evalai: $(EVALAI_VENV)/.installed

# Evaluation scripts run in EvalAI's package stacks, built once per machine (~110 MB of wheels, 40 s or
# more the first time; README "Evaluation environments"): built here, with progress, so that neither
# the first test that evaluates nor the demo's first submission waits for it silently.
ENVIRONMENTS = $(BIN)/assay environments prepare --quiet $(1) || \
	echo "WARNING: evaluation environments could not be built now; the first evaluation will try again"

demo: install-server docker-engine
	@$(call ENVIRONMENTS,evalai-py3.9)
	ASSAY_PORT=$(PORT) $(BIN)/assay demo --port $(PORT)

lint: install-test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports

# The suite runs in one process per core, at most 4 (pytest-xdist; tests/README.md "Running in parallel"),
# a test module per unit of work; TEST_PROCESSES=0 runs it in this process (e.g. for --pdb).
TEST_PROCESSES ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n > 4 ? 4 : n )))

test: lint system-deps install-evalai
	@$(call ENVIRONMENTS)
	ASSAY_EVALAI_CLI=$(CURDIR)/$(EVALAI_VENV)/bin/evalai $(BIN)/pytest -n $(TEST_PROCESSES) --dist loadgroup $(PYTEST_ARGS)

# The production stack (deploy/compose: gunicorn, workers, PostgreSQL, MinIO) on this machine's Docker engine;
# README "Running in production". WORKERS=4 for more workers.
stack:
	deploy/compose/up.sh --workers $(or $(WORKERS),2)

# Full-page PNGs of the main pages at desktop and phone width, as participant, host and admin, for a reviewer:
# a live server on a fresh SQLite test database (tests/browser/screenshots.py), written to var/screenshots/.
screenshots: system-deps install-test
	env -u ASSAY_DATABASE_URL $(BIN)/pytest -q -p no:cacheprovider tests/browser/screenshots.py
	@echo "screenshots: $(CURDIR)/var/screenshots/"

# Benchmarks (bench/, BENCHMARKS.md): every speed promise next to its baseline, printed as a table and
# written as JSON under bench/results/. Never part of `make test` (only a seconds-long smoke run is).
# wrk (load generator) and gunicorn (for the API row, in var/bench-deps, not in .venv) are best-effort.
bench-deps: install-server
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get install -y --no-install-recommends wrk >/dev/null 2>&1; } || \
	  echo "note: wrk not installed; the API row uses a Python load generator"
	@[ -d var/bench-deps/gunicorn ] || $(BIN)/pip install --quiet --target var/bench-deps gunicorn >/dev/null 2>&1 || \
	  echo "note: gunicorn not installed; the API row measures only 'assay serve'"
	@# the benchmark challenge runs in EvalAI's Python 3.9 stack: built here, or its one-time build (~35 s of CPU)
	@# falls inside the first platform row's measured stretch (it did on a fresh machine: 35 ms per submission)
	@$(call ENVIRONMENTS,evalai-py3.9)

bench: bench-deps
	$(BIN)/python bench/run.py

bench-quick: bench-deps
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf $(VENV) $(EVALAI_VENV) var .pytest_cache .ruff_cache .hypothesis

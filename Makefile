# tenantauth developer tasks. `make` (or `make help`) lists them.
# GNU make; recipes use bash. Everything runs from the project virtualenv in .venv.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVICES_ENV := $(VENV)/test-services.env

# Extra arguments: `make run ARGS='--port 9000'`, `make test PYTEST_ARGS='-k rotate -x'`.
ARGS ?=
PYTEST_ARGS ?=

# Lint only the trees that exist (a fresh clone has no empty directories).
LINT_PATHS := $(wildcard src tests bench clients/python/src)
# The Python client: its own distribution (clients/python), installed editable beside the server.
CLIENT := clients/python

.PHONY: help venv run lint services gateways promtool spin validate-deploy test test-faults test-soak bench bench-servers bench-protecting bench-observability bench-leases bench-scale bench-changes bench-algorithms fmt clean

help: ## Show this list of targets
	@echo "Usage: make <target> [ARGS=...] [PYTEST_ARGS=...]"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# The interpreter is order-only, so recreating it never forces a reinstall by itself;
# the stamp is newer than both pyproject.toml files exactly when the last install succeeded.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(CLIENT)/pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]' -e '$(CLIENT)[flask]'
	touch $@

venv: $(STAMP) ## Create .venv; install the server with [dev] and the client (clients/python) with [flask]

run: venv ## Serve the API with gunicorn (tenantauth serve $(ARGS))
	$(BIN)/tenantauth serve $(ARGS)

lint: venv ## ruff check (incl. S: flake8-bandit), format check, mypy, import-linter, pip-audit
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports
	# Known vulnerabilities fail; packages it cannot look up are reported loudly, and fail
	# too with TENANTAUTH_AUDIT=required (docs/security.md, "Limits and hygiene").
	$(BIN)/python scripts/audit-deps.py

services: ## Make sure the test PostgreSQL and Redis are up; writes .venv/test-services.env
	scripts/ensure-test-services.sh

gateways: ## Make sure nginx, Caddy, node and npm are installed (Debian packages) for the tests
	scripts/ensure-gateways.sh

promtool: ## Make sure promtool is installed (Debian's prometheus package; its server is never started)
	scripts/ensure-promtool.sh

spin: ## Make sure spin (Debian's package) and gcc are there for the model check (tests/model)
	scripts/ensure-spin.sh

# Also part of `make test` (tests/deploy is in the main suite); this runs those checks alone.
# Offline but for one test: the metric names the monitoring rules use are checked against a
# live server's /metrics (tests/deploy/test_monitoring.py), hence the test services.
validate-deploy: venv services promtool ## Checks of compose, Dockerfile (hadolint), k8s (kustomize + schemas), monitoring rules
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/pytest tests/deploy -p no:cacheprovider -q $(PYTEST_ARGS)

test: venv ## lint, services, gateways, promtool, spin, the pytest suite ($(PYTEST_ARGS)), then the fault suite
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory services
	@$(MAKE) --no-print-directory gateways
	@$(MAKE) --no-print-directory promtool
	@$(MAKE) --no-print-directory spin
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/pytest $(XDIST) $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-faults PYTEST_ARGS=

# The main suite runs on two pytest-xdist workers (its tests are mostly waiting on PostgreSQL,
# Redis and servers); the fault suite runs alone, since it measures latency. XDIST= disables.
XDIST ?= -n 2

test-faults: venv services ## Fault-injection suite alone (tests/faults; FAULTS_SOAK=1 runs 10x longer)
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/pytest tests/faults -p no:cacheprovider -v -s $(PYTEST_ARGS)

# The soak: the race and restart scenarios (tests/faults/test_race_faults.py, the only ones
# FAULTS_SOAK scales) with 10x the rounds and durations. Not part of `make test`.
test-soak: venv services ## Soak: the race fault scenarios with FAULTS_SOAK=1 (10x rounds, 8-13 min)
	set -a; . $(SERVICES_ENV); set +a; FAULTS_SOAK=1 $(BIN)/pytest tests/faults/test_race_faults.py -p no:cacheprovider -v -s $(PYTEST_ARGS)

# Issue 14: in process, then over HTTP against the naive Python and Node baselines (bench/
# baselines/); writes docs/performance.md and docs/performance-verify.svg. ~5 min; ARGS=--quick < 2.
bench: venv services gateways ## Verify vs its baselines; writes docs/performance.md (bench/run.py $(ARGS))
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/python bench/run.py $(ARGS)

# Issue 14: gunicorn against granian (both dependencies of tenantauth). Prints the table;
# docs/performance-servers.md has one.
bench-servers: venv services gateways ## gunicorn vs granian serving verify (bench/servers.py $(ARGS))
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/python bench/servers.py $(ARGS)

bench-protecting: venv services gateways ## Latency each way of protecting a service adds (bench/protecting.py $(ARGS))
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/python bench/protecting.py $(ARGS)

bench-observability: venv services ## What the request log line and metrics cost per verify, µs (bench/observability.py $(ARGS))
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/python bench/observability.py $(ARGS)

# Issue 14: change latency and Redis load against the number of live lease listeners, on a
# private redis-server of its own (the shared one is not used); rewrites its section of
# docs/performance-leases.md.
bench-leases: venv services ## Change latency, Redis load vs live listeners (bench/lease_scaling.py $(ARGS))
	$(BIN)/python bench/lease_scaling.py --doc docs/performance-leases.md $(ARGS)

# Issue 14: changes (rotate, suspend, revokes) under verify load through the loaded server and
# an admin server, beside probes doing no tenantauth work. Writes docs/performance-changes.md.
bench-changes: venv services gateways ## Change latency under verify load vs the floor (bench/changes.py $(ARGS))
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/python bench/changes.py $(ARGS)

# Issue 14's scale rows: 100 and --tenants (100,000) tenants seeded in process, memory off and
# on; verify with random tokens, an unknown-id flood, changes under load. Writes
# docs/performance-scale.md. ~15 min at 100,000 (seeding is most of it); ARGS='--tenants 2000 --quick'.
bench-scale: venv services gateways ## Many tenants, unknown-id flood, changes under load (bench/scale.py $(ARGS))
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/python bench/scale.py $(ARGS)

# Issue 15: each signing algorithm's verify beside HS256, in process (µs: warm, first sight,
# the signature alone) and over HTTP (tenantauth serve, one token and 10,000 per algorithm).
# Writes docs/performance-algorithms.md. ~4 min; ARGS='--runs 5 --duration 10', ARGS=--quick.
bench-algorithms: venv services gateways ## Verify cost per signing algorithm vs HS256 (bench/algorithms.py $(ARGS))
	set -a; . $(SERVICES_ENV); set +a; $(BIN)/python bench/algorithms.py $(ARGS)

fmt: venv ## Format and auto-fix: ruff format, ruff check --fix
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

clean: ## Remove .venv and caches (keeps the state directory, ~/.local/state/tenantauth)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage build dist
	find . -path ./.git -prune -o -path ./.tenantauth -prune -o \
		\( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +

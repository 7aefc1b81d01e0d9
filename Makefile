# callstream: every set-up step a newcomer needs is behind `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CACHE     := $(ROOT)/.cache
UV_VERSION := 0.13.9
UV        := $(CACHE)/uv/bin/uv
export UV_CACHE_DIR ?= $(CACHE)/uv-cache
export UV_PYTHON_DOWNLOADS := never
PY        := $(ROOT)/.venv/bin/python

.PHONY: help env stack-up stack-down stack-status demo test test-unit schemas lint typecheck

help:
	@echo "make demo        start the local stack and the platform (see README)"
	@echo "make test        create the environment, start the stack, run the whole suite"
	@echo "make stack-up    start Kafka, PostgreSQL and Redis on loopback (idempotent)"
	@echo "make stack-down  stop exactly what stack-up started"
	@echo "make schemas     regenerate schemas/ from the models"

# uv itself comes from PyPI into a private venv, so nothing is installed system-wide.
$(UV):
	@python3 -m venv $(CACHE)/uv
	@$(CACHE)/uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: $(UV) uv.lock pyproject.toml libs/common/pyproject.toml $(wildcard services/*/pyproject.toml) tools/admin/pyproject.toml tools/pbx-sim/pyproject.toml
	@$(UV) sync --all-packages --frozen --python python3.11
	@touch $@

uv.lock: pyproject.toml libs/common/pyproject.toml $(wildcard services/*/pyproject.toml) tools/admin/pyproject.toml tools/pbx-sim/pyproject.toml | $(UV)
	@$(UV) lock --python python3.11

env: .venv/.synced

stack-up:
	@python3 tools/stack/stack.py up

stack-down:
	@python3 tools/stack/stack.py down

stack-status:
	@python3 tools/stack/stack.py status

schemas: env
	@$(PY) -m callstream_common.contract.generate --out schemas

typecheck: env
	@$(PY) -m mypy libs/common/src tools/admin/src services/ari-gateway/src services/router/src services/agent-state/src services/stats/src

# The suite leaves the stack running (a second `make test` starts at once); `make stack-down` stops it.
test: env stack-up
	@$(PY) -m pytest

test-unit: env
	@$(PY) -m pytest -m "not stack"

demo: env stack-up
	@$(PY) tools/demo.py

# --- PBX simulator (tools/pbx-sim) -------------------------------------------------------------------
ARI_DOCS ?= $(abspath $(ROOT)/../shared/ari/api-docs)
.PHONY: sim conformance bench-sim

sim: env
	@$(PY) -m callstream_pbx_sim --host 127.0.0.1 --port 8088 --user asterisk --password asterisk \
		--app callstream --agents 20 --inbound-rate 0.2 --api-docs $(ARI_DOCS)

conformance: env
	@$(PY) -m callstream_pbx_sim.conformance --api-docs $(ARI_DOCS)

bench-sim: env
	@$(PY) bench/bench_sim.py

.PHONY: bench-gateway
bench-gateway: env stack-up
	@$(PY) bench/bench_gateway.py

.PHONY: bench-routing
bench-routing: env stack-up
	@$(PY) bench/bench_routing.py

# issue 6: 150 wallboard SSE clients during the bench-routing load (docs/wallboard.md, "bench-wallboard").
.PHONY: bench-wallboard
bench-wallboard: env stack-up
	@$(PY) bench/bench_wallboard.py

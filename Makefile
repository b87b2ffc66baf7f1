# The two commands: `make run` (the whole product on this machine) and `make test` (everything CI
# checks). Both set up from nothing: virtualenv, pinned packages, generated code, the web bundle.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PGVECTOR := $(VENV)/.pgvector-portable
PG_CONFIG = $(abspath $(VENV))/lib/python3.11/site-packages/pgserver/pginstall/bin/pg_config
PACKAGES := $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
WEB_SOURCES := $(shell find web/src web/api web/public web/index.html web/vite.config.ts web/tsconfig.json -type f -not -name schema.d.ts 2>/dev/null)

.PHONY: run test setup gen web lint clean triton-server

run: setup
	exec $(BIN)/imgtag run

test: setup triton-server
	bash scripts/ensure-system-deps.sh
	bash scripts/test.sh

setup: $(INSTALLED) $(PGVECTOR) gen web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(BIN)/python requirements-dev.txt requirements-nodeps.txt constraints.txt $(PACKAGES)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt -r requirements-nodeps.txt
	touch $@

# pgvector rebuilt without -march=native (see the script for why); again whenever pip reinstalls.
$(PGVECTOR): $(INSTALLED) scripts/build-pgvector.sh $(wildcard third_party/pgvector/src/*)
	bash scripts/build-pgvector.sh $(PG_CONFIG)
	touch $@

gen: $(INSTALLED)
	$(BIN)/imgtag gen --if-stale

web: web/dist/index.html

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error

web/dist/index.html: web/node_modules/.package-lock.json web/package.json $(WEB_SOURCES)
	cd web && npm run build --silent

# A real Triton server (tritonserver 2.51 + python backend, from PyPI nvidia-pytriton) in a venv of
# its own under build/, for the Triton tests and bench/triton.py; nothing when it is up to date.
triton-server:
	bash scripts/setup-triton-server.sh >/dev/null

lint: setup
	bash scripts/lint.sh

clean:
	rm -rf $(VENV) build gateway/api.pb libs/imgtag_protos/src/imgtag web/node_modules web/dist

#!/usr/bin/env bash
# Contract checks on their own (they also run inside `make test`): buf lint / buf build on the
# protos and `envoy --mode validate` on the rendered gateway config.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/pytest -q tests/contracts

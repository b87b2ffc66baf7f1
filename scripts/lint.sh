#!/usr/bin/env bash
# Contract and code checks on their own (they also run inside `make test`): ruff, buf lint, buf build,
# and `envoy --mode validate` on the rendered gateway config.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/pytest -q tests/contracts

#!/usr/bin/env bash
# Body of `make test` (after set-up): the web app's unit tests (Vitest), then the whole pytest
# suite. Contract checks (buf lint, envoy --mode validate, the OpenAPI document) are tests too,
# in tests/contracts/. Extra arguments go to pytest (and skip the web unit tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  (cd web && npm test --silent)
fi
exec .venv/bin/pytest "$@"

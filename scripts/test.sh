#!/usr/bin/env bash
# Body of `make test` (after set-up): the whole pytest suite. Contract checks (buf lint,
# envoy --mode validate) are tests too, in tests/contracts/. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/pytest "$@"

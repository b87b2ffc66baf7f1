#!/usr/bin/env bash
# System packages the tests need that no Python or npm package provides: Debian's Chromium for
# the browser tests (test tools' own browser downloads cannot work offline).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is missing: install Debian's 'chromium' package (sudo apt-get install chromium)." >&2
  exit 1
fi
echo "installing Debian chromium for the browser tests ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null

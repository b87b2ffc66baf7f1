#!/usr/bin/env bash
# A real Triton server for the tests and the CPU benchmark: tritonserver 2.51 with its python
# backend, from PyPI's nvidia-pytriton, in its own venv (build/triton-server/venv, or $1).
#
# Why a venv of its own, from Debian's /usr/bin/python3.11: the python backend's stub process
# links the system libpython3.11, so the models' packages must be built for that interpreter;
# and PyTriton's server wants numpy < 2 while the project runs numpy 2. Idempotent: does nothing
# when the venv matches requirements-triton-server.txt.
#
# Prints the server's directory; bin/tritonserver, backends/ and the libraries are under it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-build/triton-server}
VENV=$ROOT/venv
REQUIREMENTS=requirements-triton-server.txt
STAMP=$VENV/.installed-$(sha256sum "$REQUIREMENTS" | cut -c1-12)
SYSTEM_PYTHON=/usr/bin/python3.11

if [ ! -f "$STAMP" ]; then
  if [ ! -x "$SYSTEM_PYTHON" ] || [ ! -e /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "Triton's python backend needs Debian's python3.11 and libpython3.11 (sudo apt-get install python3.11-venv libpython3.11)" >&2
      exit 1
    fi
    echo "installing Debian python3.11 and libpython3.11 for Triton's python backend ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3.11-venv libpython3.11 >/dev/null
  fi
  rm -rf "$VENV"
  mkdir -p "$ROOT"
  "$SYSTEM_PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$REQUIREMENTS" >&2
  SERVER=$("$VENV/bin/python" -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("pytriton").origin).parent / "tritonserver")')
  # The stub for this Python goes where the python backend looks for it (PyTriton does this itself
  # when it starts the server through its own API, which the tests do not use).
  cp "$SERVER/python_backend_stubs/3.11/triton_python_backend_stub" "$SERVER/backends/python/"
  touch "$STAMP"
fi
"$VENV/bin/python" -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("pytriton").origin).parent / "tritonserver")'

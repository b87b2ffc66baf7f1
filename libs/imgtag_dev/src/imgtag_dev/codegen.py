"""Generate Python stubs and the Envoy descriptor set from protos/ (one build step)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from imgtag_dev.paths import (
    DESCRIPTOR_SET,
    GENERATED_PY_DIR,
    PROTO_DEPS_DIR,
    PROTOS_DIR,
    site_packages,
)


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTOS_DIR)) for p in PROTOS_DIR.rglob("*.proto"))


def _include_dirs(protos_dir: Path = PROTOS_DIR) -> list[str]:
    sp = site_packages()
    return [str(protos_dir), str(sp), str(sp / "grpc_tools" / "_proto")]


def _run_protoc(args: list[str], *, protos_dir: Path = PROTOS_DIR) -> None:
    # protoc runs in a process of its own, never in the caller's: grpc_tools' extension carries a
    # libprotobuf of its own, and loading onnxruntime-extensions (which carries another) into a
    # process that holds it aborted at random in dlopen (a corrupted mutex in glibc's asserts).
    run = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", *(f"-I{d}" for d in _include_dirs(protos_dir)), *args], check=False
    )
    if run.returncode != 0:
        raise SystemExit(f"protoc failed with exit code {run.returncode}")


def copy_third_party_protos() -> Path:
    """google/api and google/rpc protos from googleapis-common-protos, for `buf lint` offline."""
    target = PROTO_DEPS_DIR / "google"
    shutil.rmtree(target, ignore_errors=True)
    for sub in ("api", "rpc"):
        shutil.copytree(
            site_packages() / "google" / sub,
            target / sub,
            ignore=shutil.ignore_patterns("*.py", "*.pyi", "__pycache__", "context"),
        )
    return PROTO_DEPS_DIR


def generate() -> None:
    """Write `imgtag/**/_pb2*.py` into libs/imgtag_protos/src and gateway/api.pb."""
    files = proto_files()
    if not files:
        raise SystemExit(f"no .proto files under {PROTOS_DIR}")
    out = GENERATED_PY_DIR / "imgtag"
    shutil.rmtree(out, ignore_errors=True)
    GENERATED_PY_DIR.mkdir(parents=True, exist_ok=True)
    _run_protoc(
        [
            f"--python_out={GENERATED_PY_DIR}",
            f"--pyi_out={GENERATED_PY_DIR}",
            f"--grpc_python_out={GENERATED_PY_DIR}",
            *files,
        ]
    )
    DESCRIPTOR_SET.parent.mkdir(parents=True, exist_ok=True)
    _run_protoc(
        [
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={DESCRIPTOR_SET}",
            *files,
            # Envoy renders error details to JSON only for types in the descriptor set.
            "google/rpc/error_details.proto",
        ]
    )
    copy_third_party_protos()


def generated_is_current() -> bool:
    """True when every output is newer than every proto (lets `make` skip regeneration)."""
    outputs = [DESCRIPTOR_SET, *(GENERATED_PY_DIR / "imgtag").rglob("*_pb2.py")]
    if not DESCRIPTOR_SET.exists() or len(outputs) < 2:
        return False
    newest_input = max(Path(PROTOS_DIR / f).stat().st_mtime for f in proto_files())
    return min(o.stat().st_mtime for o in outputs) > newest_input

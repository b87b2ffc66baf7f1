"""A real Triton server on this machine, for the tests and the CPU benchmark: tritonserver 2.51
with its python backend from PyPI's nvidia-pytriton, in a venv of its own
(scripts/setup-triton-server.sh builds it once), serving a repository that
deploy/triton/fill_repository.py filled with the CPU variant."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from imgtag_dev.paths import REPO_ROOT
from imgtag_dev.processes import ManagedProcess, free_port, spawn, tail

SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-triton-server.sh"
FILL_SCRIPT = REPO_ROOT / "deploy" / "triton" / "fill_repository.py"


def server_directory() -> Path:
    """The `tritonserver` directory of the server's venv, built first if needed (minutes, once)."""
    out = subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, capture_output=True, text=True, timeout=1200)
    return Path(out.stdout.strip().splitlines()[-1])


def fill_module():
    """deploy/triton/fill_repository.py as a module."""
    spec = importlib.util.spec_from_file_location("fill_repository", FILL_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fill_repository", module)
    spec.loader.exec_module(module)
    return module


@dataclass
class TritonServer:
    repository: Path
    log_path: Path
    grpc_port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, *, timeout_s: float = 120.0) -> None:
        """Start and wait until the server and every model in the repository are ready."""
        directory = server_directory()
        site = directory.parent.parent  # <venv>/lib/python3.11/site-packages
        venv = site.parent.parent.parent
        env = {
            # The python backend's stub embeds the system Python 3.11 and finds its prefix through
            # `python3` on PATH: the venv's, so the models import the venv's numpy and onnxruntime
            # (PYTHONPATH does not reach the stub).
            "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/root"),
            "LD_LIBRARY_PATH": str(site / "nvidia_pytriton.libs"),
        }
        self.process = spawn(
            "tritonserver",
            [
                str(directory / "bin" / "tritonserver"),
                f"--model-repository={self.repository}",
                f"--backend-directory={directory / 'backends'}",
                f"--grpc-port={self.grpc_port}",
                "--grpc-address=127.0.0.1",
                "--allow-http=false",
                "--allow-metrics=false",
                "--allow-gpu-metrics=false",
                "--log-verbose=0",
                "--exit-timeout-secs=3",
                # the configs are complete: no python stub per model just to complete them
                "--disable-auto-complete-config",
            ],
            log_path=self.log_path,
            env=env,
        )
        self.wait_ready(timeout_s=timeout_s)

    def wait_ready(self, *, timeout_s: float) -> None:
        import tritonclient.grpc as client

        deadline = time.monotonic() + timeout_s
        with client.InferenceServerClient(self.url) as triton:
            while time.monotonic() < deadline:
                assert self.process is not None
                self.process.raise_if_exited()
                try:
                    if triton.is_server_ready(client_timeout=1):
                        return
                except Exception:  # not listening yet
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"Triton not ready after {timeout_s}s; last log lines:\n{tail(self.log_path)}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout_s=20)
            self.process = None

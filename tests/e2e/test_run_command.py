"""`imgtag run` (what `make run` execs) as a user runs it: it prints the URL, no warnings and, on
the first start only, the generated admin password; it serves the product, keeps data across
restarts (and a copy of the data directory is a backup), explains a taken port, and Ctrl-C leaves
no process behind."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imgtag_dev.components import SeaweedPorts
from imgtag_dev.processes import descendants, free_port, port_is_free
from imgtag_dev.testing import login, new_data_dir

pytestmark = pytest.mark.e2e

IMGTAG = str(Path(sys.executable).parent / "imgtag")
PORT_SETTINGS = (
    "GATEWAY_PORT",
    "GATEWAY_ADMIN_PORT",
    "POSTGRES_PORT",
    "S3_PORT",
    "AUTH_PORT",
    "CATALOG_PORT",
    "STORAGE_PORT",
    "INFERENCE_PORT",
)


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


class RunCommand:
    def __init__(self, data_dir: Path) -> None:
        # No XDG_RUNTIME_DIR, as in root shells: platformdirs warned about that on every start.
        self.env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        self.env["IMGTAG_DATA_DIR"] = str(data_dir)
        self.env |= {f"IMGTAG_{name}": str(free_port()) for name in PORT_SETTINGS}
        self.env["IMGTAG_SEAWEED_PORTS"] = SeaweedPorts.free().model_dump_json()
        self.url = f"http://127.0.0.1:{self.env['IMGTAG_GATEWAY_PORT']}"

    def start(self) -> subprocess.Popen[str]:
        # A new session, like a terminal: Ctrl-C is SIGINT to the whole foreground group.
        return subprocess.Popen(
            [IMGTAG, "run"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    @staticmethod
    def wait_for_url(process: subprocess.Popen[str], timeout_s: float = 180) -> tuple[str, str]:
        """Read output until the machine-readable URL line is complete: (URL, output so far)."""
        assert process.stdout is not None
        fd, seen = process.stdout.fileno(), b""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            chunk = os.read(fd, 65536) if ready else b""
            seen += chunk
            output = seen.decode(errors="replace")
            for line in output.splitlines(keepends=True):
                if line.startswith("IMGTAG_URL=") and line.endswith("\n"):
                    return line.strip().split("=", 1)[1], output
            if ready and not chunk:
                break  # end of output: the command exited
        raise AssertionError("imgtag run printed no URL:\n" + seen.decode(errors="replace"))

    @staticmethod
    def ctrl_c(process: subprocess.Popen[str]) -> str:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=90)
        return output or ""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = new_data_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _admin_password(output: str) -> str | None:
    found = re.search(r"password:\s+(\S+)", output)
    return found.group(1) if found else None


def test_ctrl_c_stops_everything_and_a_copy_of_the_data_dir_restores_the_library(data_dir: Path, photo: Path) -> None:
    run = RunCommand(data_dir)
    process = run.start()
    try:
        url, output = run.wait_for_url(process)
        assert url == run.url
        assert "warning" not in output.lower(), output
        assert f"data: {data_dir}" in " ".join(output.split())
        # First start: a generated admin password, shown once on the console, nowhere on disk.
        password = _admin_password(output)
        assert password and len(password) >= 16, output
        assert not [p for p in data_dir.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]
        admin = login(run.url, "admin", password)
        children = set(descendants(process.pid))
        assert len(children) >= 7  # postgres (+ workers), seaweedfs, 4 services, envoy
        uploaded = httpx.post(
            f"{run.url}/v1/assets:upload",
            params={"filename": "cat.png"},
            content=photo.read_bytes(),
            headers={"content-type": "image/png", **admin.headers},
            timeout=60,
        )
        assert uploaded.status_code == 200, uploaded.text
        output = run.ctrl_c(process)
        assert process.returncode == 0, output
        assert "stopped." in output
        time.sleep(0.5)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if process.poll() is None:  # a failed assertion: still stop it the polite way
            run.ctrl_c(process)

    # The README's backup: copy the stopped stack's data directory; a stack on the copy has it all.
    backup = data_dir.with_name(data_dir.name + "-backup")
    subprocess.run(["cp", "-a", str(data_dir), str(backup)], check=True)
    run.env["IMGTAG_DATA_DIR"] = str(backup)
    again = run.start()
    try:
        _, output = run.wait_for_url(again)
        assert _admin_password(output) is None  # shown once only
        admin = login(run.url, "admin", password)
        listed = httpx.get(f"{run.url}/v1/assets", timeout=30, headers=admin.headers).json()
        assert uploaded.json()["name"] in [a["name"] for a in listed["assets"]]
        content = httpx.get(f"{run.url}/v1/{uploaded.json()['name']}/content", timeout=30, headers=admin.headers)
        assert content.content == photo.read_bytes()
    finally:
        if again.poll() is None:
            run.ctrl_c(again)
        shutil.rmtree(backup, ignore_errors=True)


def test_a_taken_port_gives_a_clear_message(data_dir: Path) -> None:
    run = RunCommand(data_dir)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(run.env["IMGTAG_GATEWAY_PORT"])))
        blocker.listen()
        result = subprocess.run([IMGTAG, "run"], env=run.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    message = " ".join((result.stdout + result.stderr).split())
    assert f"{run.env['IMGTAG_GATEWAY_PORT']} (gateway (IMGTAG_GATEWAY_PORT))" in message
    # It refused before starting anything: nothing holds the other ports.
    for name in ("POSTGRES_PORT", "S3_PORT", "CATALOG_PORT"):
        assert port_is_free(int(run.env[f"IMGTAG_{name}"]))

"""Child processes of the local stack: started in their own process group (so the supervisor
decides the shutdown order), tied to the supervisor's life (PR_SET_PDEATHSIG), logs to files."""

from __future__ import annotations

import ctypes
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child after fork (and after any user switch): if the supervisor is killed
    # without a chance to clean up, the kernel sends SIGTERM to this child.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class PortInUse(RuntimeError):
    """A port the stack needs is taken; the message names the setting to change."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def require_free_ports(ports: dict[str, int]) -> None:
    """Fail with one message listing every taken port and the environment variable to change."""
    taken = [f"{port} ({what})" for what, port in ports.items() if not port_is_free(port)]
    if taken:
        raise PortInUse(
            "these ports are already in use: "
            + ", ".join(taken)
            + ". Stop whatever holds them (another `make run`?) or choose other ports "
            "with the IMGTAG_*_PORT settings (see README, Configuration)."
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, *, timeout_s: float, process: ManagedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None:
            process.raise_if_exited()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout_s}s")


@dataclass
class ManagedProcess:
    """One child process and how to stop it politely."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.popen.pid

    def raise_if_exited(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.name} exited with code {code} during start-up; last log lines:\n" + tail(self.log_path)
            )

    def stop(self, timeout_s: float = 15.0) -> None:
        """Signal the process group, wait, then SIGKILL whatever is left."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        try:  # the group may hold helpers the leader started (e.g. postgres workers)
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def spawn(
    name: str,
    argv: list[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
    stop_signal: int = signal.SIGTERM,
) -> ManagedProcess:
    """Start `argv` in a new process group, as `user` if given, output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            user=user,
            group=pwd.getpwnam(user).pw_gid if user else None,
            extra_groups=[] if user else None,
            process_group=0,
            preexec_fn=_die_with_parent,
        )
    finally:
        log.close()
    return ManagedProcess(name=name, popen=popen, log_path=log_path, stop_signal=stop_signal)


def descendants(root: int) -> list[int]:
    """Every live process below `root`, found through /proc (children run in their own groups)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_until(
    check: Callable[[], bool], *, timeout_s: float, what: str, process: ManagedProcess | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None:
            process.raise_if_exited()
        try:
            if check():
                return
        except Exception as error:
            last_error = error
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout_s}s (last error: {last_error})")

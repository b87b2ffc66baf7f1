"""Child processes of the local stack: started in their own process group (so the supervisor
decides the shutdown order), tied to the supervisor's life (PR_SET_PDEATHSIG), logs to files.

Children start through util-linux's `setpriv`, which switches the user and sets the parent-death
signal and then execs the program, so Python never runs code between fork and exec (no
`preexec_fn`, `user` or `group`) and subprocess uses vfork. That matters: with a fork, grpcio
1.80-1.83 (grpc/grpc#43055) restarts its poller in the child, which can abort on a closed epoll
descriptor before the exec ("epoll_wait error: Bad file descriptor", exit -6) whenever the
supervisor has gRPC channels open, as the tests and `imgtag run`'s health checks do."""

from __future__ import annotations

import fcntl
import os
import pwd
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


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


# Ports handed out by free_port(), each with its open lock file: held until this process exits.
_reserved_ports: dict[int, int] = {}
_PORT_LOCKS_DIR = Path(tempfile.gettempdir()) / f"imgtag-port-locks-{os.getuid()}"
_LOWEST_PICKED_PORT = 20000  # below this live the well-known defaults (8080, 9333, 50051, ...)


def _kernel_ephemeral_ports() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def free_port() -> int:
    """A port that is free now and that no other free_port() call on this machine gets while
    this process lives (tests, parallel stacks).

    Binding port 0 and closing is not enough: the port comes from the kernel's ephemeral range,
    which the kernel keeps handing out (to another bind(0), to the source port of any outgoing
    connection), so another process could take it before our server binds it. Ports here come
    from outside that range, and a lock file per port keeps other test processes off them.
    """
    avoid = _kernel_ephemeral_ports()
    if (65536 - _LOWEST_PICKED_PORT) - len(avoid) < 4096:
        avoid = range(0)  # the kernel's range leaves too few ports outside it (e.g. 1024-65535)
    _PORT_LOCKS_DIR.mkdir(mode=0o700, exist_ok=True)
    for _ in range(100_000):
        port = random.randrange(_LOWEST_PICKED_PORT, 65536)
        if port in avoid or port in _reserved_ports or not port_is_free(port):
            continue
        lock = os.open(_PORT_LOCKS_DIR / str(port), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)  # another process on this machine holds it
            continue
        _reserved_ports[port] = lock
        return port
    raise RuntimeError(f"no free port found between {_LOWEST_PICKED_PORT} and 65535 outside {avoid}")


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


def _switch_to(user: str | None) -> list[str]:
    """setpriv's options that make the program `user` with only that user's own group (none of
    the caller's groups); none for the caller itself."""
    if user is None:
        return []
    return [f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}", "--clear-groups"]


def as_user(user: str | None) -> list[str]:
    """A command prefix that runs the rest as `user` (see `_switch_to`), or as the caller when
    `user` is None."""
    return ["setpriv", *_switch_to(user), "--"] if user is not None else []


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
    """Start `argv` in a new process group, as `user` if given, output appended to `log_path`.
    If the supervisor is killed without a chance to clean up, the kernel sends the child SIGTERM;
    it ties this to the spawning *thread*: spawn from a thread that lives as long as the child."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    try:
        # setpriv sets the parent-death signal after switching the user (a switch would clear it).
        popen = subprocess.Popen(
            ["setpriv", *_switch_to(user), "--pdeathsig", "TERM", "--", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            process_group=0,
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

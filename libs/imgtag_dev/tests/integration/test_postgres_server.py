"""The embedded PostgreSQL on the real binaries: it asks every client for the password, clusters
from before passwords were required switch to them and keep their data, and it starts when
its unprivileged user cannot reach the checkout's binaries (a checkout in a 0700 home)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgtag_dev.components import DATABASE_SUPERUSER, POSTGRES_OS_USER, PostgresBinaries, PostgresServer
from imgtag_dev.processes import as_user, free_port
from imgtag_dev.stack import Stack
from imgtag_dev.testing import new_data_dir

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = new_data_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def psql(binaries: PostgresBinaries, port: int, sql: str, password: str | None) -> subprocess.CompletedProcess[str]:
    """psql as a client from outside: no password but the one given (none from ~/.pgpass)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"PGPASSFILE": os.devnull}
    if password is not None:
        env["PGPASSWORD"] = password
    argv = [str(binaries.bin_dir / "psql"), "-w", "-h", "127.0.0.1", "-p", str(port), "-U", DATABASE_SUPERUSER]
    return subprocess.run([*argv, "-d", "postgres", "-tAc", sql], env=env, capture_output=True, text=True)


def test_postgres_refuses_clients_without_the_right_password(stack: Stack) -> None:
    server = stack.postgres
    assert server is not None

    without = psql(server.binaries, server.port, "SELECT 1", password=None)
    assert without.returncode != 0 and "no password supplied" in without.stderr
    wrong = psql(server.binaries, server.port, "SELECT 1", password="not-" + server.password)
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    right = psql(server.binaries, server.port, "SELECT 1", password=server.password)
    assert right.stdout.strip() == "1", right.stderr

    assert server.query("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'imgtag'") == "t"
    kept = server.password_file.stat()
    assert (kept.st_mode & 0o777, kept.st_uid) == (0o600, os.geteuid())


def test_a_cluster_made_with_trust_auth_requires_the_password_after_an_upgrade_and_keeps_its_data(
    data_dir: Path,
) -> None:
    server = PostgresServer(data_dir, free_port())
    user = server.os_user
    binaries = server.binaries
    if user and not binaries.usable_by(user):  # a checkout in a private home directory
        binaries = binaries.copied_to(server.runtime_dir)
    # The cluster as the previous version made it: every local connection trusted.
    server.cluster_dir.mkdir(mode=0o700)
    if user:
        shutil.chown(server.cluster_dir, user, user)
    run_old = {"cwd": server.cluster_dir, "check": True, "capture_output": True}
    initdb = [*as_user(user), str(binaries.bin_dir / "initdb"), "-D", str(server.cluster_dir), "-U", DATABASE_SUPERUSER]
    subprocess.run([*initdb, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"], **run_old)
    pg_ctl = [*as_user(user), str(binaries.bin_dir / "pg_ctl"), "-D", str(server.cluster_dir), "-w"]
    options = f"-h 127.0.0.1 -p {server.port} -k ''"
    subprocess.run([*pg_ctl, "-l", str(server.cluster_dir / "old.log"), "-o", options, "start"], **run_old)
    try:
        made = psql(binaries, server.port, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('old')", None)
        assert made.returncode == 0, made.stderr
    finally:
        subprocess.run([*pg_ctl, "stop"], **run_old)

    try:
        server.start(data_dir / "postgres.log")
        assert server.query("SELECT note FROM kept") == "old"
        refused = psql(server.binaries, server.port, "SELECT 1", password=None)
        assert refused.returncode != 0 and "no password supplied" in refused.stderr
        rules = (server.cluster_dir / "pg_hba.conf").read_text().splitlines()
        methods = {line.split()[-1] for line in rules if line.strip() and not line.lstrip().startswith("#")}
        assert methods == {"scram-sha-256"}
    finally:
        if server.process:
            server.process.stop()


def _wheel_copy(into: Path) -> PostgresBinaries:
    wheel = PostgresBinaries.from_wheel()
    for part in PostgresBinaries.PARTS:
        shutil.copytree(wheel.root / part, into / part, symlinks=True)
    return PostgresBinaries(into, wheel.version)


def test_postgres_starts_when_its_binaries_are_in_a_private_directory(data_dir: Path) -> None:
    # Like a checkout cloned into root's home: the binaries sit behind a 0700 directory.
    private = Path(tempfile.mkdtemp(prefix="imgtag-private-home-"))
    try:
        assert private.stat().st_mode & 0o777 == 0o700
        server = PostgresServer(data_dir, free_port(), _wheel_copy(private / "site-packages"))
        if os.geteuid() == 0:
            assert not server.binaries.usable_by(POSTGRES_OS_USER)  # what the fix is for
            runs_from = server.runtime_dir  # a world-readable copy outside the checkout
        else:
            runs_from = private  # PostgreSQL runs as the invoking user, who can reach its own files
        for _ in ("first start", "restart reuses the copy and the password"):
            try:
                server.start(data_dir / "postgres.log")
                assert Path(os.readlink(f"/proc/{server.process.pid}/exe")).is_relative_to(runs_from)
                assert server.query("CREATE EXTENSION IF NOT EXISTS vector", "imgtag_catalog") == "CREATE EXTENSION"
                assert server.query("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector", "imgtag_catalog") == "2"
            finally:
                if server.process:
                    server.process.stop()
        if os.geteuid() == 0:
            (copy,) = server.runtime_dir.iterdir()  # one copy, no staging left behind
            postgres = (copy / "pgserver" / "pginstall" / "bin" / "postgres").stat()
            assert postgres.st_uid == 0 and postgres.st_mode & 0o555 == 0o555
        else:
            assert not server.runtime_dir.exists()
    finally:
        shutil.rmtree(private)


def test_a_lost_password_file_is_named_at_start_instead_of_a_bare_authentication_failure(data_dir: Path) -> None:
    server = PostgresServer(data_dir, free_port())
    try:
        server.start(data_dir / "postgres.log")
    finally:
        if server.process:
            server.process.stop()
    server.password_file.unlink()
    again = PostgresServer(data_dir, server.port)
    with pytest.raises(FileNotFoundError, match=r"postgres-password is missing.*backup"):
        again.start(data_dir / "postgres.log")
    assert again.process is None  # refused before starting anything

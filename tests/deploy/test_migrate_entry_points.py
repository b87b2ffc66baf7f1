"""The migration Job and the services' init containers: `python -m imgtag_<svc>.migrate` applies a
service's migrations and exits; with `--wait` it only waits until they are applied, failing when
they are not within the time given. Against the real PostgreSQL (pgvector) the stack uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgtag_dev.components import PostgresServer
from imgtag_dev.processes import free_port
from imgtag_dev.testing import new_data_dir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    data_dir = new_data_dir()
    server = PostgresServer(data_dir, free_port())
    server.start(data_dir / "postgres.log")
    try:
        yield server
    finally:
        if server.process is not None:
            server.process.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def migrate(service: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, f"IMGTAG_{service.upper()}_DATABASE_URL": url, f"IMGTAG_{service.upper()}_LOG_JSON": "false"}
    return subprocess.run(
        [sys.executable, "-m", f"imgtag_{service}.migrate", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_wait_fails_until_the_job_has_migrated_then_succeeds(postgres: PostgresServer) -> None:
    url = postgres.url("imgtag_catalog")
    waited = migrate("catalog", url, "--wait", "1")
    assert waited.returncode == 1, waited.stderr
    assert "schema not current" in waited.stderr

    applied = migrate("catalog", url)
    assert applied.returncode == 0, applied.stderr
    assert "migrations applied" in applied.stderr
    assert postgres.query("SELECT count(*) > 0 FROM alembic_version_catalog", "imgtag_catalog") == "t"

    again = migrate("catalog", url, "--wait", "30")
    assert again.returncode == 0, again.stderr
    assert "schema is current" in again.stderr


@pytest.mark.parametrize("service", ["auth", "storage", "inference"])
def test_every_database_service_has_a_migrate_entry_point(postgres: PostgresServer, service: str) -> None:
    url = postgres.url(f"imgtag_{service}")
    assert migrate(service, url).returncode == 0
    assert migrate(service, url, "--wait", "5").returncode == 0


def test_wait_keeps_trying_while_the_database_is_unreachable() -> None:
    url = f"postgresql+asyncpg://imgtag:x@127.0.0.1:{free_port()}/imgtag_catalog"
    waited = migrate("catalog", url, "--wait", "3")
    assert waited.returncode == 1
    assert "unreachable" in waited.stderr


def test_migrate_modules_exist_for_exactly_the_services_that_own_a_database() -> None:
    root = Path(__file__).resolve().parents[2] / "services"
    with_migrations = {p.parent.name for p in root.glob("*/src/*/migrations")}
    with_entry_point = {p.parent.name for p in root.glob("*/src/*/migrate.py")}
    assert (
        with_entry_point == with_migrations == {"imgtag_auth", "imgtag_catalog", "imgtag_inference", "imgtag_storage"}
    )

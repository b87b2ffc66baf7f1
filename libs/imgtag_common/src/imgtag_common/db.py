"""Async SQLAlchemy engine/session factory and alembic migrations for services that own a DB."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from imgtag_common.logging import configure_logging
from imgtag_common.settings import DatabaseSettings

log = logging.getLogger("imgtag.migrate")


def create_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """An asyncpg engine; `pool_pre_ping` so a restarted PostgreSQL does not break the service."""
    return create_async_engine(url, pool_size=pool_size, pool_pre_ping=True)


async def open_database(settings: DatabaseSettings, migrations_dir: Path) -> AsyncEngine:
    """The service's engine, after applying its migrations when `migrate_on_start` is set."""
    if settings.migrate_on_start:
        await upgrade_to_head(migrations_dir, settings.database_url)
    return create_engine(settings.database_url, pool_size=settings.database_pool_size)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    """Alembic config without an ini file: the service package carries its migrations."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


async def upgrade_to_head(migrations_dir: Path, database_url: str) -> None:
    """Apply pending migrations. Alembic's async env runs its own event loop, so use a thread."""
    config = alembic_config(migrations_dir, database_url)
    await asyncio.to_thread(command.upgrade, config, "head")


def _pending_revisions(migrations_dir: Path, database_url: str) -> set[str]:
    """Heads of the migration scripts that the database has not reached (blocking; runs the
    service's env.py like `alembic current`, so its own version table is read)."""
    config = alembic_config(migrations_dir, database_url)
    script = ScriptDirectory.from_config(config)
    current: set[str] = set()

    def read_current(rev: tuple[str, ...], _context: object) -> list:
        current.update(r for r in rev if r)
        return []  # nothing to migrate: only read

    with EnvironmentContext(config, script, fn=read_current, dont_mutate=True):
        script.run_env()
    return set(script.get_heads()) - current


async def pending_revisions(migrations_dir: Path, database_url: str) -> set[str]:
    """Migration heads not applied yet (empty when the schema is current)."""
    return await asyncio.to_thread(_pending_revisions, migrations_dir, database_url)


def run_migrations(
    service: str, settings: DatabaseSettings, migrations_dir: Path, argv: list[str] | None = None
) -> None:
    """Body of `python -m imgtag_<svc>.migrate`: apply the service's migrations and exit, or with
    `--wait SECONDS` only wait until another process (the deployment's migration Job) has applied
    them. Services then start with `IMGTAG_<SVC>_MIGRATE_ON_START=false`."""
    parser = argparse.ArgumentParser(prog=f"python -m imgtag_{service}.migrate", description=run_migrations.__doc__)
    parser.add_argument("--wait", type=float, metavar="SECONDS", help="wait for the schema instead of migrating")
    args = parser.parse_args(argv)
    configure_logging(f"{service}-migrate", level=settings.log_level, json=settings.log_json)

    async def main() -> int:
        if args.wait is None:
            await upgrade_to_head(migrations_dir, settings.database_url)
            log.info("migrations applied", extra={"service": service})
            return 0
        deadline = time.monotonic() + args.wait
        while True:
            try:
                pending = await pending_revisions(migrations_dir, settings.database_url)
            except Exception as error:  # database not up yet: keep waiting
                pending = {f"unreachable: {type(error).__name__}"}
            if not pending:
                log.info("schema is current", extra={"service": service})
                return 0
            if time.monotonic() >= deadline:
                log.error("schema not current: %s", ", ".join(sorted(pending)), extra={"service": service})
                return 1
            await asyncio.sleep(2)

    sys.exit(asyncio.run(main()))

"""Async SQLAlchemy engine/session factory and alembic migrations for services that own a DB."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from imgtag_common.settings import DatabaseSettings


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

"""One schema truth: each service's migrations, applied to the real PostgreSQL of the session stack,
produce exactly the tables its `db/tables.py` declares (alembic's autogenerate comparison finds
no difference)."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from imgtag_auth.db.tables import metadata as auth_tables
from imgtag_catalog.db.tables import metadata as catalog_tables
from imgtag_common.jobs import PGQUEUER_TABLES
from imgtag_storage.db.tables import metadata as storage_tables

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("service", "metadata"),
    [("auth", auth_tables), ("catalog", catalog_tables), ("storage", storage_tables)],
)
def test_migrations_match_the_declared_tables(stack, service: str, metadata) -> None:
    async def differences() -> list:
        async_engine = create_async_engine(stack.database_url(f"imgtag_{service}"))
        try:
            async with async_engine.connect() as connection:

                def compare(sync_connection):
                    context = MigrationContext.configure(
                        sync_connection, opts={"version_table": f"alembic_version_{service}", "compare_type": True}
                    )
                    return compare_metadata(context, metadata)

                return await connection.run_sync(compare)
        finally:
            await async_engine.dispose()

    diff = [d for d in asyncio.run(differences()) if not _is_alembic_bookkeeping(d) and not _is_pgqueuers(d)]
    assert diff == [], f"{service}: migrations and db/tables.py disagree: {diff}"


def _is_alembic_bookkeeping(difference) -> bool:
    return difference[0] == "remove_table" and difference[1].name.startswith("alembic_version")


def _is_pgqueuers(difference) -> bool:
    """The job queue's tables come from pgqueuer's own DDL (installed by a migration, see
    imgtag_common.jobs), not from db/tables.py."""
    if difference[0] == "remove_table":
        return difference[1].name in PGQUEUER_TABLES
    return difference[0] == "remove_index" and difference[1].table.name in PGQUEUER_TABLES

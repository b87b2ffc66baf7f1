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
from imgtag_inference.db.tables import metadata as inference_tables
from imgtag_storage.db.tables import metadata as storage_tables

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("service", "metadata"),
    [("auth", auth_tables), ("catalog", catalog_tables), ("storage", storage_tables), ("inference", inference_tables)],
)
def test_migrations_match_the_declared_tables(stack, service: str, metadata) -> None:
    async def differences() -> list:
        async_engine = create_async_engine(stack.database_url(f"imgtag_{service}"))
        try:
            async with async_engine.connect() as connection:

                def compare(sync_connection):
                    context = MigrationContext.configure(
                        sync_connection,
                        opts={
                            "version_table": f"alembic_version_{service}",
                            "compare_type": True,
                            "include_object": _declared_here,
                        },
                    )
                    return compare_metadata(context, metadata)

                return await connection.run_sync(compare)
        finally:
            await async_engine.dispose()

    diff = [d for d in asyncio.run(differences()) if not _is_alembic_bookkeeping(d)]
    assert diff == [], f"{service}: migrations and db/tables.py disagree: {diff}"


def _declared_here(obj, name, type_, reflected, compare_to) -> bool:
    """Leave out the job queue's tables and indexes (pgqueuer owns their schema) and the HNSW
    index of each embedding space (made at run time, when a space's dimension is known)."""
    if type_ == "index" and (name or "").startswith("asset_vectors_hnsw_"):
        return False
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) not in PGQUEUER_TABLES


def _is_alembic_bookkeeping(difference) -> bool:
    """Tables no db/tables.py declares on purpose: alembic's own and the job queue's (pgqueuer)."""
    if difference[0] != "remove_table":
        return False
    name = difference[1].name
    return name.startswith("alembic_version") or name in PGQUEUER_TABLES

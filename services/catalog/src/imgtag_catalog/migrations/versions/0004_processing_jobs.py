"""The durable job queue (pgqueuer's tables) for the processing pipeline and imports.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from alembic import op
from sqlalchemy.util import await_only

from imgtag_common.jobs import install_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One multi-statement script (tables, enum, trigger, function), which only asyncpg's plain
    # execute runs (not a prepared statement); same connection, same transaction.
    await_only(op.get_bind().connection.driver_connection.execute(install_sql()))


def downgrade() -> None:
    for table in ("pgqueuer_statistics", "pgqueuer_schedules", "pgqueuer_log", "pgqueuer"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS fn_pgqueuer_changed CASCADE")
    op.execute("DROP TYPE IF EXISTS pgqueuer_status")

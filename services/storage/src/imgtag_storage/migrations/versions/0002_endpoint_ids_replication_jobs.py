"""Endpoint ids chosen by admins (text), health counters, object claims, replica scheduling,
scrubs, and pgqueuer's job tables.

The existing endpoint keeps its UUID, now as text. Plain-text S3 secrets left by 0001 are
sealed by the service at start (the key is a setting, which migrations do not see).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.util import await_only

from imgtag_common.jobs import install_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Endpoint ids become text: drop the foreign key, convert both sides, put it back.
    op.drop_constraint("replicas_endpoint_id_fkey", "replicas", type_="foreignkey")
    op.alter_column("endpoints", "id", type_=sa.Text, postgresql_using="id::text")
    op.alter_column("replicas", "endpoint_id", type_=sa.Text, postgresql_using="endpoint_id::text")
    op.create_foreign_key(
        "replicas_endpoint_id_fkey", "replicas", "endpoints", ["endpoint_id"], ["id"], ondelete="RESTRICT"
    )
    op.create_check_constraint("endpoints_id_format", "endpoints", "id ~ '^[a-z0-9][a-z0-9-]{1,62}$'")
    op.create_check_constraint(
        "endpoints_default_is_primary", "endpoints", "NOT is_default_upload OR (enabled AND role = 'primary')"
    )
    op.add_column("endpoints", sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"))
    op.add_column("endpoints", sa.Column("last_healthy_time", sa.DateTime(timezone=True)))
    op.add_column("endpoints", sa.Column("latency_ms", sa.Float, nullable=False, server_default="0"))
    # 0001 kept the local root under "root"; the contract calls it root_path.
    op.execute(
        "UPDATE endpoints SET config = (config - 'root') || jsonb_build_object('root_path', config->'root') "
        "WHERE kind = 'local' AND config ? 'root'"
    )

    op.add_column("objects", sa.Column("state", sa.Text, nullable=False, server_default="stored"))
    op.add_column("objects", sa.Column("staging_key", sa.Text, nullable=False, server_default=""))
    op.add_column("objects", sa.Column("claim_endpoint_id", sa.Text))
    op.create_index("objects_by_state", "objects", ["state"], postgresql_where=sa.text("state <> 'stored'"))

    op.add_column("replicas", sa.Column("next_attempt_time", sa.DateTime(timezone=True)))
    op.add_column(
        "replicas", sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())
    )
    op.create_index("replicas_by_endpoint", "replicas", ["endpoint_id", "object_key"])

    op.create_table(
        "scrubs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("endpoint_id", sa.Text, sa.ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("total_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("checked_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("verified_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("missing_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("corrupt_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("error_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("last_key", sa.Text, nullable=False, server_default=""),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("end_time", sa.DateTime(timezone=True)),
    )

    # pgqueuer's tables, enum, trigger and function: one multi-statement script, which only
    # asyncpg's plain execute (not a prepared statement) runs; same connection, same transaction.
    await_only(op.get_bind().connection.driver_connection.execute(install_sql()))


def downgrade() -> None:
    for table in ("pgqueuer_statistics", "pgqueuer_schedules", "pgqueuer_log", "pgqueuer"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS fn_pgqueuer_changed CASCADE")
    op.execute("DROP TYPE IF EXISTS pgqueuer_status")
    op.drop_table("scrubs")
    op.drop_index("replicas_by_endpoint", "replicas")
    op.drop_column("replicas", "create_time")
    op.drop_column("replicas", "next_attempt_time")
    op.drop_index("objects_by_state", "objects")
    for column in ("claim_endpoint_id", "staging_key", "state"):
        op.drop_column("objects", column)
    for column in ("latency_ms", "last_healthy_time", "consecutive_failures"):
        op.drop_column("endpoints", column)
    op.drop_constraint("endpoints_default_is_primary", "endpoints", type_="check")
    op.drop_constraint("endpoints_id_format", "endpoints", type_="check")
    # Ids that are not UUIDs cannot go back to 0001's schema.
    op.drop_constraint("replicas_endpoint_id_fkey", "replicas", type_="foreignkey")
    op.alter_column("replicas", "endpoint_id", type_=sa.Uuid, postgresql_using="endpoint_id::uuid")
    op.alter_column("endpoints", "id", type_=sa.Uuid, postgresql_using="id::uuid")
    op.create_foreign_key(
        "replicas_endpoint_id_fkey", "replicas", "endpoints", ["endpoint_id"], ["id"], ondelete="RESTRICT"
    )

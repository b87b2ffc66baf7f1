"""Storage endpoints, objects and their replicas.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("config", postgresql.JSONB, nullable=False),
        sa.Column("read_priority", sa.Integer, nullable=False, server_default="100"),
        sa.Column("read_weight", sa.Integer, nullable=False, server_default="1"),
        sa.Column("is_default_upload", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("health_state", sa.Text, nullable=False, server_default="unknown"),
        sa.Column("last_check_time", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "endpoints_one_default_upload",
        "endpoints",
        ["is_default_upload"],
        unique=True,
        postgresql_where=sa.text("is_default_upload"),
    )
    op.create_table(
        "objects",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "replicas",
        sa.Column("object_key", sa.Text, sa.ForeignKey("objects.key", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "endpoint_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("endpoints.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("verify_time", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("attempt_count", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("object_key", "endpoint_id"),
    )
    op.create_index("replicas_by_state", "replicas", ["state", "endpoint_id"])


def downgrade() -> None:
    op.drop_table("replicas")
    op.drop_table("objects")
    op.drop_table("endpoints")

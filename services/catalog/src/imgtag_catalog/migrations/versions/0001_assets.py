"""pgvector and the assets table.

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
    # Embedding search (a later migration adds the vector columns and HNSW indexes).
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "assets",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("object_key", sa.Text, nullable=False, unique=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delete_time", sa.DateTime(timezone=True)),
        sa.Column("purge_time", sa.DateTime(timezone=True)),
    )
    op.create_index("assets_newest_first", "assets", [sa.text("create_time DESC"), sa.text("id DESC")])
    op.create_index("assets_by_sha256", "assets", ["sha256"])


def downgrade() -> None:
    op.drop_table("assets")

"""Embeddings per asset and space, captions and recognized text, and near-duplicate links.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assets", sa.Column("caption", sa.Text(), server_default="", nullable=False))
    op.add_column("assets", sa.Column("recognized_text", sa.Text(), server_default="", nullable=False))
    op.create_table(
        "asset_vectors",
        sa.Column("asset_id", sa.UUID(), sa.ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("embedding", Vector(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("asset_id", "space"),
    )
    op.create_index("asset_vectors_by_space", "asset_vectors", ["space", "asset_id"])
    op.create_table(
        "duplicate_links",
        sa.Column("asset_a", sa.UUID(), sa.ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("asset_b", sa.UUID(), sa.ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("hash_distance", sa.SmallInteger(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("state", sa.Text(), server_default="open", nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("asset_a", "asset_b"),
    )
    op.create_index(
        "duplicate_links_open_by_owner", "duplicate_links", ["owner"], postgresql_where=sa.text("state = 'open'")
    )


def downgrade() -> None:
    op.drop_table("duplicate_links")
    op.drop_table("asset_vectors")
    op.drop_column("assets", "recognized_text")
    op.drop_column("assets", "caption")

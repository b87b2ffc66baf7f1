"""Text embeddings of tag names, one per name and language, so that a query finds tags by meaning
("kitten" finds 猫/cat, "摩托" finds motorcycle), not only by spelling.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tag_vectors",
        sa.Column("tag_id", sa.UUID(), nullable=False),
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("embedding", Vector(), nullable=False),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tag_id", "space", "name"),
    )
    op.create_index("tag_vectors_by_space", "tag_vectors", ["space", "tag_id"])


def downgrade() -> None:
    op.drop_table("tag_vectors")

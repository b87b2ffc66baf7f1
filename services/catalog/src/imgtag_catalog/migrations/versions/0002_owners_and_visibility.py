"""Per-owner libraries: visibility, per-owner duplicate lookup and listing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assets", sa.Column("visibility", sa.Text, nullable=False, server_default="private"))
    op.drop_index("assets_by_sha256", table_name="assets")
    op.create_index("assets_by_owner_sha256", "assets", ["owner", "sha256"])
    op.create_index(
        "assets_by_owner_newest_first", "assets", ["owner", sa.text("create_time DESC"), sa.text("id DESC")]
    )


def downgrade() -> None:
    op.drop_index("assets_by_owner_newest_first", table_name="assets")
    op.drop_index("assets_by_owner_sha256", table_name="assets")
    op.create_index("assets_by_sha256", "assets", ["sha256"])
    op.drop_column("assets", "visibility")

"""Indexes that keep every ListAssets page an ordered index scan at any library size: everyone's
assets by capture time (admins), and the assets shared with the instance by upload and by capture
time (the second half of a user's listing, merged with their own; db/repository.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_CAPTURE_ORDER = [sa.literal_column("coalesce(capture_time, create_time) DESC"), sa.literal_column("id DESC")]
_SHARED = sa.text("visibility = 'instance'")


def upgrade() -> None:
    op.create_index("assets_by_capture_time", "assets", _CAPTURE_ORDER, unique=False)
    op.create_index(
        "assets_shared_newest_first",
        "assets",
        [sa.text("create_time DESC"), sa.text("id DESC")],
        unique=False,
        postgresql_where=_SHARED,
    )
    op.create_index("assets_shared_by_capture_time", "assets", _CAPTURE_ORDER, unique=False, postgresql_where=_SHARED)


def downgrade() -> None:
    op.drop_index("assets_shared_by_capture_time", table_name="assets", postgresql_where=_SHARED)
    op.drop_index("assets_shared_newest_first", table_name="assets", postgresql_where=_SHARED)
    op.drop_index("assets_by_capture_time", table_name="assets")

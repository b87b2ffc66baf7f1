"""The vision-language stage on assets: caption_state, caption_error, caption_provider. Assets
that exist already were analysed without a provider: they start SKIPPED (ReanalyzeAsset describes
them), new ones PENDING.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assets", sa.Column("caption_state", sa.Text(), nullable=False, server_default="skipped"))
    op.alter_column("assets", "caption_state", server_default="pending")
    op.add_column("assets", sa.Column("caption_error", sa.Text(), nullable=False, server_default=""))
    op.add_column("assets", sa.Column("caption_provider", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("assets", "caption_provider")
    op.drop_column("assets", "caption_error")
    op.drop_column("assets", "caption_state")

"""Vision-language providers.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vision_providers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("sealed_api_key", sa.Text, nullable=False, server_default=""),
        sa.Column("prompt", sa.Text, nullable=False, server_default=""),
        sa.Column("language", sa.Text, nullable=False, server_default="en"),
        sa.Column("concurrency", sa.Integer, nullable=False, server_default="2"),
        sa.Column("timeout_s", sa.Float, nullable=False, server_default="60"),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default="3"),
        sa.Column("json_mode", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("max_output_tokens", sa.Integer, nullable=False, server_default="1024"),
        sa.Column("active", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint("sealed_api_key = '' OR sealed_api_key LIKE 'fernet:%'", name="vision_providers_key_sealed"),
    )
    op.create_index(
        "vision_providers_one_active",
        "vision_providers",
        ["active"],
        unique=True,
        postgresql_where=sa.text("active"),
    )


def downgrade() -> None:
    op.drop_table("vision_providers")

"""Users, sessions with rotating refresh tokens, API keys and instance settings.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
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
        "users",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("username_key", sa.Text, nullable=False, unique=True),
        sa.Column("email", sa.Text, nullable=False, server_default=""),
        sa.Column("email_key", sa.Text),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approve_time", sa.DateTime(timezone=True)),
        sa.Column("last_login_time", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "users_email_key", "users", ["email_key"], unique=True, postgresql_where=sa.text("email_key IS NOT NULL")
    )
    op.create_index("users_newest_first", "users", [sa.text("create_time DESC"), sa.text("id DESC")])
    op.create_table(
        "sessions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "user_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoke_time", sa.DateTime(timezone=True)),
        sa.Column("revoke_reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column(
            "session_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_time", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "user_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("secret_prefix", sa.Text, nullable=False),
        sa.Column("restriction_filter", sa.Text, nullable=False, server_default=""),
        sa.Column("restriction_collection", sa.Text, nullable=False, server_default=""),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True)),
        sa.Column("last_use_time", sa.DateTime(timezone=True)),
        sa.Column("revoke_time", sa.DateTime(timezone=True)),
    )
    op.create_index("api_keys_by_owner", "api_keys", ["user_id", sa.text("create_time DESC"), sa.text("id DESC")])
    op.create_table(
        "instance_settings",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", postgresql.JSONB, nullable=False),
    )


def downgrade() -> None:
    for table in ("instance_settings", "api_keys", "refresh_tokens", "sessions", "users"):
        op.drop_table(table)

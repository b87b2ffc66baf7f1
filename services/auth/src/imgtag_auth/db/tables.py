"""Auth tables (database imgtag_auth)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, LargeBinary, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("username", Text, nullable=False),
    # NFKC + casefold: what uniqueness and logins compare.
    Column("username_key", Text, nullable=False, unique=True),
    Column("email", Text, nullable=False, server_default=""),
    Column("email_key", Text),
    Column("display_name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("approve_time", DateTime(timezone=True)),
    Column("last_login_time", DateTime(timezone=True)),
)
# Emails are unique when present (the first admin may have none).
Index("users_email_key", users.c.email_key, unique=True, postgresql_where=text("email_key IS NOT NULL"))
Index("users_newest_first", users.c.create_time.desc(), users.c.id.desc())

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("expire_time", DateTime(timezone=True), nullable=False),
    Column("revoke_time", DateTime(timezone=True)),
    Column("revoke_reason", Text, nullable=False, server_default=""),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    # SHA-256 of the token: it has 256 random bits, so a fast hash is enough and allows lookup.
    Column("token_hash", LargeBinary, primary_key=True),
    Column("session_id", UUID(as_uuid=True), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("expire_time", DateTime(timezone=True), nullable=False),
    Column("used_time", DateTime(timezone=True)),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("secret_hash", LargeBinary, nullable=False, unique=True),
    Column("secret_prefix", Text, nullable=False),
    Column("restriction_filter", Text, nullable=False, server_default=""),
    Column("restriction_collection", Text, nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("expire_time", DateTime(timezone=True)),
    Column("last_use_time", DateTime(timezone=True)),
    Column("revoke_time", DateTime(timezone=True)),
)
Index("api_keys_by_owner", api_keys.c.user_id, api_keys.c.create_time.desc(), api_keys.c.id.desc())

# Instance settings an admin changes at runtime (e.g. registration), one JSON value per name.
instance_settings = Table(
    "instance_settings",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", JSONB, nullable=False),
)

"""Inference service tables (database imgtag_inference): the vision-language providers an admin
configured. Models are files, not rows; the service needs a database only for these."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, DateTime, Float, Index, Integer, MetaData, Table, Text, text

metadata = MetaData()

vision_providers = Table(
    "vision_providers",
    metadata,
    # AIP-122 id chosen by the admin ("openai") or derived from the kind
    Column("id", Text, primary_key=True),
    Column("display_name", Text, nullable=False, server_default=""),
    Column("kind", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("model", Text, nullable=False),
    # The API key sealed with Fernet ("fernet:..."), or "" when none; never plain text.
    Column("sealed_api_key", Text, nullable=False, server_default=""),
    Column("prompt", Text, nullable=False, server_default=""),
    Column("language", Text, nullable=False, server_default="en"),
    Column("concurrency", Integer, nullable=False, server_default="2"),
    Column("timeout_s", Float, nullable=False, server_default="60"),
    Column("max_attempts", Integer, nullable=False, server_default="3"),
    Column("json_mode", Boolean, nullable=False, server_default="true"),
    Column("max_output_tokens", Integer, nullable=False, server_default="1024"),
    Column("active", Boolean, nullable=False, server_default="false"),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("sealed_api_key = '' OR sealed_api_key LIKE 'fernet:%'", name="vision_providers_key_sealed"),
)
# At most one provider is active: the one new assets are described with.
Index(
    "vision_providers_one_active",
    vision_providers.c.active,
    unique=True,
    postgresql_where=text("active"),
)

"""Catalog tables (database imgtag_catalog)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

assets = Table(
    "assets",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("filename", Text, nullable=False),
    Column("title", Text, nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("content_type", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("object_key", Text, nullable=False, unique=True),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("delete_time", DateTime(timezone=True)),
    Column("purge_time", DateTime(timezone=True)),
    Column("visibility", Text, nullable=False, server_default="private"),
)
Index("assets_newest_first", assets.c.create_time.desc(), assets.c.id.desc())
# A user's own library, newest first, and their duplicates.
Index("assets_by_owner_newest_first", assets.c.owner, assets.c.create_time.desc(), assets.c.id.desc())
Index("assets_by_owner_sha256", assets.c.owner, assets.c.sha256)

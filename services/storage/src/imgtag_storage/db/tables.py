"""Storage service tables (database imgtag_storage)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("config", JSONB, nullable=False),
    Column("read_priority", Integer, nullable=False, server_default="100"),
    Column("read_weight", Integer, nullable=False, server_default="1"),
    Column("is_default_upload", Boolean, nullable=False, server_default="false"),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("health_state", Text, nullable=False, server_default="unknown"),
    Column("last_check_time", DateTime(timezone=True)),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
# At most one default upload endpoint.
Index(
    "endpoints_one_default_upload",
    endpoints.c.is_default_upload,
    unique=True,
    postgresql_where=text("is_default_upload"),
)

objects = Table(
    "objects",
    metadata,
    Column("key", Text, primary_key=True),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

replicas = Table(
    "replicas",
    metadata,
    Column("object_key", Text, ForeignKey("objects.key", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", UUID(as_uuid=True), ForeignKey("endpoints.id", ondelete="RESTRICT"), nullable=False),
    Column("state", Text, nullable=False),
    Column("verify_time", DateTime(timezone=True)),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("object_key", "endpoint_id"),
)
Index("replicas_by_state", replicas.c.state, replicas.c.endpoint_id)

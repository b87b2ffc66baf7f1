"""Storage service tables (database imgtag_storage). pgqueuer's job tables live in the same
database, installed by migration 0002 (see imgtag_common.jobs)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
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
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

endpoints = Table(
    "endpoints",
    metadata,
    # AIP-122 id chosen by the admin or generated ("nas-backup"); the endpoint bootstrapped
    # before ids were chosen keeps its UUID as text.
    Column("id", Text, primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("role", Text, nullable=False),
    # Backend settings; an S3 secret only as sealed_secret_access_key (encrypted).
    Column("config", JSONB, nullable=False),
    Column("read_priority", Integer, nullable=False, server_default="100"),
    Column("read_weight", Integer, nullable=False, server_default="1"),
    Column("is_default_upload", Boolean, nullable=False, server_default="false"),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("health_state", Text, nullable=False, server_default="unknown"),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("last_check_time", DateTime(timezone=True)),
    Column("last_healthy_time", DateTime(timezone=True)),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("latency_ms", Float, nullable=False, server_default="0"),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="endpoints_id_format"),
    # The default upload endpoint is always an enabled PRIMARY.
    CheckConstraint("NOT is_default_upload OR (enabled AND role = 'primary')", name="endpoints_default_is_primary"),
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
    # writing / uploading (the key is claimed, nobody may read it), stored, deleting.
    Column("state", Text, nullable=False, server_default="stored"),
    # Where a presigned PUT uploads to (on the endpoint of its claim) until CommitObject.
    Column("staging_key", Text, nullable=False, server_default=""),
    Column("claim_endpoint_id", Text),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("objects_by_state", objects.c.state, postgresql_where=text("state <> 'stored'"))

replicas = Table(
    "replicas",
    metadata,
    Column("object_key", Text, ForeignKey("objects.key", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", Text, ForeignKey("endpoints.id", ondelete="RESTRICT"), nullable=False),
    Column("state", Text, nullable=False),
    Column("verify_time", DateTime(timezone=True)),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    Column("next_attempt_time", DateTime(timezone=True)),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("object_key", "endpoint_id"),
)
Index("replicas_by_state", replicas.c.state, replicas.c.endpoint_id)
Index("replicas_by_endpoint", replicas.c.endpoint_id, replicas.c.object_key)

scrubs = Table(
    "scrubs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("endpoint_id", Text, ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("state", Text, nullable=False),
    Column("total_count", BigInteger, nullable=False, server_default="0"),
    Column("checked_count", BigInteger, nullable=False, server_default="0"),
    Column("verified_count", BigInteger, nullable=False, server_default="0"),
    Column("missing_count", BigInteger, nullable=False, server_default="0"),
    Column("corrupt_count", BigInteger, nullable=False, server_default="0"),
    Column("error_count", BigInteger, nullable=False, server_default="0"),
    Column("error", Text, nullable=False, server_default=""),
    Column("last_key", Text, nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("end_time", DateTime(timezone=True)),
)

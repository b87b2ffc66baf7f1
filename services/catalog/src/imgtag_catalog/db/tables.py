"""Catalog tables (database imgtag_catalog)."""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

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
    # uploading (row claimed, bytes on their way), active, trashed
    Column("state", Text, nullable=False),
    Column("object_key", Text, nullable=False, unique=True),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("delete_time", DateTime(timezone=True)),
    Column("purge_time", DateTime(timezone=True)),
    Column("visibility", Text, nullable=False, server_default="private"),
    # Set when the owner asked for a second copy of bytes they already have; such rows do not
    # take part in the one-asset-per-checksum rule.
    Column("duplicate_of", UUID(as_uuid=True)),
    Column("capture_time", DateTime(timezone=True)),
    Column("capture_time_zone_known", Boolean, nullable=False, server_default="false"),
    Column("orientation", SmallInteger, nullable=False, server_default="1"),
    Column("camera_make", Text, nullable=False, server_default=""),
    Column("camera_model", Text, nullable=False, server_default=""),
    Column("lens_model", Text, nullable=False, server_default=""),
    Column("focal_length_mm", Float),
    Column("f_number", Float),
    Column("exposure_time_s", Double),
    Column("iso", Integer),
    Column("latitude", Double),
    Column("longitude", Double),
    Column("altitude_m", Double),
    Column("exif", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("favorite", Boolean, nullable=False, server_default="false"),
    Column("rating", SmallInteger, nullable=False, server_default="0"),
    Column("labels", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("perceptual_hash", Text, nullable=False, server_default=""),
    Column("thumbnail_key", Text, nullable=False, server_default=""),
    Column("preview_key", Text, nullable=False, server_default=""),
    Column("processing_state", Text, nullable=False, server_default="pending"),
    Column("processing_error", Text, nullable=False, server_default=""),
    Column("analysis_state", Text, nullable=False, server_default="pending"),
    Column("analysis_error", Text, nullable=False, server_default=""),
    Column("analysis_time", DateTime(timezone=True)),
    Column("caption", Text, nullable=False, server_default=""),
    Column("recognized_text", Text, nullable=False, server_default=""),
    # The vision-language stage (migration 0008): its state, why it failed, who wrote the caption.
    Column("caption_state", Text, nullable=False, server_default="pending"),
    Column("caption_error", Text, nullable=False, server_default=""),
    Column("caption_provider", Text, nullable=False, server_default=""),
)
Index("assets_newest_first", assets.c.create_time.desc(), assets.c.id.desc())
# A user's own library, newest first (by upload and by capture time).
Index("assets_by_owner_newest_first", assets.c.owner, assets.c.create_time.desc(), assets.c.id.desc())
Index(
    "assets_by_owner_capture_time",
    assets.c.owner,
    func.coalesce(assets.c.capture_time, assets.c.create_time).desc(),
    assets.c.id.desc(),
)
# Everyone's library by capture time (admins), and what owners shared with the instance: a
# user's listing merges their own (above) with these (db/repository.py, list_page_query).
Index("assets_by_capture_time", func.coalesce(assets.c.capture_time, assets.c.create_time).desc(), assets.c.id.desc())
Index(
    "assets_shared_newest_first",
    assets.c.create_time.desc(),
    assets.c.id.desc(),
    postgresql_where=text("visibility = 'instance'"),
)
Index(
    "assets_shared_by_capture_time",
    func.coalesce(assets.c.capture_time, assets.c.create_time).desc(),
    assets.c.id.desc(),
    postgresql_where=text("visibility = 'instance'"),
)
# One asset per owner and checksum, enforced by PostgreSQL so two identical uploads at the same
# moment cannot both succeed (explicitly allowed duplicates are exempt).
Index(
    "assets_one_per_owner_sha256",
    assets.c.owner,
    assets.c.sha256,
    unique=True,
    postgresql_where=text("duplicate_of IS NULL"),
)
Index("assets_by_owner_sha256", assets.c.owner, assets.c.sha256)
# The janitor's and the pipeline's work lists.
Index("assets_uploading", assets.c.create_time, postgresql_where=text("state = 'uploading'"))
Index("assets_to_purge", assets.c.purge_time, postgresql_where=text("state = 'trashed'"))
# Search by the words read in a photo (migration 0010).
Index(
    "assets_recognized_text_trigrams",
    assets.c.recognized_text,
    postgresql_using="gin",
    postgresql_ops={"recognized_text": "gin_trgm_ops"},
    postgresql_where=text("recognized_text <> ''"),
)

tags = Table(
    "tags",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    # The normalized canonical name (NFKC, case-folded, trimmed): what uniqueness compares.
    Column("name_key", Text, nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("display_names", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("category", Text, nullable=False, server_default=""),
    Column("aliases", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    # Every name and alias in every language, normalized: what lookups and autocomplete match.
    Column("search_names", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("description", Text, nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
)
Index("tags_by_search_name", tags.c.search_names, postgresql_using="gin")

asset_tags = Table(
    "asset_tags",
    metadata,
    Column("asset_id", UUID(as_uuid=True), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("tag_id", UUID(as_uuid=True), ForeignKey("tags.id", ondelete="CASCADE"), nullable=False),
    # ai, manual or collection: the strongest reason the tag is on the asset.
    Column("source", Text, nullable=False),
    # suggested, confirmed or rejected (rejected rows keep re-analysis from suggesting it again).
    Column("state", Text, nullable=False),
    Column("confidence", Float, nullable=False, server_default="1"),
    Column("model", Text, nullable=False, server_default=""),
    # Collections whose auto tags (their own or inherited) put it there.
    Column("collection_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=text("'{}'::uuid[]")),
    Column("create_time", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("asset_id", "tag_id"),
)
Index("asset_tags_by_tag", asset_tags.c.tag_id, asset_tags.c.asset_id)

collections = Table(
    "collections",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("parent_id", UUID(as_uuid=True), ForeignKey("collections.id", ondelete="RESTRICT")),
    Column("display_name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("auto_tag_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=text("'{}'::uuid[]")),
    Column("cover_asset_id", UUID(as_uuid=True), ForeignKey("assets.id", ondelete="SET NULL")),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
)
# Sibling names are unique per owner, case-insensitively (root collections share one level).
Index(
    "collections_unique_sibling_name",
    collections.c.owner,
    func.coalesce(collections.c.parent_id, text("'00000000-0000-0000-0000-000000000000'::uuid")),
    func.lower(collections.c.display_name),
    unique=True,
)
Index("collections_by_parent", collections.c.parent_id)

collection_assets = Table(
    "collection_assets",
    metadata,
    Column("collection_id", UUID(as_uuid=True), ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    Column("asset_id", UUID(as_uuid=True), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("add_time", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("collection_id", "asset_id"),
)
Index("collection_assets_by_asset", collection_assets.c.asset_id)

import_jobs = Table(
    "import_jobs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("creator", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("source", JSONB, nullable=False),
    # Storage key of the uploaded archive (deleted when the job ends).
    Column("archive_key", Text, nullable=False, server_default=""),
    Column("options", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("total_count", BigInteger, nullable=False, server_default="0"),
    Column("processed_count", BigInteger, nullable=False, server_default="0"),
    Column("imported_count", BigInteger, nullable=False, server_default="0"),
    Column("skipped_count", BigInteger, nullable=False, server_default="0"),
    Column("failed_count", BigInteger, nullable=False, server_default="0"),
    # Why a FAILED job stopped: message, ErrorInfo reason and gRPC code.
    Column("error", Text, nullable=False, server_default=""),
    Column("error_reason", Text, nullable=False, server_default=""),
    Column("error_code", Integer, nullable=False, server_default="0"),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("start_time", DateTime(timezone=True)),
    Column("end_time", DateTime(timezone=True)),
)
Index("import_jobs_by_creator", import_jobs.c.creator, import_jobs.c.create_time.desc(), import_jobs.c.id.desc())

# Embeddings, one row per asset and embedding space (a space is one model's vectors: comparing
# across spaces is meaningless, so every query names its space). Each space gets its own partial
# HNSW index on `embedding::vector(dimension)`, made when the space first appears
# (db/search_repository.py), because a space's dimension is only known then.
asset_vectors = Table(
    "asset_vectors",
    metadata,
    Column("asset_id", UUID(as_uuid=True), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("space", Text, nullable=False),
    # text (the asset's words: tags, caption, OCR) or image (its pixels)
    Column("kind", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("dimension", Integer, nullable=False),
    Column("embedding", Vector(), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("asset_id", "space"),
)
Index("asset_vectors_by_space", asset_vectors.c.space, asset_vectors.c.asset_id)

# Each tag name (every language and alias) embedded in a text space: a query finds tags by
# meaning. A few thousand rows per space, so searches scan them exactly (no index needed).
tag_vectors = Table(
    "tag_vectors",
    metadata,
    Column("tag_id", UUID(as_uuid=True), ForeignKey("tags.id", ondelete="CASCADE"), nullable=False),
    Column("space", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("embedding", Vector(), nullable=False),
    PrimaryKeyConstraint("tag_id", "space", "name"),
)
Index("tag_vectors_by_space", tag_vectors.c.space, tag_vectors.c.tag_id)

# Pairs of one owner's assets that are probably the same picture; groups are their connected
# components. A pair a person said is not a duplicate stays, marked, so it is not offered again.
duplicate_links = Table(
    "duplicate_links",
    metadata,
    Column("asset_a", UUID(as_uuid=True), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("asset_b", UUID(as_uuid=True), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("owner", Text, nullable=False),
    Column("hash_distance", SmallInteger, nullable=False),
    Column("similarity", Float, nullable=False),
    # open, or kept (a person kept both)
    Column("state", Text, nullable=False, server_default="open"),
    Column("create_time", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("asset_a", "asset_b"),
)
Index("duplicate_links_open_by_owner", duplicate_links.c.owner, postgresql_where=text("state = 'open'"))

# One row per archive entry of an import job: written when the entry is begun (outcome NULL,
# attempts counted) and finished together with the job's counters, so a resumed job knows
# exactly which entries are done.
import_items = Table(
    "import_items",
    metadata,
    Column("job_id", UUID(as_uuid=True), ForeignKey("import_jobs.id", ondelete="CASCADE"), nullable=False),
    # Position in the archive's central directory.
    Column("entry_index", Integer, nullable=False),
    Column("source_item", Text, nullable=False),
    # created, duplicate, rejected; NULL while the entry is being imported.
    Column("outcome", Text),
    # The created or existing asset (no foreign key: the report outlives purged assets).
    Column("asset_id", UUID(as_uuid=True)),
    Column("error_code", Integer, nullable=False, server_default="0"),
    Column("error_reason", Text, nullable=False, server_default=""),
    Column("error_message", Text, nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("end_time", DateTime(timezone=True)),
    PrimaryKeyConstraint("job_id", "entry_index"),
)

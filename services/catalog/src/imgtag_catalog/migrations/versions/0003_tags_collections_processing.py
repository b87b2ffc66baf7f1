"""Tags with provenance, nested collections, EXIF facts, processing states, import jobs, and one
asset per owner and checksum enforced by a unique index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("creator", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("source", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("archive_key", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "options", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("total_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("processed_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("imported_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("skipped_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failed_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "items", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "import_jobs_by_creator",
        "import_jobs",
        ["creator", sa.literal_column("create_time DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column(
            "display_names",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("category", sa.Text(), server_default="", nullable=False),
        sa.Column("aliases", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column("search_names", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name_key"),
    )
    op.create_index("tags_by_search_name", "tags", ["search_names"], unique=False, postgresql_using="gin")
    op.create_table(
        "asset_tags",
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column("tag_id", sa.UUID(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), server_default="1", nullable=False),
        sa.Column("model", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "collection_ids", postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'::uuid[]"), nullable=False
        ),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id", "tag_id"),
    )
    op.create_index("asset_tags_by_tag", "asset_tags", ["tag_id", "asset_id"], unique=False)
    op.create_table(
        "collections",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.UUID(), nullable=True),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("auto_tag_ids", postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'::uuid[]"), nullable=False),
        sa.Column("cover_asset_id", sa.UUID(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["cover_asset_id"], ["assets.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["parent_id"], ["collections.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("collections_by_parent", "collections", ["parent_id"], unique=False)
    op.create_index(
        "collections_unique_sibling_name",
        "collections",
        [
            "owner",
            sa.literal_column("coalesce(parent_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
            sa.literal_column("lower(display_name)"),
        ],
        unique=True,
    )
    op.create_table(
        "collection_assets",
        sa.Column("collection_id", sa.UUID(), nullable=False),
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column("add_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("collection_id", "asset_id"),
    )
    op.create_index("collection_assets_by_asset", "collection_assets", ["asset_id"], unique=False)
    op.add_column("assets", sa.Column("duplicate_of", sa.UUID(), nullable=True))
    op.add_column("assets", sa.Column("capture_time", sa.DateTime(timezone=True), nullable=True))
    op.add_column("assets", sa.Column("capture_time_zone_known", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("assets", sa.Column("orientation", sa.SmallInteger(), server_default="1", nullable=False))
    op.add_column("assets", sa.Column("camera_make", sa.Text(), server_default="", nullable=False))
    op.add_column("assets", sa.Column("camera_model", sa.Text(), server_default="", nullable=False))
    op.add_column("assets", sa.Column("lens_model", sa.Text(), server_default="", nullable=False))
    op.add_column("assets", sa.Column("focal_length_mm", sa.Float(), nullable=True))
    op.add_column("assets", sa.Column("f_number", sa.Float(), nullable=True))
    op.add_column("assets", sa.Column("exposure_time_s", sa.Double(), nullable=True))
    op.add_column("assets", sa.Column("iso", sa.Integer(), nullable=True))
    op.add_column("assets", sa.Column("latitude", sa.Double(), nullable=True))
    op.add_column("assets", sa.Column("longitude", sa.Double(), nullable=True))
    op.add_column("assets", sa.Column("altitude_m", sa.Double(), nullable=True))
    op.add_column(
        "assets",
        sa.Column(
            "exif", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
    )
    op.add_column("assets", sa.Column("favorite", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("assets", sa.Column("rating", sa.SmallInteger(), server_default="0", nullable=False))
    op.add_column(
        "assets",
        sa.Column(
            "labels", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
    )
    op.add_column("assets", sa.Column("perceptual_hash", sa.Text(), server_default="", nullable=False))
    op.add_column("assets", sa.Column("thumbnail_key", sa.Text(), server_default="", nullable=False))
    op.add_column("assets", sa.Column("preview_key", sa.Text(), server_default="", nullable=False))
    op.add_column("assets", sa.Column("processing_state", sa.Text(), server_default="pending", nullable=False))
    op.add_column("assets", sa.Column("processing_error", sa.Text(), server_default="", nullable=False))
    op.add_column("assets", sa.Column("analysis_state", sa.Text(), server_default="pending", nullable=False))
    op.add_column("assets", sa.Column("analysis_error", sa.Text(), server_default="", nullable=False))
    op.add_column("assets", sa.Column("analysis_time", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "assets_by_owner_capture_time",
        "assets",
        ["owner", sa.literal_column("coalesce(capture_time, create_time) DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    # Copies uploaded before this rule existed become explicit duplicates of their oldest twin,
    # so the unique index can be built without losing any of them.
    op.execute(
        """
        UPDATE assets SET duplicate_of = first.id
        FROM (SELECT DISTINCT ON (owner, sha256) id, owner, sha256 FROM assets ORDER BY owner, sha256, create_time, id)
            AS first
        WHERE assets.owner = first.owner AND assets.sha256 = first.sha256 AND assets.id <> first.id
        """
    )
    op.create_index(
        "assets_one_per_owner_sha256",
        "assets",
        ["owner", "sha256"],
        unique=True,
        postgresql_where=sa.text("duplicate_of IS NULL"),
    )
    op.create_index(
        "assets_to_purge", "assets", ["purge_time"], unique=False, postgresql_where=sa.text("state = 'trashed'")
    )
    op.create_index(
        "assets_uploading", "assets", ["create_time"], unique=False, postgresql_where=sa.text("state = 'uploading'")
    )


def downgrade() -> None:
    op.drop_index("assets_uploading", table_name="assets", postgresql_where=sa.text("state = 'uploading'"))
    op.drop_index("assets_to_purge", table_name="assets", postgresql_where=sa.text("state = 'trashed'"))
    op.drop_index("assets_one_per_owner_sha256", table_name="assets", postgresql_where=sa.text("duplicate_of IS NULL"))
    op.drop_index("assets_by_owner_capture_time", table_name="assets")
    op.drop_column("assets", "analysis_time")
    op.drop_column("assets", "analysis_error")
    op.drop_column("assets", "analysis_state")
    op.drop_column("assets", "processing_error")
    op.drop_column("assets", "processing_state")
    op.drop_column("assets", "preview_key")
    op.drop_column("assets", "thumbnail_key")
    op.drop_column("assets", "perceptual_hash")
    op.drop_column("assets", "labels")
    op.drop_column("assets", "rating")
    op.drop_column("assets", "favorite")
    op.drop_column("assets", "exif")
    op.drop_column("assets", "altitude_m")
    op.drop_column("assets", "longitude")
    op.drop_column("assets", "latitude")
    op.drop_column("assets", "iso")
    op.drop_column("assets", "exposure_time_s")
    op.drop_column("assets", "f_number")
    op.drop_column("assets", "focal_length_mm")
    op.drop_column("assets", "lens_model")
    op.drop_column("assets", "camera_model")
    op.drop_column("assets", "camera_make")
    op.drop_column("assets", "orientation")
    op.drop_column("assets", "capture_time_zone_known")
    op.drop_column("assets", "capture_time")
    op.drop_column("assets", "duplicate_of")
    op.drop_index("collection_assets_by_asset", table_name="collection_assets")
    op.drop_table("collection_assets")
    op.drop_index("collections_unique_sibling_name", table_name="collections")
    op.drop_index("collections_by_parent", table_name="collections")
    op.drop_table("collections")
    op.drop_index("asset_tags_by_tag", table_name="asset_tags")
    op.drop_table("asset_tags")
    op.drop_index("tags_by_search_name", table_name="tags", postgresql_using="gin")
    op.drop_table("tags")
    op.drop_index("import_jobs_by_creator", table_name="import_jobs")
    op.drop_table("import_jobs")

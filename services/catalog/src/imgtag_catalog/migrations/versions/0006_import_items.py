"""Import reports one row per entry (import_items) instead of a JSON array rewritten per entry,
and the reason and code of a failed import.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column("import_jobs", "items")
    op.add_column("import_jobs", sa.Column("error_reason", sa.Text(), server_default="", nullable=False))
    op.add_column("import_jobs", sa.Column("error_code", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "import_items",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("entry_index", sa.Integer(), nullable=False),
        sa.Column("source_item", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("asset_id", sa.UUID(), nullable=True),
        sa.Column("error_code", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("error_message", sa.Text(), server_default="", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["import_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "entry_index"),
    )


def downgrade() -> None:
    op.drop_table("import_items")
    op.drop_column("import_jobs", "error_code")
    op.drop_column("import_jobs", "error_reason")
    op.add_column(
        "import_jobs",
        sa.Column(
            "items", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
    )

"""A trigram index on the text read in photos (OCR), so that a search for words printed in a
photo finds it through the index rather than by reading every asset (domain/search.py, the
"words" list). pg_trgm is a trusted extension: the database owner may create it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        "CREATE INDEX assets_recognized_text_trigrams ON assets "
        "USING gin (recognized_text gin_trgm_ops) WHERE recognized_text <> ''"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS assets_recognized_text_trigrams")

"""index stories.merged_into_id: following and re-pointing merges without a table scan

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Every merge re-points the stories that had been merged into the absorbed one
(``WHERE merged_into_id = ?``); without this index that is a scan of every story ever made,
which made the clustering stage's cost per entry grow with the store (bench/cluster_bench.py).
Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_stories_merged_into_id", "stories", ["merged_into_id"])


def downgrade() -> None:
    op.drop_index("ix_stories_merged_into_id", table_name="stories")

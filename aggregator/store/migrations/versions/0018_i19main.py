"""Stories merged away, by when: a partial index for the webhook detector's look at merges

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

The webhook detector asks for the stories merged since a moment at every look (every few
seconds); without an index on ``merged_at`` that read every story. Few stories are ever merged,
so the index holds only those (``merged_at IS NOT NULL``) and costs a new story nothing.
Migrations are frozen history once released: plain SQL text here, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_MERGED = "merged_at IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_stories_merged_at",
        "stories",
        ["merged_at"],
        sqlite_where=sa.text(_MERGED),
        postgresql_where=sa.text(_MERGED),
    )


def downgrade() -> None:
    op.drop_index("ix_stories_merged_at", table_name="stories")

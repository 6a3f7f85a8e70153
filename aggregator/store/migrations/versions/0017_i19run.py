"""Stories an output may list, newest first: a partial index for the outputs' walk

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

The outputs ask for each category's newest live, settled stories every few seconds; walking
``published_at`` alone went through every unsettled story of a poll round under way (hundreds
of thousands on a first poll of 10,000 feeds). Migrations are frozen history once released:
plain SQL text here, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_LISTED = "coalesce(merged_into_id, 0) = 0 AND settled_at IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_stories_listed",
        "stories",
        ["published_at"],
        sqlite_where=sa.text(_LISTED),
        postgresql_where=sa.text(_LISTED),
    )


def downgrade() -> None:
    op.drop_index("ix_stories_listed", table_name="stories")

"""entries.date_source: where an entry's published date came from (feed, feed-localized,
first-seen, backlog); NULL for entries stored before it was recorded

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("date_source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_column("date_source")

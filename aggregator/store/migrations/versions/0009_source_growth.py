"""sources.last_repeated_entries and sources.warning: feeds that rotate ids, growth caps

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-14

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_repeated_entries", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("warning", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("warning")
        batch_op.drop_column("last_repeated_entries")

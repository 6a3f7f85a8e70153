"""source health and redirects: configured URL, pending permanent redirect, entry counts, rhythm

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("configured_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("redirect_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("redirect_count", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("last_new_entries", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_updated_entries", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("publish_interval_seconds", sa.Float(), nullable=True))
    op.execute("UPDATE sources SET configured_url = url")


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        for column in ("publish_interval_seconds", "last_updated_entries", "last_new_entries",
                       "redirect_count", "redirect_url", "configured_url"):
            batch_op.drop_column(column)

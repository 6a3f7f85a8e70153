"""sources.feed_ttl_seconds: the publisher's own pace (<ttl>, sy:updatePeriod), kept so a 304
or an unchanged body does not forget it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty for existing rows: the next changed body fills it.
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feed_ttl_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("feed_ttl_seconds")

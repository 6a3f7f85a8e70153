"""sources.public_only: sources added through the API or admin pages fetch public addresses only

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_only", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("public_only")

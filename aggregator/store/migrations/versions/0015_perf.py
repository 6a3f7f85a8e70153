"""catalog_marks: the digest of the catalog the source rows were last synced with

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_marks",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_marks")

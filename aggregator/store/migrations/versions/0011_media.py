"""Media: an entry's picture

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

- ``entries.image``: the entry's picture (media:thumbnail, a Media RSS image, itunes:image,
  JSON Feed ``image``) as a JSON object (url, width, height); NULL when it has none and
  for rows written before. Enclosures already had their column.

Migrations are frozen history once released: they use plain SQLAlchemy types, never the live
models.
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
        batch_op.add_column(sa.Column("image", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_column("image")

"""editors' corrections per category and undo memory: category and detail on story overrides

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
``category`` scopes a ``pin`` or ``hide`` to one category (NULL: a global hide); ``detail``
remembers what a correction changed (a merge's moved entries, a split's former story) so undo
can restore it at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("story_overrides", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("detail", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_story_overrides_category"), ["category"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("story_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_story_overrides_category"))
        batch_op.drop_column("detail")
        batch_op.drop_column("category")

"""Stories settle: the clustering batch that first decides a story fixes its uid

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

``stories.settled_at``: when the clustering stage (or an editor's split) fixed the story's uid.
A story the write path founded stays unsettled, and out of every output, until its first
clustering batch has decided all its members; that batch gives it the uid of its canonical
member, so the uid does not depend on which copy was polled first. Stories that exist already
were published under their uids: they count as settled since they were first seen.

Migrations are frozen history once released: they use plain SQLAlchemy types, never the live
models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE stories SET settled_at = first_seen_at")


def downgrade() -> None:
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_column("settled_at")

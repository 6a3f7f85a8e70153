"""entry_categories.origin: whether the editors' rules or the topic match took the entry

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Until now the store told a topic-match decision by the start of its reason text; the column says
it, and the existing rows are filled from that same text once.

Migrations are frozen history: they use plain SQLAlchemy types, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entry_categories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=16), nullable=False,
                                      server_default="rules"))
    op.execute("UPDATE entry_categories SET origin = 'topic' "
               "WHERE reason LIKE 'topic similarity%'")


def downgrade() -> None:
    with op.batch_alter_table("entry_categories", schema=None) as batch_op:
        batch_op.drop_column("origin")

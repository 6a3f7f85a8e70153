"""December 2026: who took an entry into a category, where its date came from, a feed's own
pace, and a source's growth

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

- ``entry_categories.origin``: whether the editors' rules or the topic match took the entry.
  Until now the store told a topic-match decision by the start of its reason text; existing
  rows are filled from that same text once.
- ``entries.date_source``: where an entry's date came from (the feed, a localized date, first
  seen, backlog); empty for rows written before.
- ``sources.feed_ttl_seconds``: the publisher's own pace (<ttl>, sy:updatePeriod), kept so a
  304 or an unchanged body does not forget it; the next changed body fills it.
- ``sources.last_repeated_entries`` and ``sources.warning``: a feed rotating its ids or
  reaching a growth cap, shown in source health.

Migrations are frozen history once released: they use plain SQLAlchemy types, never the live
models.
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
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("date_source", sa.String(length=16), nullable=True))
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feed_ttl_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_repeated_entries", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("warning", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("warning")
        batch_op.drop_column("last_repeated_entries")
        batch_op.drop_column("feed_ttl_seconds")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_column("date_source")
    with op.batch_alter_table("entry_categories", schema=None) as batch_op:
        batch_op.drop_column("origin")

"""Search on SQLite: FTS5 gathers up to 8 MiB of a batch before it writes a segment

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

FTS5 builds a batch's index in memory and writes it out as a new segment whenever that
reaches its ``hashsize`` (1 MiB by default): one ``index_pending`` batch of 5,000 entries made
many small segments, which its automatic merges then read and wrote again, level after level.
With 8 MiB a batch is a few large segments, so fewer merges rewrite the same data: the
indexing's CPU per entry fell to about 0.75x, for 11-18 MB more peak memory while a batch is
indexed (16 MiB: 0.7x, for more; docs/benchmarks.md, "The store's work per feed, fifth
round"). The index
holds the same terms, so every search answers the same. A setting in the table's own
``entry_search_config``, written through FTS5's command so every connection reads it.
PostgreSQL: nothing to do.
Migrations are frozen history once released: plain SQL, never the live models.
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # 8 MiB.
    op.execute("INSERT INTO entry_search(entry_search, rank) VALUES ('hashsize', 8388608)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # FTS5's default again; a command rather than a DELETE, so open connections see it too.
    op.execute("INSERT INTO entry_search(entry_search, rank) VALUES ('hashsize', 1048576)")

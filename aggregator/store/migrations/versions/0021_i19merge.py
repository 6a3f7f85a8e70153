"""Search on SQLite: FTS5 merges 16 segments of a level at a time instead of 4

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08

FTS5 merges a level's segments into one of the next level once ``automerge`` of them wait (4 by
default). As the index grows, those merges read and write the same positions again and again:
indexing 323,146 entries (a first poll of 10,000 feeds) cost 0.098-0.107 ms of CPU per entry
with 4 and 0.065 with 16, the same hits and the same search time, for a file 4% larger
(docs/benchmarks.md, "After the seventh round"). A setting in the table's own
``entry_search_config``, written through FTS5's command so every connection reads it.
PostgreSQL: nothing to do.
Migrations are frozen history once released: plain SQL, never the live models.
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("INSERT INTO entry_search(entry_search, rank) VALUES ('automerge', 16)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # FTS5's default again; a command rather than a DELETE, so open connections see it too.
    op.execute("INSERT INTO entry_search(entry_search, rank) VALUES ('automerge', 4)")

"""Search: a trigram index over entries' titles and text, on both databases

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

- SQLite: ``entry_search``, an FTS5 table with the trigram tokenizer over ``entries.title`` and
  ``entries.text`` (external content: the text is not stored twice), kept up to date by three
  triggers on ``entries`` (insert, update of title or text, delete, so retention too), and
  filled once from the rows already stored. Trigrams rather than words because Chinese and
  Japanese titles have no spaces to cut words at.
- PostgreSQL: a GIN ``pg_trgm`` index on ``title || ' ' || text``, which serves ``ILIKE``
  substring queries. ``to_tsvector('simple', …)`` was measured and left out: it keeps
  "北京大学" as one lexeme, so a query for "北京" finds nothing. Without the rights to create
  the extension the index is skipped and search still answers, by a scan.

A later migration that rebuilds ``entries`` on SQLite (``batch_alter_table`` copies it into a
new table) drops these triggers and must create them again (tests/integration/test_search.py
checks that the index follows inserts, updates and deletes at head).

Migrations are frozen history once released: they use plain SQL, never the live models.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_SQLITE_UP = (
    "CREATE VIRTUAL TABLE entry_search USING fts5("
    "title, text, content='entries', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER entry_search_insert AFTER INSERT ON entries BEGIN "
    "INSERT INTO entry_search(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "CREATE TRIGGER entry_search_delete AFTER DELETE ON entries BEGIN "
    "INSERT INTO entry_search(entry_search, rowid, title, text) "
    "VALUES ('delete', old.id, old.title, old.text); END",
    "CREATE TRIGGER entry_search_update AFTER UPDATE OF title, text ON entries BEGIN "
    "INSERT INTO entry_search(entry_search, rowid, title, text) "
    "VALUES ('delete', old.id, old.title, old.text); "
    "INSERT INTO entry_search(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "INSERT INTO entry_search(entry_search) VALUES ('rebuild')",
)
_SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS entry_search_update",
    "DROP TRIGGER IF EXISTS entry_search_delete",
    "DROP TRIGGER IF EXISTS entry_search_insert",
    "DROP TABLE IF EXISTS entry_search",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        log.warning("pg_trgm is not available (%s); search will scan entries without an "
                    "index", exc.orig)
        return
    op.execute("CREATE INDEX ix_entries_search_trgm ON entries "
               "USING gin ((title || ' ' || text) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_DOWN:
            op.execute(statement)
        return
    op.execute("DROP INDEX IF EXISTS ix_entries_search_trgm")

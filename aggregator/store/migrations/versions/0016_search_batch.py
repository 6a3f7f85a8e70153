"""Search on SQLite: new entries are indexed in batches, not by a trigger per inserted row

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

Migration 0013's insert trigger tokenised every new entry inside the poll's write, one feed per
transaction, which made writing entries about four times slower (docs/benchmarks.md, "Search
index"). Now an inserted entry only gets a row in ``entry_search_pending``; the store moves the
pending entries into ``entry_search`` in one statement (``search.index_pending``) before any
search reads the index and whenever the backlog grows, so FTS5 builds one segment per batch.

The update and delete triggers stay, and take the backlog into account: a pending entry is not
in the index yet, so an edit or a delete of one only touches the backlog (an FTS5 'delete' with
text that was never indexed would corrupt the index). PostgreSQL keeps its GIN index as it is.

A later migration that rebuilds ``entries`` on SQLite drops these triggers and must create them
again. Migrations are frozen history once released: plain SQL, never the live models.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_DROP_TRIGGERS = (
    "DROP TRIGGER IF EXISTS entry_search_update",
    "DROP TRIGGER IF EXISTS entry_search_delete",
    "DROP TRIGGER IF EXISTS entry_search_insert",
)
_SQLITE_UP = (
    *_DROP_TRIGGERS,
    "CREATE TABLE entry_search_pending (entry_id INTEGER NOT NULL PRIMARY KEY)",
    "CREATE TRIGGER entry_search_insert AFTER INSERT ON entries BEGIN "
    "INSERT OR IGNORE INTO entry_search_pending(entry_id) VALUES (new.id); END",
    "CREATE TRIGGER entry_search_delete AFTER DELETE ON entries BEGIN "
    "INSERT INTO entry_search(entry_search, rowid, title, text) "
    "SELECT 'delete', old.id, old.title, old.text WHERE NOT EXISTS "
    "(SELECT 1 FROM entry_search_pending WHERE entry_id = old.id); "
    "DELETE FROM entry_search_pending WHERE entry_id = old.id; END",
    "CREATE TRIGGER entry_search_update AFTER UPDATE OF title, text ON entries "
    "WHEN NOT EXISTS (SELECT 1 FROM entry_search_pending WHERE entry_id = old.id) BEGIN "
    "INSERT INTO entry_search(entry_search, rowid, title, text) "
    "VALUES ('delete', old.id, old.title, old.text); "
    "INSERT INTO entry_search_pending(entry_id) VALUES (new.id); END",
)
# 0013's triggers, after the backlog is indexed.
_SQLITE_DOWN = (
    "INSERT INTO entry_search(rowid, title, text) SELECT id, title, text FROM entries "
    "WHERE id IN (SELECT entry_id FROM entry_search_pending)",
    *_DROP_TRIGGERS,
    "DROP TABLE entry_search_pending",
    "CREATE TRIGGER entry_search_insert AFTER INSERT ON entries BEGIN "
    "INSERT INTO entry_search(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    "CREATE TRIGGER entry_search_delete AFTER DELETE ON entries BEGIN "
    "INSERT INTO entry_search(entry_search, rowid, title, text) "
    "VALUES ('delete', old.id, old.title, old.text); END",
    "CREATE TRIGGER entry_search_update AFTER UPDATE OF title, text ON entries BEGIN "
    "INSERT INTO entry_search(entry_search, rowid, title, text) "
    "VALUES ('delete', old.id, old.title, old.text); "
    "INSERT INTO entry_search(rowid, title, text) VALUES (new.id, new.title, new.text); END",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in _SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in _SQLITE_DOWN:
        op.execute(statement)

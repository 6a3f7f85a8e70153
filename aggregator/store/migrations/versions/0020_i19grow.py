"""Pending entries in the clustering stage's order: a partial index for its batches

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07

Each batch of the clustering stage reads the first pending entries (``clustered_at`` NULL) by
(published_at, source_id, identity_key, id). Without an index in that order both databases
read and sorted every pending entry for every batch: after a first poll of 10,000 feeds
(320,000 entries pending) that was most of the ``poll`` process's CPU, growing with the square
of the entries (docs/benchmarks.md, "The main process's cost per feed as sources grow").
The index holds only pending entries, and only their time: the rest of the order is sorted
among entries of equal time (SQLite's "right part of ORDER BY", PostgreSQL's incremental
sort), and a short key is cheap to write while a first poll leaves every entry pending.
``clustered_at`` leads it, so SQLite's planner prefers it to ``ix_entries_clustered_at`` and
the stage's query orders by it first (one value: NULL).
Migrations are frozen history once released: plain SQL text here, never the live models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_PENDING = "clustered_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_entries_pending",
        "entries",
        ["clustered_at", "published_at"],
        sqlite_where=sa.text(_PENDING),
        postgresql_where=sa.text(_PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_entries_pending", table_name="entries")

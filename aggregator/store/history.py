"""Stored entries as the classifier reads them, with the category decisions stored for them.

Reads for the rules dry run (a category's recent history, streamed a page at a time so memory
stays flat however long the window) and for the clustering stage's topic match, plus the one
write the topic match makes: the categories it accepted, never replacing a stored decision.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StoreError
from aggregator.store.entries import _chunks, _when
from aggregator.store.tables import CATEGORIES, ENTRIES
from aggregator.types import CategoryMatch, CategoryOrigin

# Entries per read of a dry run: texts can be long, so pages stay small.
HISTORY_PAGE = 200


@dataclass(frozen=True)
class StoredEntry:
    """A stored entry with the fields classification reads (``classify.Classifiable``)."""

    entry_id: int
    source_id: str
    title: str
    text: str
    tags: tuple[str, ...]
    author: str | None
    url: str | None
    published_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    """A stored entry and the stored decision of one category: ``reason`` is None when the
    category did not take the entry."""

    entry: StoredEntry
    score: float | None = None
    reason: str | None = None
    origin: CategoryOrigin | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is not None


def _columns() -> list[sa.ColumnElement[object]]:
    return [
        ENTRIES.c.id,
        ENTRIES.c.source_id,
        ENTRIES.c.title,
        ENTRIES.c.text,
        ENTRIES.c.tags,
        ENTRIES.c.author,
        ENTRIES.c.url,
        ENTRIES.c.link,
        ENTRIES.c.published_at,
    ]


def _stored(row: Any) -> StoredEntry:
    tags = row.tags if isinstance(row.tags, list) else []
    return StoredEntry(
        entry_id=int(row.id),
        source_id=row.source_id,
        title=row.title or "",
        text=row.text or "",
        tags=tuple(str(tag) for tag in tags),
        author=row.author,
        url=row.url or row.link,
        published_at=row.published_at,
    )


def history_page(
    connection: Connection,
    category_id: str,
    source_ids: Sequence[str],
    since: datetime,
    after: int,
    limit: int = HISTORY_PAGE,
) -> list[HistoryEntry]:
    """Entries of ``source_ids`` published from ``since`` on with an id above ``after``, in id
    order, each with ``category_id``'s stored decision."""
    if not source_ids:
        return []
    joined = ENTRIES.outerjoin(
        CATEGORIES,
        sa.and_(CATEGORIES.c.entry_id == ENTRIES.c.id, CATEGORIES.c.category_id == category_id),
    )
    rows = connection.execute(
        sa.select(*_columns(), CATEGORIES.c.score, CATEGORIES.c.reason, CATEGORIES.c.origin)
        .select_from(joined)
        .where(
            ENTRIES.c.source_id.in_(sorted(set(source_ids))),
            ENTRIES.c.published_at >= _when("since"),
            ENTRIES.c.id > after,
        )
        .order_by(ENTRIES.c.id)
        .limit(limit),
        {"since": since},
    )
    return [
        HistoryEntry(
            _stored(row),
            row.score,
            row.reason,
            None if row.origin is None else CategoryOrigin(row.origin),
        )
        for row in rows
    ]


def iter_history(
    engine: Engine,
    category_id: str,
    source_ids: Sequence[str],
    since: datetime,
    page: int = HISTORY_PAGE,
) -> Iterator[HistoryEntry]:
    """Every entry of ``history_page``, a page per short read (no transaction held open)."""
    after = 0
    while True:
        try:
            with engine.connect() as connection:
                found = history_page(connection, category_id, source_ids, since, after, page)
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc
        yield from found
        if len(found) < page:
            return
        after = found[-1].entry.entry_id


def stored_entries(connection: Connection, entry_ids: Sequence[int]) -> list[StoredEntry]:
    """These entries as the classifier reads them, in id order."""
    found: list[StoredEntry] = []
    for chunk in _chunks(sorted(set(entry_ids))):
        rows = connection.execute(
            sa.select(*_columns()).where(ENTRIES.c.id.in_(chunk)).order_by(ENTRIES.c.id)
        )
        found.extend(_stored(row) for row in rows)
    return found


def accepted_categories(connection: Connection, entry_ids: Sequence[int]) -> dict[int, set[str]]:
    """Entry id → the categories that took it (entries in none are left out)."""
    found: dict[int, set[str]] = {}
    for chunk in _chunks(sorted(set(entry_ids))):
        rows = connection.execute(
            sa.select(CATEGORIES.c.entry_id, CATEGORIES.c.category_id).where(
                CATEGORIES.c.entry_id.in_(chunk)
            )
        )
        for entry_id, category_id in rows:
            found.setdefault(int(entry_id), set()).add(category_id)
    return found


def add_categories(connection: Connection, matches: Sequence[tuple[int, CategoryMatch]]) -> int:
    """Store these (entry id, match) pairs; a pair already stored (by a poll that ran in the
    meantime) keeps its decision. Returns how many were written."""
    values = [
        {
            "entry_id": entry_id,
            "category_id": m.category_id,
            "score": m.score,
            "reason": m.reason[:500],
            "origin": m.origin.value,
        }
        for entry_id, m in matches
    ]
    if not values:
        return 0
    dialect = connection.dialect.name
    statement: sa.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(CATEGORIES).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(CATEGORIES).on_conflict_do_nothing()
    else:  # pragma: no cover - the store runs on SQLite and PostgreSQL only
        raise StoreError(f"unsupported database {dialect!r}")
    # RETURNING, not rowcount: drivers disagree on rowcount after ON CONFLICT DO NOTHING.
    statement = statement.returning(CATEGORIES.c.entry_id)
    return sum(len(connection.execute(statement, value).all()) for value in values)

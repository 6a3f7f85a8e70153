"""Retention in the store: pruning old entries and the stories they leave empty, in bounded
batches, leaving tombstones; the save path's tombstone check; tombstone expiry.

Each batch is one transaction under the clustering lock (``clustering.lock``), so pruning never
interleaves with a clustering batch or an editor's correction, and bumps the clustering version
so every process rebuilds its in-memory clusterer. Editors' corrections that name a pruned entry
or story are closed (``undone_by`` = ``retention``) and lose that reference; they stay listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from aggregator.store import clustering
from aggregator.store.clustering import ClusterWriter
from aggregator.store.entries import _chunks
from aggregator.store.models import (
    UTCDateTime,
)
from aggregator.store.tables import (
    CATEGORIES,
    ENTRIES,
    FEATURES,
    FULL_TEXTS,
    OVERRIDES,
    STORIES,
    TOMBSTONES,
)

RETENTION_BY = "retention"


@dataclass(frozen=True)
class Preview:
    """What a prune would remove now (``prune --dry-run``); stories are an estimate."""

    entries: int
    stories: int
    overrides: int
    tombstones: int


def _when(name: str) -> sa.BindParameter[datetime]:
    return sa.bindparam(name, type_=UTCDateTime())


# Run for every saved feed: built once.
_TOMBSTONED = sa.select(TOMBSTONES.c.identity_key).where(
    TOMBSTONES.c.source_id == sa.bindparam("source_id"),
    TOMBSTONES.c.identity_key.in_(sa.bindparam("keys", expanding=True)),
)


def _insert(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def tombstoned(
    connection: Connection, source_id: str, keys: Sequence[str], now: datetime
) -> set[str]:
    """Which of ``keys`` (identity keys of ``source_id``) were pruned; they are marked as still
    listed, which keeps their tombstones alive. One primary-key lookup per 500 keys."""
    found: set[str] = set()
    for chunk in _chunks(sorted(set(keys))):
        found.update(
            connection.execute(_TOMBSTONED, {"source_id": source_id, "keys": chunk}).scalars()
        )
    for chunk in _chunks(sorted(found)):
        connection.execute(
            TOMBSTONES.update()
            .where(TOMBSTONES.c.source_id == source_id, TOMBSTONES.c.identity_key.in_(chunk))
            .values(seen_at=_when("now")),
            {"now": now},
        )
    return found


def prune_entries(
    connection: Connection, *, cutoff: datetime, now: datetime, limit: int
) -> tuple[int, int]:
    """Remove up to ``limit`` entries published before ``cutoff`` (oldest ids first), leaving
    tombstones; returns (entries removed, corrections closed). Caller holds the lock."""
    rows = connection.execute(
        sa.select(ENTRIES.c.id, ENTRIES.c.source_id, ENTRIES.c.identity_key, ENTRIES.c.story_id)
        .where(ENTRIES.c.published_at < _when("cutoff"))
        .order_by(ENTRIES.c.id)
        .limit(limit),
        {"cutoff": cutoff},
    ).all()
    if not rows:
        return 0, 0
    closed = _remove(connection, rows, now)
    ClusterWriter(connection).bump(now)
    return len(rows), closed


def trim_source(connection: Connection, source_id: str, *, keep: int, now: datetime) -> int:
    """Remove the oldest entries (by publication) of ``source_id`` beyond its newest ``keep``,
    leaving tombstones so its feed does not bring them back; returns how many. Only entries
    the clustering stage has handled go: it may be computing the pending ones outside the lock,
    and they are the ones just polled, so they go, if they must, after their turn. Caller holds
    the lock."""
    total = connection.execute(
        sa.select(sa.func.count()).select_from(ENTRIES).where(ENTRIES.c.source_id == source_id)
    ).scalar_one()
    excess = int(total) - keep
    if excess <= 0:
        return 0
    rows = connection.execute(
        sa.select(ENTRIES.c.id, ENTRIES.c.source_id, ENTRIES.c.identity_key, ENTRIES.c.story_id)
        .where(ENTRIES.c.source_id == source_id, ENTRIES.c.clustered_at.is_not(None))
        .order_by(ENTRIES.c.published_at, ENTRIES.c.id)
        .limit(excess)
    ).all()
    for chunk in _chunks(rows):
        _remove(connection, chunk, now)
    ClusterWriter(connection).bump(now)
    return len(rows)


def _remove(connection: Connection, rows: Sequence[Any], now: datetime) -> int:
    """Delete entries (rows of id, source_id, identity_key, story_id) with their categories
    features and full texts, leaving tombstones; returns the corrections closed."""
    ids = [row.id for row in rows]
    connection.execute(
        _insert(connection)(TOMBSTONES).on_conflict_do_nothing(),
        [
            {"source_id": row.source_id, "identity_key": row.identity_key, "pruned_at": now}
            for row in rows
        ],
    )
    closed = _detach(connection, OVERRIDES.c.entry_id, OVERRIDES.c.other_entry_id, ids, now)
    for table in (CATEGORIES, FEATURES, FULL_TEXTS):
        connection.execute(table.delete().where(table.c.entry_id.in_(ids)))
    connection.execute(ENTRIES.delete().where(ENTRIES.c.id.in_(ids)))
    touched = sorted({row.story_id for row in rows if row.story_id is not None})
    members = (
        sa.select(sa.func.count())
        .select_from(ENTRIES)
        .where(ENTRIES.c.story_id == STORIES.c.id)
        .scalar_subquery()
    )
    for chunk in _chunks(touched):
        connection.execute(
            STORIES.update().where(STORIES.c.id.in_(chunk)).values(entry_count=members)
        )
    return closed


def _detach(
    connection: Connection,
    first: sa.Column[Any],
    second: sa.Column[Any],
    ids: list[int],
    now: datetime,
) -> int:
    """Close the corrections naming one of ``ids`` in ``first`` or ``second`` and drop those
    references (the rows they named are going)."""
    closed = connection.execute(
        OVERRIDES.update()
        .where(sa.or_(first.in_(ids), second.in_(ids)), OVERRIDES.c.undone_at.is_(None))
        .values(undone_at=_when("now"), undone_by=RETENTION_BY),
        {"now": now},
    )
    for column in (first, second):
        connection.execute(OVERRIDES.update().where(column.in_(ids)).values({column.name: None}))
    return int(closed.rowcount or 0)


def _orphans(cutoff_param: str) -> sa.Select[Any]:
    """Stories from before the cutoff that nothing points at any more: no member, no entry
    that started in them, no story merged into them."""
    later = STORIES.alias("later")
    return sa.select(STORIES.c.id).where(
        STORIES.c.published_at < _when(cutoff_param),
        ~sa.exists().where(ENTRIES.c.story_id == STORIES.c.id),
        ~sa.exists().where(ENTRIES.c.origin_story_id == STORIES.c.id),
        ~sa.exists().where(later.c.merged_into_id == STORIES.c.id),
    )


def prune_stories(
    connection: Connection, *, cutoff: datetime, now: datetime, limit: int
) -> tuple[int, int, int]:
    """Remove up to ``limit`` stories left empty (see ``_orphans``); returns (stories removed,
    live ones among them, corrections closed): the stories an editor saw are the live ones,
    the others were merged away into a story that remains or goes too. A merge chain goes one
    link per batch: the story merged away first, the one it was merged into once nothing
    points at it any more."""
    ids = list(
        connection.execute(
            _orphans("cutoff").order_by(STORIES.c.id).limit(limit), {"cutoff": cutoff}
        ).scalars()
    )
    if not ids:
        return 0, 0, 0
    live = connection.execute(
        sa.select(sa.func.count())
        .select_from(STORIES)
        .where(STORIES.c.id.in_(ids), STORIES.c.merged_into_id.is_(None))
    ).scalar_one()
    closed = _detach(connection, OVERRIDES.c.story_id, OVERRIDES.c.other_story_id, ids, now)
    connection.execute(STORIES.delete().where(STORIES.c.id.in_(ids)))
    ClusterWriter(connection).bump(now)
    return len(ids), int(live), closed


def expire_tombstones(connection: Connection, *, before: datetime, limit: int) -> int:
    """Forget up to ``limit`` tombstones not pruned nor seen listed since ``before``."""
    last = sa.func.coalesce(TOMBSTONES.c.seen_at, TOMBSTONES.c.pruned_at)
    keys = (
        sa.select(TOMBSTONES.c.source_id, TOMBSTONES.c.identity_key)
        .where(last < _when("before"))
        .limit(limit)
    )
    result = connection.execute(
        TOMBSTONES.delete().where(
            sa.tuple_(TOMBSTONES.c.source_id, TOMBSTONES.c.identity_key).in_(keys)
        ),
        {"before": before},
    )
    return int(result.rowcount or 0)


def preview(connection: Connection, *, cutoff: datetime, tombstones_before: datetime) -> Preview:
    old = ENTRIES.c.published_at < _when("cutoff")
    entries = connection.execute(
        sa.select(sa.func.count()).select_from(ENTRIES).where(old), {"cutoff": cutoff}
    ).scalar_one()
    alive = sa.exists().where(
        sa.or_(ENTRIES.c.story_id == STORIES.c.id, ENTRIES.c.origin_story_id == STORIES.c.id),
        ENTRIES.c.published_at >= _when("cutoff"),
    )
    # Live stories only, as prune reports them: merged-away ones were never shown as stories.
    stories = connection.execute(
        sa.select(sa.func.count())
        .select_from(STORIES)
        .where(
            STORIES.c.published_at < _when("cutoff"), STORIES.c.merged_into_id.is_(None), ~alive
        ),
        {"cutoff": cutoff},
    ).scalar_one()
    named = sa.select(ENTRIES.c.id).where(old)
    overrides = connection.execute(
        sa.select(sa.func.count())
        .select_from(OVERRIDES)
        .where(
            OVERRIDES.c.undone_at.is_(None),
            sa.or_(OVERRIDES.c.entry_id.in_(named), OVERRIDES.c.other_entry_id.in_(named)),
        ),
        {"cutoff": cutoff},
    ).scalar_one()
    tombstones = connection.execute(
        sa.select(sa.func.count())
        .select_from(TOMBSTONES)
        .where(sa.func.coalesce(TOMBSTONES.c.seen_at, TOMBSTONES.c.pruned_at) < _when("before")),
        {"before": tombstones_before},
    ).scalar_one()
    return Preview(int(entries), int(stories), int(overrides), int(tombstones))


def lock(connection: Connection) -> None:
    """Take the clustering lock for a retention batch (see module docstring)."""
    clustering.lock(connection)

"""The full-text stage's rows (``entry_full_texts``): which entries are due a check of their
article page, what the last check found, and the outcomes per source editors see.

Functions on an open connection; ``Store`` owns the transactions around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.models import UTCDateTime
from aggregator.store.tables import ENTRIES, FULL_TEXTS
from aggregator.types import FullTextOutcome

MAX_ERROR = 2000
# The session lock of the stage's turn on PostgreSQL; any constant no other lock uses.
TURN_LOCK_KEY = 0x616767465554584C  # "aggFUTXL"


@dataclass(frozen=True)
class FullTextTask:
    """An entry whose article page is due a check, with what the last check left."""

    entry_id: int
    source_id: str
    url: str
    entry_hash: str
    # The feed's own plain text: an extraction no longer than this adds nothing.
    feed_text_chars: int
    outcome: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    failures: int = 0


@dataclass(frozen=True)
class FullTextRecord:
    """What one check found, as stored (``content_html``/``text`` empty unless extracted)."""

    entry_id: int
    source_id: str
    url: str
    outcome: FullTextOutcome
    entry_hash: str
    checked_at: datetime
    content_html: str = ""
    text: str = ""
    error_kind: str | None = None
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    failures: int = 0
    extracted_at: datetime | None = None


def due(
    connection: Connection,
    source_ids: Sequence[str],
    *,
    since: datetime,
    retry_before: datetime,
    max_failures: int,
    limit: int,
) -> list[FullTextTask]:
    """Entries of ``source_ids`` published since ``since``, newest first, whose page was never
    checked, whose entry changed since its check (another content hash), or whose last check
    failed before ``retry_before`` fewer than ``max_failures`` times in a row."""
    if not source_ids:
        return []
    checked = FULL_TEXTS
    when = sa.bindparam("since", since, type_=UTCDateTime())
    retry = sa.bindparam("retry", retry_before, type_=UTCDateTime())
    rows = connection.execute(
        sa.select(
            ENTRIES.c.id,
            ENTRIES.c.source_id,
            ENTRIES.c.url,
            ENTRIES.c.link,
            ENTRIES.c.content_hash,
            sa.func.length(ENTRIES.c.text).label("chars"),
            checked.c.outcome,
            checked.c.entry_hash,
            checked.c.etag,
            checked.c.last_modified,
            checked.c.body_hash,
            checked.c.failures,
        )
        .select_from(ENTRIES.outerjoin(checked, checked.c.entry_id == ENTRIES.c.id))
        .where(
            ENTRIES.c.source_id.in_(list(source_ids)),
            ENTRIES.c.published_at >= when,
            sa.or_(ENTRIES.c.url.is_not(None), ENTRIES.c.link.is_not(None)),
            sa.or_(
                checked.c.entry_id.is_(None),
                checked.c.entry_hash != ENTRIES.c.content_hash,
                sa.and_(
                    checked.c.outcome == FullTextOutcome.FAILED.value,
                    checked.c.failures < max_failures,
                    checked.c.checked_at <= retry,
                ),
            ),
        )
        .order_by(ENTRIES.c.published_at.desc(), ENTRIES.c.id.desc())
        .limit(limit)
    )
    tasks = []
    for row in rows:
        changed = row.entry_hash is not None and row.entry_hash != row.content_hash
        tasks.append(
            FullTextTask(
                entry_id=row.id,
                source_id=row.source_id,
                url=row.link or row.url,
                entry_hash=row.content_hash,
                feed_text_chars=int(row.chars or 0),
                outcome=row.outcome,
                etag=row.etag,
                last_modified=row.last_modified,
                body_hash=row.body_hash,
                # A changed entry starts a new count: its earlier failures were another text's.
                failures=0 if changed else int(row.failures or 0),
            )
        )
    return tasks


def save(connection: Connection, record: FullTextRecord) -> bool:
    """Store ``record`` over the entry's earlier one; False when the entry is gone (pruned
    while its page was being fetched), and nothing is written."""
    exists = connection.execute(
        sa.select(ENTRIES.c.id).where(ENTRIES.c.id == record.entry_id)
    ).first()
    if exists is None:
        return False
    connection.execute(FULL_TEXTS.delete().where(FULL_TEXTS.c.entry_id == record.entry_id))
    connection.execute(
        FULL_TEXTS.insert().values(
            entry_id=record.entry_id,
            source_id=record.source_id,
            url=record.url[:2048],
            outcome=record.outcome.value,
            error_kind=record.error_kind,
            error=record.error[:MAX_ERROR] if record.error else None,
            content_html=record.content_html,
            text=record.text,
            etag=record.etag,
            last_modified=record.last_modified,
            body_hash=record.body_hash,
            entry_hash=record.entry_hash,
            failures=record.failures,
            checked_at=record.checked_at,
            extracted_at=record.extracted_at,
        )
    )
    return True


def confirm(
    connection: Connection,
    entry_id: int,
    *,
    entry_hash: str,
    checked_at: datetime,
    etag: str | None,
    last_modified: str | None,
) -> None:
    """The page is as it was last time (a 304, or the same body): only the check is new."""
    connection.execute(
        FULL_TEXTS.update()
        .where(FULL_TEXTS.c.entry_id == entry_id)
        .values(
            entry_hash=entry_hash, checked_at=checked_at, etag=etag, last_modified=last_modified
        )
    )


def outcomes(connection: Connection) -> dict[str, dict[str, int]]:
    """source id → {outcome: entries}, over every entry whose page was checked."""
    rows = connection.execute(
        sa.select(FULL_TEXTS.c.source_id, FULL_TEXTS.c.outcome, sa.func.count()).group_by(
            FULL_TEXTS.c.source_id, FULL_TEXTS.c.outcome
        )
    )
    found: dict[str, dict[str, int]] = {}
    for source_id, outcome, count in rows:
        found.setdefault(str(source_id), {})[str(outcome)] = int(count)
    return found


def record_of(connection: Connection, entry_id: int) -> FullTextRecord | None:
    """The stored check of one entry (tests, and the API's entry detail)."""
    row = connection.execute(sa.select(FULL_TEXTS).where(FULL_TEXTS.c.entry_id == entry_id)).first()
    if row is None:
        return None
    return FullTextRecord(
        entry_id=row.entry_id,
        source_id=row.source_id,
        url=row.url,
        outcome=FullTextOutcome(row.outcome),
        entry_hash=row.entry_hash,
        checked_at=row.checked_at,
        content_html=row.content_html,
        text=row.text,
        error_kind=row.error_kind,
        error=row.error,
        etag=row.etag,
        last_modified=row.last_modified,
        body_hash=row.body_hash,
        failures=row.failures,
        extracted_at=row.extracted_at,
    )


def try_turn(connection: Connection) -> bool:
    """Under PostgreSQL, take the turn to run the full-text stage (a session lock held by
    ``connection`` until ``end_turn``); False when another worker has it, so two workers
    never fetch the same article page at once."""
    if connection.dialect.name != "postgresql":
        return True
    return bool(connection.execute(sa.select(sa.func.pg_try_advisory_lock(TURN_LOCK_KEY))).scalar())


def end_turn(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_unlock(TURN_LOCK_KEY)))

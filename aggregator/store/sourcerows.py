"""Source rows: their public view (``SourceStatus``), how the editorial files set them, how a
check is recorded on them (validators, redirects), and whose lease may save a poll.

Functions on an open session or connection; ``Store`` owns the transactions around them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from aggregator.catalog import Catalog, SourceConfig
from aggregator.errors import StoreError
from aggregator.store import leases, marks, retention
from aggregator.store.entries import IN_CHUNK, Written, identity
from aggregator.store.migrate import head_revision
from aggregator.store.models import CatalogMark, Source
from aggregator.store.tables import SOURCES
from aggregator.types import (
    CategoryMatch,
    FetchResult,
    NormalizedEntry,
    SourceState,
    SourceStatus,
)

log = logging.getLogger(__name__)

# A permanent redirect becomes the source's URL only after this many polls in a row saw the
# same target: one 301 can be a misconfiguration being fixed, two in a row are a decision.
PERMANENT_REDIRECT_CONFIRMATIONS = 2
# A feed "rotates ids" when at least this many of a poll's entries with new ids, and most of
# them, repeat content the source already had; one re-post under a new id is not a pattern.
ROTATION_MIN_REPEATS = 3
MAX_WARNING = 1000
# Source rows a catalog sync holds as ORM objects at a time: holding all of a 10,000-source
# catalog's until the commit cost ~60 MB, which the process kept after the sync.
SYNC_CHUNK = 500


def unpolled_status(config: SourceConfig) -> SourceStatus:
    """A configured source the store has not seen yet: state ``new`` (``paused`` when it is
    disabled), no poll history."""
    return SourceStatus(
        id=config.id,
        url=config.url,
        configured_url=config.url,
        title=config.title,
        site_url=config.site_url,
        language=config.language,
        categories=tuple(config.categories),
        state=SourceState.NEW if config.enabled else SourceState.PAUSED,
        interval_seconds=config.interval_seconds,
        etag=None,
        last_modified=None,
        body_hash=None,
        next_check_at=None,
        last_checked_at=None,
        last_success_at=None,
        last_status=None,
        last_duration_ms=None,
        last_bytes=None,
        last_new_entries=None,
        last_updated_entries=None,
        publish_interval_seconds=None,
        error_count=0,
        last_error=None,
        last_error_kind=None,
        public_only=config.public_only,
        full_text=config.full_text,
    )


def status_of(row: Source) -> SourceStatus:
    return SourceStatus(
        id=row.id,
        url=row.url,
        configured_url=row.configured_url,
        title=row.title or row.feed_title,
        site_url=row.site_url,
        language=row.language,
        categories=tuple(row.categories),
        state=SourceState(row.state),
        interval_seconds=row.interval_seconds,
        etag=row.etag,
        last_modified=row.last_modified,
        body_hash=row.body_hash,
        next_check_at=row.next_check_at,
        last_checked_at=row.last_checked_at,
        last_success_at=row.last_success_at,
        last_status=row.last_status,
        last_duration_ms=row.last_duration_ms,
        last_bytes=row.last_bytes,
        last_new_entries=row.last_new_entries,
        last_updated_entries=row.last_updated_entries,
        publish_interval_seconds=row.publish_interval_seconds,
        error_count=row.error_count,
        last_error=row.last_error,
        last_error_kind=row.last_error_kind,
        public_only=row.public_only,
        last_repeated_entries=row.last_repeated_entries,
        warning=row.warning,
        feed_ttl_seconds=row.feed_ttl_seconds,
        full_text=row.full_text,
    )


def catalog_digest(catalog: Catalog) -> str:
    """The digest ``catalog_marks`` keeps of the catalog the rows were synced with."""
    return marks.catalog_digest(catalog, head_revision())


def files_mark(catalog: Catalog) -> str | None:
    """The digest ``catalog_marks`` keeps of the files the rows were synced from, when an idle
    poll may trust it (``marks.files_mark``)."""
    return marks.files_mark(catalog, head_revision())


def marked(session: Session, name: str, digest: str | None) -> bool:
    """Whether the mark ``name`` holds ``digest`` (None: whether there is no such mark)."""
    mark = session.get(CatalogMark, name)
    return (mark.digest if mark is not None else None) == digest


def set_mark(session: Session, name: str, digest: str | None, now: datetime) -> None:
    """Note ``digest`` under ``name`` (None removes the mark) in the sync's own transaction
    (the caller commits): a sync that rolls back leaves the old mark, and the next start
    syncs again."""
    mark = session.get(CatalogMark, name)
    if digest is None:
        if mark is not None:
            session.delete(mark)
    elif mark is None:
        session.add(CatalogMark(name=name, digest=digest, synced_at=now))
    else:
        mark.digest, mark.synced_at = digest, now


def sync(session: Session, catalog: Catalog, now: datetime) -> None:
    """Make source rows match the editorial files; rows never vanish (history stays).
    The caller commits. Rows are read and written ``SYNC_CHUNK`` at a time, so the session
    never holds every row of a large catalog at once."""
    wanted = {s.id: s for s in catalog.sources}
    # Workers starting together must not both insert the same new sources.
    leases.serialize_sync(session.connection())
    known = {row_id for (row_id,) in session.execute(sa.select(SOURCES.c.id))}
    ids = [*wanted, *sorted(known.difference(wanted))]
    for start in range(0, len(ids), SYNC_CHUNK):
        chunk = ids[start : start + SYNC_CHUNK]
        rows = {
            row.id: row for row in session.exec(select(Source).where(col(Source.id).in_(chunk)))
        }
        for source_id in chunk:
            _sync_row(session, rows.get(source_id), source_id, wanted.get(source_id), now)
        session.flush()
        session.expunge_all()
    align_shared_urls(session, now)


def _sync_row(
    session: Session, row: Source | None, source_id: str, config: SourceConfig | None, now: datetime
) -> None:
    if config is None:
        if row is not None and row.state != SourceState.REMOVED:
            row.state = SourceState.REMOVED
        return
    if row is None:
        row = Source(
            id=source_id,
            url=config.url,
            configured_url=config.url,
            created_at=now,
            next_check_at=now,
        )
        session.add(row)
    elif (row.configured_url or row.url) != config.url:
        # The editors changed the URL: it overrides any redirect we followed.
        row.url = row.configured_url = config.url
        row.redirect_url, row.redirect_count = None, 0
        row.etag = row.last_modified = row.body_hash = None
        row.next_check_at = now
    row.title = config.title
    row.site_url = config.site_url or row.site_url
    row.language = config.language
    row.categories = list(config.categories)
    row.interval_seconds = config.interval_seconds
    row.public_only = config.public_only
    row.full_text = config.full_text
    if row.state != SourceState.GONE or not config.enabled:
        row.state = SourceState.ACTIVE if config.enabled else SourceState.PAUSED


def align_shared_urls(session: Session, now: datetime) -> None:
    """Active sources sharing a URL are checked at the earliest of their next checks, so one
    fetch serves them all; the poller then gives them one schedule. A source added (or
    resumed) on a URL already polled makes the others come with it once."""
    by_url: dict[str, list[tuple[str, datetime | None]]] = {}
    for row in session.execute(
        sa.select(SOURCES.c.id, SOURCES.c.url, SOURCES.c.next_check_at).where(
            SOURCES.c.state == SourceState.ACTIVE.value
        )
    ):
        by_url.setdefault(row.url, []).append((row.id, row.next_check_at))
    for group in by_url.values():
        if len(group) < 2:
            continue
        earliest = min(when or now for _id, when in group)
        late = [source_id for source_id, when in group if when != earliest]
        if late:
            session.execute(
                SOURCES.update().where(SOURCES.c.id.in_(late)).values(next_check_at=earliest)
            )


def touch(row: Source, fetch: FetchResult | None, next_check_at: datetime, now: datetime) -> None:
    """Record a check of the source: when, the next one, and what the answer said."""
    values = check_values(
        row.id, row.url, row.redirect_url, row.redirect_count, fetch, next_check_at, now
    )
    for name, value in values.items():
        setattr(row, name, value)


def check_values(
    source_id: str,
    url: str,
    redirect_url: str | None,
    redirect_count: int,
    fetch: FetchResult | None,
    next_check_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The columns ``touch`` sets, for a row with these url and redirect columns."""
    values: dict[str, Any] = {"last_checked_at": now, "next_check_at": next_check_at}
    if fetch is not None:
        values.update(
            _redirect_values(source_id, url, redirect_url, redirect_count, fetch.permanent_redirect)
        )
        values["last_status"] = fetch.status
        values["last_duration_ms"] = round(fetch.elapsed * 1000)
        values["last_bytes"] = fetch.size
        if fetch.etag:
            values["etag"] = fetch.etag
        if fetch.last_modified:
            values["last_modified"] = fetch.last_modified
    return values


def _redirect_values(
    source_id: str, url: str, redirect_url: str | None, redirect_count: int, target: str | None
) -> dict[str, Any]:
    if target is None or target == url:
        return {"redirect_url": None, "redirect_count": 0}
    if target == redirect_url:
        redirect_count += 1
    else:
        redirect_url, redirect_count = target[:2048], 1
    if redirect_count >= PERMANENT_REDIRECT_CONFIRMATIONS:
        log.info("source=%s action=redirect outcome=moved from=%s to=%s", source_id, url, target)
        return {"url": target[:2048], "redirect_url": None, "redirect_count": 0}
    return {"redirect_url": redirect_url, "redirect_count": redirect_count}


def growth_warning(written: Written) -> str | None:
    """What an operator should know about how the poll grew the source, or None."""
    notes = []
    offered = written.new + written.repeated + written.refused
    if written.repeated >= ROTATION_MIN_REPEATS and 2 * written.repeated > offered:
        notes.append(
            f"ids rotate: {written.repeated} of {offered} entries with new ids "
            "repeat content already stored (kept as the same items, not added)"
        )
    if written.refused:
        notes.append(
            f"per-poll cap: stored the newest {written.new} of "
            f"{written.new + written.refused} new entries, the rest come with the next "
            "polls (AGGREGATOR_MAX_NEW_ENTRIES_PER_POLL)"
        )
    return "; ".join(notes) or None


def add_warning(current: str | None, note: str) -> str:
    return (f"{current}; {note}" if current else note)[:MAX_WARNING]


def find(session: Session, source_id: str) -> Source:
    row = session.get(Source, source_id)
    if row is None:
        raise StoreError(f"source {source_id!r} is not in the store; sync the catalog first")
    return row


def leased(
    session: Session, source_id: str, owner: str | None, *, keep: bool = False
) -> Source | None:
    """The source's row to save a poll in. With ``owner`` (the source was claimed) it is
    locked until commit and None when the lease was lost: another worker took the source
    after the lease ran out, and its result, perhaps newer, must stand. The lease ends
    with the save unless ``keep``."""
    if owner is None:
        return find(session, source_id)
    row = session.get(Source, source_id, with_for_update=True)
    if row is None:
        raise StoreError(f"source {source_id!r} is not in the store; sync the catalog first")
    if not still_owned(row, owner, keep=keep):
        return None
    return row


def still_owned(row: Source, owner: str, *, keep: bool = False) -> bool:
    if row.lease_owner != owner:
        log.warning(
            "source=%s action=save outcome=lease-lost holder=%s: another worker "
            "took it after our lease ran out; our result is dropped",
            row.id,
            row.lease_owner,
        )
        return False
    if not keep:
        row.lease_owner, row.leased_until = None, None
    return True


def leased_rows(
    connection: sa.Connection, source_ids: Sequence[str], owner: str | None
) -> dict[str, Any]:
    """``leased`` without ORM objects, for several sources at once (a batch of polls to
    save): by id, each row's id, url, redirect, feed title and site URL columns (a ``Row``);
    a source whose lease was lost is left out. With ``owner`` the rows are locked in id
    order, as every multi-row writer locks them (no deadlock)."""
    wanted = sorted(set(source_ids))
    rows: dict[str, Any] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        query = sa.select(
            SOURCES.c.id,
            SOURCES.c.url,
            SOURCES.c.redirect_url,
            SOURCES.c.redirect_count,
            SOURCES.c.feed_title,
            SOURCES.c.site_url,
            SOURCES.c.lease_owner,
        ).where(SOURCES.c.id.in_(wanted[start : start + IN_CHUNK]))
        if owner is not None:
            query = query.order_by(SOURCES.c.id).with_for_update()
        rows.update((row.id, row) for row in connection.execute(query))
    for source_id in wanted:
        row = rows.get(source_id)
        if row is None:
            raise StoreError(f"source {source_id!r} is not in the store; sync the catalog first")
        if owner is not None and row.lease_owner != owner:
            log.warning(
                "source=%s action=save outcome=lease-lost holder=%s: another worker "
                "took it after our lease ran out; our result is dropped",
                source_id,
                row.lease_owner,
            )
            del rows[source_id]
    return rows


def without_tombstoned(
    connection: sa.Connection,
    source_id: str,
    entries: Sequence[tuple[NormalizedEntry, Sequence[CategoryMatch]]],
    now: datetime,
) -> Sequence[tuple[NormalizedEntry, Sequence[CategoryMatch]]]:
    # One primary-key lookup for the feed's keys: as cheap as asking only for the keys not
    # stored yet, which would take a query of its own to find.
    if not entries:
        return entries
    pruned = retention.tombstoned(
        connection, source_id, [identity(e.identity_key) for e, _ in entries], now
    )
    if not pruned:
        return entries
    return [(e, m) for e, m in entries if identity(e.identity_key) not in pruned]

"""Every read and write the pipeline, the CLI and the web make, behind one ``Store`` class.

A source's poll is saved in ONE transaction (entries, categories, stories, validators), so a
crash at any point loses nothing and duplicates nothing: the next poll re-fetches (validators
were not saved) and the unique (source, identity key) constraint absorbs what was already there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from aggregator.catalog import Catalog
from aggregator.errors import StoreError
from aggregator.store import (
    accounts,
    clustering,
    fulltext,
    leases,
    marks,
    overrides,
    reclassify,
    retention,
    search,
    sourcerows,
)
from aggregator.store import stories as story_reads
from aggregator.store.accounts import AuditNote, AuditView, EditorView
from aggregator.store.clustering import ClusterWriter, PendingEntry
from aggregator.store.engine import WRITE_OPTION, make_engine
from aggregator.store.entries import GrowthLimits, write_entries
from aggregator.store.fulltext import FullTextRecord, FullTextTask
from aggregator.store.gauges import StoreGauges, oldest_due, read_gauges
from aggregator.store.history import HistoryEntry, iter_history
from aggregator.store.models import (
    LISTED_STORIES,
    Entry,
    EntryCategory,
    EntryFeatureRecord,
    EntryFullText,
    Source,
    Story,
)
from aggregator.store.overrides import OverrideView
from aggregator.store.search import SearchHit
from aggregator.store.stories import CategoryDecision, StoryDetail
from aggregator.store.tables import CATEGORIES, ENTRIES, SOURCES, STORIES
from aggregator.store.webhooks import WebhookStore
from aggregator.types import (
    CategoryMatch,
    EntryView,
    FetchResult,
    FullTextOutcome,
    Membership,
    NormalizedEntry,
    PollOutcome,
    PollResult,
    Role,
    SourceState,
    SourceStatus,
    StoryView,
    media_from_json,
)

log = logging.getLogger(__name__)

STORY_PAGE = 500
# A category's newest stories are first sought walking all live stories newest first, this
# many times ``limit`` a page, for at most NEWEST_PAGES pages: a category holding a fair share
# of the stories fills its limit in the first page, without reading its whole membership.
# One that does not is read by membership instead (``_category_query``).
NEWEST_PAGE_FACTOR = 4
NEWEST_PAGES = 2
# Entries written before a save indexes them for search in one batch (``Store.index_pending``).
INDEX_BATCH = 5000
# A source's entry count, after each save of new entries: built once.
_SOURCE_ENTRIES = (
    sa.select(sa.func.count())
    .select_from(ENTRIES)
    .where(ENTRIES.c.source_id == sa.bindparam("source_id"))
)


@dataclasses.dataclass(frozen=True)
class PollSave:
    """One fetched feed to store (``Store.save_polls``): its entries and what the fetch and
    the feed said about the source's next check."""

    source_id: str
    fetch: FetchResult
    body_hash: str | None
    feed_title: str | None
    feed_link: str | None
    entries: Sequence[tuple[NormalizedEntry, Sequence[CategoryMatch]]]
    next_check_at: datetime
    now: datetime
    publish_interval: float | None = None
    feed_ttl_seconds: int | None = None


class Store:
    """Database access; build once per process with ``open_store`` and share it."""

    def __init__(self, engine: Engine, limits: GrowthLimits | None = None) -> None:
        self.engine = engine
        self.limits = limits or GrowthLimits()
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        # Entries this store wrote since it last indexed them for search (SQLite): past
        # INDEX_BATCH a save indexes the backlog in one statement, so it stays bounded.
        self._unindexed = 0

    def close(self) -> None:
        self.engine.dispose()

    def _read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _write(self) -> Session:
        return Session(self._write_engine, expire_on_commit=False)

    def ping(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StoreError(f"database unreachable: {exc}") from exc

    @property
    def can_quick_check(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def quick_check(self) -> str | None:
        """SQLite's ``PRAGMA quick_check`` (reads every page, so run it rarely): None when
        the file is sound, else what it found; None on other databases."""
        if not self.can_quick_check:
            return None
        try:
            with self.engine.connect() as connection:
                rows = [str(r[0]) for r in connection.execute(sa.text("PRAGMA quick_check"))]
        except SQLAlchemyError as exc:
            return str(getattr(exc, "orig", exc))
        return None if rows == ["ok"] else "; ".join(rows[:3])

    def gauges(self, now: datetime, categories: Sequence[str] = ()) -> StoreGauges:
        """Sources by state, each category's newest item, the most overdue source."""
        with self._guard(), self.engine.connect() as connection:
            return read_gauges(connection, now, categories)

    def oldest_due(self, now: datetime) -> datetime | None:
        """When the most overdue active source was due (None: none is due)."""
        with self._guard(), self.engine.connect() as connection:
            return oldest_due(connection, now)

    # -- sources -------------------------------------------------------------------------

    def sync_sources(self, catalog: Catalog, now: datetime) -> None:
        """Make source rows match the editorial files; rows never vanish (history stays).
        Nothing to do when they were last synced with the same catalog."""
        digest = sourcerows.catalog_digest(catalog)
        files = sourcerows.files_mark(catalog)
        with self._guard(), self._write() as session:
            if sourcerows.marked(session, marks.SOURCES_MARK, digest):
                if sourcerows.marked(session, marks.FILES_MARK, files):
                    return
            else:
                sourcerows.sync(session, catalog, now)
                sourcerows.set_mark(session, marks.SOURCES_MARK, digest, now)
            sourcerows.set_mark(session, marks.FILES_MARK, files, now)
            session.commit()

    def sources(self) -> list[SourceStatus]:
        with self._guard(), self._read() as session:
            rows = session.exec(select(Source).order_by(col(Source.id)))
            statuses = [sourcerows.status_of(row) for row in rows]
            counts = fulltext.outcomes(session.connection())
        return [
            dataclasses.replace(s, full_text_outcomes=counts[s.id]) if s.id in counts else s
            for s in statuses
        ]

    def due_sources(self, now: datetime, *, everything: bool = False) -> list[SourceStatus]:
        """Active sources whose ``next_check_at`` has come (or all active ones)."""
        query = select(Source).where(Source.state == SourceState.ACTIVE)
        if not everything:
            query = query.where(
                sa.or_(col(Source.next_check_at).is_(None), col(Source.next_check_at) <= now)
            )
        query = query.order_by(col(Source.next_check_at), col(Source.id))
        with self._guard(), self._read() as session:
            return [sourcerows.status_of(row) for row in session.exec(query)]

    def due_urls(self, now: datetime, *, everything: bool = False) -> list[tuple[str, str]]:
        """``due_sources`` as (id, URL) pairs in the same order: enough to plan a pass in
        batches without holding every due source's status (and its ORM row) at once."""
        query = sa.select(SOURCES.c.id, SOURCES.c.url).where(
            SOURCES.c.state == SourceState.ACTIVE.value
        )
        if not everything:
            query = query.where(
                sa.or_(SOURCES.c.next_check_at.is_(None), SOURCES.c.next_check_at <= now)
            )
        query = query.order_by(SOURCES.c.next_check_at, SOURCES.c.id)
        with self._guard(), self.engine.connect() as connection:
            return [(row.id, row.url) for row in connection.execute(query)]

    def active_sources(self, ids: Sequence[str]) -> list[SourceStatus]:
        """The statuses of those of ``ids`` that are still active, in the order given."""
        order = {source_id: index for index, source_id in enumerate(ids)}
        query = select(Source).where(
            Source.state == SourceState.ACTIVE, col(Source.id).in_(list(order))
        )
        with self._guard(), self._read() as session:
            found = [sourcerows.status_of(row) for row in session.exec(query)]
        return sorted(found, key=lambda status: order[status.id])

    def save_deferred(
        self, source_id: str, *, next_check_at: datetime, reason: str, owner: str | None = None
    ) -> None:
        """Not tried now (the host asked us to wait): not an error of this source."""
        with self._guard(), self._write() as session:
            row = sourcerows.leased(session, source_id, owner)
            if row is None:
                return
            row.next_check_at = next_check_at
            log.info(
                "source=%s action=poll outcome=deferred reason=%r until=%s",
                source_id,
                reason,
                next_check_at.isoformat(),
            )
            session.commit()

    def set_url(self, source_id: str, url: str, *, now: datetime, owner: str | None = None) -> None:
        """Point the source at a new feed URL (autodiscovery); validators start afresh."""
        with self._guard(), self._write() as session:
            row = sourcerows.leased(session, source_id, owner, keep=True)
            if row is None:
                return
            row.url = url[:2048]
            row.etag = row.last_modified = row.body_hash = None
            row.redirect_url, row.redirect_count = None, 0
            row.next_check_at = now
            session.commit()

    def save_not_modified_many(
        self,
        items: Sequence[tuple[str, FetchResult, datetime, datetime]],
        owner: str | None = None,
    ) -> None:
        """Sources whose feed did not change: (source id, fetch, next check, now), one commit.
        With ``owner``, only the sources it still holds the lease of (see ``sourcerows.leased``)."""
        with self._guard(), self._write() as session:
            ids = [source_id for source_id, _, _, _ in items]
            query = select(Source).where(col(Source.id).in_(ids))
            if owner is not None:
                # Locked in id order, as every multi-row writer locks them: no deadlock.
                query = query.order_by(col(Source.id)).with_for_update()
            rows = {row.id: row for row in session.exec(query)}
            for source_id, fetch, next_check_at, now in items:
                row = rows.get(source_id)
                if row is None:
                    raise StoreError(f"source {source_id!r} is not in the store")
                if owner is not None and not sourcerows.still_owned(row, owner):
                    continue
                sourcerows.touch(row, fetch, next_check_at, now)
                row.last_success_at = now
                row.last_new_entries = row.last_updated_entries = 0
                row.error_count = 0
                row.last_error = row.last_error_kind = None
            session.commit()

    def save_error(
        self,
        source_id: str,
        *,
        message: str,
        kind: str,
        status: int | None,
        next_check_at: datetime,
        now: datetime,
        gone: bool = False,
        owner: str | None = None,
    ) -> None:
        """Count the failure; ``gone`` (HTTP 410) retires the source until editors act."""
        with self._guard(), self._write() as session:
            row = sourcerows.leased(session, source_id, owner)
            if row is None:
                return
            sourcerows.touch(row, None, next_check_at, now)
            row.last_status = status
            row.error_count += 1
            if gone:
                row.state = SourceState.GONE
            row.last_error = message[:2000]
            row.last_error_kind = kind
            session.commit()

    def save_poll(
        self,
        source_id: str,
        fetch: FetchResult,
        *,
        body_hash: str | None,
        feed_title: str | None,
        feed_link: str | None,
        entries: Sequence[tuple[NormalizedEntry, Sequence[CategoryMatch]]],
        next_check_at: datetime,
        now: datetime,
        publish_interval: float | None = None,
        feed_ttl_seconds: int | None = None,
        owner: str | None = None,
    ) -> PollOutcome:
        """Store a fetched feed's entries, their categories and stories, then the validators
        (``save_polls`` of one)."""
        return self.save_polls(
            [
                PollSave(
                    source_id,
                    fetch,
                    body_hash=body_hash,
                    feed_title=feed_title,
                    feed_link=feed_link,
                    entries=entries,
                    next_check_at=next_check_at,
                    now=now,
                    publish_interval=publish_interval,
                    feed_ttl_seconds=feed_ttl_seconds,
                )
            ],
            owner=owner,
        )[0]

    def save_polls(
        self, saves: Sequence[PollSave], *, owner: str | None = None
    ) -> list[PollOutcome]:
        """Store fetched feeds: each one's entries, their categories and stories, then its
        validators; one outcome per save, in order.

        In one transaction (on PostgreSQL, a few: ``_transactions``): validators are only
        saved together with the entries they describe, so an interrupted poll is simply
        repeated, and one commit for many feeds costs less than one each. The feeds are
        written one after the other, as separate saves would write them. When a transaction
        fails, each of its feeds is saved again in a transaction of its own, so one bad feed
        costs only itself: the feeds before it are stored and its error is raised. Entries
        retention pruned stay out (tombstones). With ``owner``, nothing is saved for a source
        whose lease was lost.
        Growth is capped by ``limits``: the newest entries of a poll over the per-poll cap
        are stored and the validators forgotten so the next poll takes the rest; a source
        over the per-source cap then loses its oldest entries (``_trim``).
        """
        outcomes = []
        for group in self._transactions(saves):
            outcomes += self._save_group(group, owner)
        if self._unindexed >= INDEX_BATCH:
            self.index_pending()
        return outcomes

    def _transactions(self, saves: Sequence[PollSave]) -> list[Sequence[PollSave]]:
        """The saves grouped into transactions. SQLite has one writer at a time: one. On
        PostgreSQL each transaction holds the story keys of its feeds locked until it commits
        (``leases.lock_story_keys``), and more than ``MAX_STORY_LOCKS`` of them fold into
        buckets that every other worker's saves would wait on: a transaction takes feeds
        while their keys stay under that bound (always at least one feed)."""
        if self.engine.dialect.name != "postgresql":
            return [saves]
        groups: list[list[PollSave]] = []
        keys: set[int] = set()
        for save in saves:
            mine = leases.story_keys(
                (e.url for e, _ in save.entries), (e.content_hash for e, _ in save.entries)
            )
            if groups and len(keys | mine) <= leases.MAX_STORY_LOCKS:
                groups[-1].append(save)
                keys |= mine
            else:
                groups.append([save])
                keys = mine
        return list(groups)

    def _save_group(self, saves: Sequence[PollSave], owner: str | None) -> list[PollOutcome]:
        """``saves`` in one transaction; when it fails, each in one of its own, so one bad
        feed costs only itself."""
        try:
            with self._guard(), self._write_engine.begin() as connection:
                done = self._write_polls(connection, saves, owner)
        except StoreError:
            if len(saves) == 1:
                raise
            return [outcome for save in saves for outcome in self._save_group([save], owner)]
        outcomes = []
        for save, (outcome, over_cap) in zip(saves, done, strict=True):
            self._unindexed += outcome.new_entries + outcome.updated_entries
            if over_cap:
                self._trim(save.source_id, save.now)
            outcomes.append(outcome)
        return outcomes

    def _write_polls(
        self, connection: Connection, saves: Sequence[PollSave], owner: str | None
    ) -> list[tuple[PollOutcome, bool]]:
        """Each save's outcome and whether its source is now over the per-source cap."""
        # Every lock this transaction needs, taken up front and in one order (source rows by
        # id, then the story keys sorted): two workers' batches never wait on each other in a
        # cycle.
        rows = sourcerows.leased_rows(connection, [s.source_id for s in saves], owner)
        leases.lock_story_keys(
            connection,
            (e.url for s in saves for e, _ in s.entries),
            (e.content_hash for s in saves for e, _ in s.entries),
        )
        done = []
        for save in saves:
            row = rows.get(save.source_id)
            if row is None:
                done.append(
                    (
                        PollOutcome(
                            save.source_id, PollResult.LEASE_LOST, status=save.fetch.status
                        ),
                        False,
                    )
                )
                continue
            done.append(self._write_poll(connection, save, row, owner))
        return done

    def _write_poll(
        self, connection: Connection, save: PollSave, row: Any, owner: str | None
    ) -> tuple[PollOutcome, bool]:
        source_id, fetch, now = save.source_id, save.fetch, save.now
        entries = sourcerows.without_tombstoned(connection, source_id, save.entries, now)
        written = write_entries(
            connection, source_id, entries, now, new_per_poll=self.limits.new_per_poll
        )
        new, updated = written.new, written.updated
        values = sourcerows.check_values(
            source_id, row.url, row.redirect_url, row.redirect_count, fetch, save.next_check_at, now
        )
        values["body_hash"] = save.body_hash
        if written.refused:
            # The same body must be read again next time for the entries left out.
            values["etag"] = values["last_modified"] = values["body_hash"] = None
        warning = sourcerows.growth_warning(written)
        if warning:
            log.warning("source=%s action=save outcome=growth warning=%r", source_id, warning)
        values.update(
            last_repeated_entries=written.repeated,
            warning=warning,
            feed_title=(save.feed_title or "")[:512] or row.feed_title,
            last_success_at=now,
            last_new_entries=new,
            last_updated_entries=updated,
            # Always replaced: a feed that drops its <ttl> no longer asks for it.
            feed_ttl_seconds=save.feed_ttl_seconds,
            error_count=0,
            last_error=None,
            last_error_kind=None,
        )
        if save.feed_link and not row.site_url:
            values["site_url"] = save.feed_link[:2048]
        if save.publish_interval is not None:
            values["publish_interval_seconds"] = save.publish_interval
        if owner is not None:
            values["lease_owner"] = values["leased_until"] = None
        connection.execute(SOURCES.update().where(SOURCES.c.id == source_id).values(**values))
        # Counted here, so the trim's own transaction is only paid when it has work.
        over_cap = (
            bool(new and self.limits.per_source)
            and connection.execute(_SOURCE_ENTRIES, {"source_id": source_id}).scalar_one()
            > self.limits.per_source
        )
        result = PollResult.UPDATED if new or updated else PollResult.UNCHANGED
        return (
            PollOutcome(
                source_id, result, new_entries=new, updated_entries=updated, status=fetch.status
            ),
            over_cap,
        )

    def _trim(self, source_id: str, now: datetime) -> int:
        """Keep the source at its per-source cap by removing its oldest entries: refusing new
        ones instead would hold back the newest news. A transaction of its own, taking the
        clustering lock first as retention does, so it never waits on a poll's locks while
        holding it."""
        keep = self.limits.per_source
        with self._guard(), self._write_engine.begin() as connection:
            retention.lock(connection)
            removed = retention.trim_source(connection, source_id, keep=keep, now=now)
            if removed:
                current = connection.execute(
                    sa.select(SOURCES.c.warning).where(SOURCES.c.id == source_id)
                ).scalar()
                note = (
                    f"per-source cap: removed the {removed} oldest entries to keep "
                    f"{keep} (AGGREGATOR_MAX_ENTRIES_PER_SOURCE)"
                )
                connection.execute(
                    SOURCES.update()
                    .where(SOURCES.c.id == source_id)
                    .values(warning=sourcerows.add_warning(current, note))
                )
                log.info(
                    "source=%s action=trim outcome=done entries=%d keep=%d",
                    source_id,
                    removed,
                    keep,
                )
        return removed

    # -- stories -------------------------------------------------------------------------

    def category_stories(
        self,
        category_id: str,
        limit: int,
        *,
        terms: tuple[str, ...] = (),
        min_sources: int | None = None,
        published_since: datetime | None = None,
    ) -> list[StoryView]:
        """Newest settled stories with at least one entry in the category; members in any
        category (a story settles when the clustering stage has decided it: until then it is
        the write path's provisional grouping, which the stage may still merge).
        Editors' corrections decide first: stories pinned in the category are always included
        and listed first, hidden ones (there or everywhere) never, even when pinned.
        A filtered feed keeps only those with an entry holding every search term, entries
        from at least ``min_sources`` sources, published at or after ``published_since``."""
        if not terms and min_sources is None and published_since is None:
            with self._guard(), self._read() as session:
                newest = self._newest_in_category(session, category_id, limit)
                if newest is not None:
                    return self._with_entries(session, newest, category_id)
        in_category = (
            select(Entry.story_id)
            .join(EntryCategory, col(EntryCategory.entry_id) == col(Entry.id))
            .where(EntryCategory.category_id == category_id)
        )
        pinned = story_reads.pinned_stories(category_id)
        filters: list[Any] = []
        if terms:
            self.index_pending()
            filters.append(
                col(Story.id).in_(
                    sa.select(ENTRIES.c.story_id).where(
                        search.matching(self.engine.dialect.name, terms)
                    )
                )
            )
        if min_sources is not None:
            # Counted per candidate story (entries.story_id is indexed), not over every entry.
            filters.append(
                sa.select(sa.func.count(sa.distinct(ENTRIES.c.source_id)))
                .where(ENTRIES.c.story_id == col(Story.id))
                .scalar_subquery()
                >= min_sources
            )
        if published_since is not None:
            filters.append(col(Story.published_at) >= published_since)
        query = (
            select(Story)
            .where(
                sa.or_(col(Story.id).in_(in_category), col(Story.id).in_(pinned)),
                col(Story.merged_into_id).is_(None),
                col(Story.settled_at).is_not(None),
                col(Story.id).not_in(story_reads.hidden_stories(category_id)),
                *filters,
            )
            .order_by(
                sa.case((col(Story.id).in_(pinned), 0), else_=1),
                col(Story.published_at).desc(),
                col(Story.id).desc(),
            )
            .limit(limit)
        )
        with self._guard(), self._read() as session:
            stories = list(session.exec(query))
            return self._with_entries(session, stories, category_id)

    @staticmethod
    def _newest_in_category(session: Session, category_id: str, limit: int) -> list[Story] | None:
        """``category_stories`` without filters, in the same order, found by walking the live
        stories newest first; None when ``NEWEST_PAGES`` pages did not fill ``limit`` (a
        small category), for the caller to read it by membership. The output watcher asks
        every few seconds, and by membership that reads every entry the category holds."""
        connection = session.connection()
        pinned = set(connection.execute(story_reads.pinned_stories(category_id)).scalars())
        hidden = set(connection.execute(story_reads.hidden_stories(category_id)).scalars())
        # The condition of the partial index ix_stories_listed, its very text, so SQLite
        # walks that index (with IS NULL it read every live story through the
        # merged_into_id index and sorted them).
        listed = sa.text(LISTED_STORIES)
        newest_first = (STORIES.c.published_at.desc(), STORIES.c.id.desc())
        chosen: list[int] = []
        if pinned - hidden:
            chosen += connection.execute(
                sa.select(STORIES.c.id)
                .where(STORIES.c.id.in_(sorted(pinned - hidden)), listed)
                .order_by(*newest_first)
                .limit(limit)
            ).scalars()
        page_size = limit * NEWEST_PAGE_FACTOR
        after: tuple[datetime, int] | None = None
        complete = False
        for _ in range(NEWEST_PAGES):
            if len(chosen) >= limit:
                break
            query = sa.select(STORIES.c.id, STORIES.c.published_at).where(listed)
            if after is not None:
                published, last_id = after
                query = query.where(
                    sa.or_(
                        STORIES.c.published_at < published,
                        sa.and_(STORIES.c.published_at == published, STORIES.c.id < last_id),
                    )
                )
            page = connection.execute(query.order_by(*newest_first).limit(page_size)).all()
            wanted = [row.id for row in page if row.id not in pinned and row.id not in hidden]
            # Per entry of these stories, rather than a join SQLite would drive from the
            # category's side, reading its whole membership.
            members = set(
                connection.execute(
                    sa.select(ENTRIES.c.story_id).where(
                        ENTRIES.c.story_id.in_(wanted),
                        sa.exists().where(
                            CATEGORIES.c.entry_id == ENTRIES.c.id,
                            CATEGORIES.c.category_id == category_id,
                        ),
                    )
                ).scalars()
            )
            chosen += [story_id for story_id in wanted if story_id in members]
            if len(page) < page_size:
                complete = True
                break
            after = (page[-1].published_at, page[-1].id)
        if len(chosen) < limit and not complete:
            return None
        chosen = chosen[:limit]
        stories = {
            story.id: story
            for story in session.exec(select(Story).where(col(Story.id).in_(chosen)))
        }
        return [stories[story_id] for story_id in chosen]

    def category_stories_page(
        self,
        category_id: str,
        limit: int,
        *,
        after: tuple[datetime, int] | None = None,
        since: datetime | None = None,
    ) -> tuple[list[StoryView], tuple[datetime, int] | None]:
        """One page of the category's stories for the API, newest published first: the same
        stories as ``category_stories`` (pinned in, hidden out) in one total order, so a page
        can start strictly ``after`` the (published_at, story id) of the last one seen.
        ``since`` keeps the stories first seen or updated (as stored) at or after it.
        Returns the page and the position to continue after, None when this was the last."""
        in_category = (
            select(Entry.story_id)
            .join(EntryCategory, col(EntryCategory.entry_id) == col(Entry.id))
            .where(EntryCategory.category_id == category_id)
        )
        pinned = story_reads.pinned_stories(category_id)
        conditions = [
            sa.or_(col(Story.id).in_(in_category), col(Story.id).in_(pinned)),
            col(Story.merged_into_id).is_(None),
            col(Story.settled_at).is_not(None),
            col(Story.id).not_in(story_reads.hidden_stories(category_id)),
        ]
        if after is not None:
            published, story_id = after
            conditions.append(
                sa.or_(
                    col(Story.published_at) < published,
                    sa.and_(col(Story.published_at) == published, col(Story.id) < story_id),
                )
            )
        if since is not None:
            conditions.append(
                sa.or_(col(Story.first_seen_at) >= since, col(Story.updated_at) >= since)
            )
        query = (
            select(Story)
            .where(*conditions)
            .order_by(col(Story.published_at).desc(), col(Story.id).desc())
            .limit(limit)
        )
        with self._guard(), self._read() as session:
            stories = list(session.exec(query))
            views = self._with_entries(session, stories, category_id)
        if len(stories) < limit:
            return views, None
        last = stories[-1]
        return views, (last.published_at, last.id or 0)

    def iter_stories(self) -> Iterator[StoryView]:
        """Every live story, oldest first, loaded a page at a time."""
        last_id = 0
        while True:
            with self._guard(), self._read() as session:
                stories = list(
                    session.exec(
                        select(Story)
                        .where(
                            col(Story.id) > last_id,
                            col(Story.merged_into_id).is_(None),
                            col(Story.settled_at).is_not(None),
                        )
                        .order_by(col(Story.id))
                        .limit(STORY_PAGE)
                    )
                )
                views = self._with_entries(session, stories)
            if not stories:
                return
            yield from views
            last_id = stories[-1].id or last_id

    def story_evidence(self, story_id: int) -> list[dict[str, Any]]:
        """Per member entry: why it is in the story (the write-time signal or the clustering
        decision with the parts of its score), its detected languages, and which categories
        took it (why)."""
        with self._guard(), self._read() as session:
            rows = list(
                session.exec(
                    select(Entry, EntryFeatureRecord)
                    .join(
                        EntryFeatureRecord,
                        col(EntryFeatureRecord.entry_id) == col(Entry.id),
                        isouter=True,
                    )
                    .where(Entry.story_id == story_id)
                    .order_by(col(Entry.id))
                )
            )
            ids = [e.id for e, _ in rows]
            cats = list(
                session.exec(select(EntryCategory).where(col(EntryCategory.entry_id).in_(ids)))
            )
        by_entry: dict[int, list[dict[str, Any]]] = {}
        for cat in cats:
            by_entry.setdefault(cat.entry_id, []).append(
                {"category": cat.category_id, "score": cat.score, "reason": cat.reason}
            )
        return [
            {
                "entry_id": e.id,
                "source_id": e.source_id,
                "title": e.title,
                "url": e.url,
                "signal": e.story_signal,
                "score": e.story_score,
                "matched_entry_id": e.story_matched_entry_id,
                "decision": e.story_decision,
                "evidence": e.story_evidence,
                "decided_at": e.story_decided_at.isoformat() if e.story_decided_at else None,
                "declared_language": e.language,
                "languages": _languages(features),
                "categories": by_entry.get(e.id or 0, []),
            }
            for e, features in rows
        ]

    def counts(self) -> dict[str, int]:
        with self._guard(), self._read() as session:
            counts = {
                name: session.exec(select(sa.func.count()).select_from(model)).one()
                for name, model in (
                    ("sources", Source),
                    ("entries", Entry),
                    ("entry_categories", EntryCategory),
                )
            }
            # Stories merged into another are history, not stories an editor or reader sees.
            counts["stories"] = session.exec(
                select(sa.func.count())
                .select_from(Story)
                .where(col(Story.merged_into_id).is_(None))
            ).one()
            return counts

    @staticmethod
    def _with_entries(
        session: Session, stories: list[Story], category_id: str | None = None
    ) -> list[StoryView]:
        if not stories:
            return []
        ids = [s.id for s in stories]
        accepted: set[int] | None = None
        if category_id is not None:
            # The stories' entries first: joined, SQLite read the category's whole membership
            # (its category_id index) to find the few hundred it keeps.
            accepted = set(
                session.exec(
                    select(EntryCategory.entry_id).where(
                        EntryCategory.category_id == category_id,
                        col(EntryCategory.entry_id).in_(
                            select(Entry.id).where(col(Entry.story_id).in_(ids))
                        ),
                    )
                )
            )
        rows = session.exec(
            select(Entry, Source, EntryFeatureRecord.lang, EntryFullText.content_html)
            .join(Source, col(Source.id) == col(Entry.source_id))
            .join(
                EntryFeatureRecord, col(EntryFeatureRecord.entry_id) == col(Entry.id), isouter=True
            )
            .join(
                EntryFullText,
                sa.and_(
                    col(EntryFullText.entry_id) == col(Entry.id),
                    col(EntryFullText.outcome) == FullTextOutcome.EXTRACTED.value,
                ),
                isouter=True,
            )
            .where(col(Entry.story_id).in_(ids))
            .order_by(col(Entry.published_at), col(Entry.id))
        )
        members: dict[int, list[EntryView]] = {}
        for entry, source, detected, full_html in rows:
            assert entry.story_id is not None
            assert entry.id is not None
            enclosures, image = media_from_json(entry.enclosures, entry.image)
            members.setdefault(entry.story_id, []).append(
                EntryView(
                    entry_id=entry.id,
                    source_id=entry.source_id,
                    source_title=source.title or source.feed_title or source.id,
                    url=entry.url or entry.link,
                    title=entry.title,
                    summary_html=entry.summary_html or entry.content_html,
                    # Detected from the text when the stage has run: a feed's declared language
                    # is only a hint (an English translation in a French feed is English).
                    language=detected or entry.language,
                    published_at=entry.published_at,
                    updated_at=entry.updated_at,
                    author=entry.author,
                    in_category=accepted is None or entry.id in accepted,
                    membership=Membership(
                        entry.story_signal,
                        entry.story_score,
                        entry.story_matched_entry_id,
                        entry.story_decision,
                        entry.story_evidence,
                        entry.story_decided_at,
                    ),
                    enclosures=enclosures,
                    image=image,
                    full_html=full_html or None,
                )
            )
        return [
            StoryView(
                story_id=s.id or 0,
                uid=s.uid,
                first_seen=s.first_seen_at,
                updated_at=s.updated_at,
                entries=tuple(members.get(s.id or 0, ())),
            )
            for s in stories
            if members.get(s.id or 0)
        ]

    # -- full text -----------------------------------------------------------------------

    def full_text_due(
        self,
        source_ids: Sequence[str],
        *,
        since: datetime,
        retry_before: datetime,
        max_failures: int,
        limit: int,
    ) -> list[FullTextTask]:
        """Entries whose article page the full-text stage should check now
        (``store.fulltext.due``)."""
        with self._guard(), self.engine.connect() as connection:
            return fulltext.due(
                connection,
                source_ids,
                since=since,
                retry_before=retry_before,
                max_failures=max_failures,
                limit=limit,
            )

    def save_full_text(self, record: FullTextRecord) -> bool:
        """Store one check's outcome; False when the entry was pruned meanwhile."""
        with self._guard(), self._write_engine.begin() as connection:
            return fulltext.save(connection, record)

    def confirm_full_text(
        self,
        entry_id: int,
        *,
        entry_hash: str,
        checked_at: datetime,
        etag: str | None,
        last_modified: str | None,
    ) -> None:
        """The page did not change: keep what was extracted, note the check."""
        with self._guard(), self._write_engine.begin() as connection:
            fulltext.confirm(
                connection,
                entry_id,
                entry_hash=entry_hash,
                checked_at=checked_at,
                etag=etag,
                last_modified=last_modified,
            )

    def full_text_turn(self) -> AbstractContextManager[bool]:
        """Whether this process runs the full-text stage now: True on SQLite, on PostgreSQL
        unless another worker holds the turn, until the block ends."""
        return self._turn(fulltext.try_turn, fulltext.end_turn)

    def full_text(self, entry_id: int) -> FullTextRecord | None:
        with self._guard(), self.engine.connect() as connection:
            return fulltext.record_of(connection, entry_id)

    # -- clustering ----------------------------------------------------------------------

    def pending_entries(self, limit: int) -> list[PendingEntry]:
        """Entries the clustering stage has not handled yet, in its decision order."""
        with self._guard(), self.engine.connect() as connection:
            return clustering.pending_entries(connection, limit)

    def unfeatured_entries(self, limit: int) -> list[PendingEntry]:
        """Pending entries nobody has computed features for yet, newest first (the model
        step of a worker without the stage's turn)."""
        with self._guard(), self.engine.connect() as connection:
            return clustering.unfeatured_entries(connection, limit)

    def save_features(self, records: Sequence[dict[str, object]], model: str, now: datetime) -> int:
        """Features computed outside any batch, in a short transaction of their own and
        without the clustering lock: a feature row is written once and never changed, so the
        turn's holder may read it whenever it lands. Returns the rows written."""
        with self._guard(), self._write_engine.begin() as connection:
            return clustering.save_features(connection, records, model, now)

    def pending_count(self) -> int:
        with self._guard(), self.engine.connect() as connection:
            return clustering.pending_count(connection)

    @contextmanager
    def clustering(self) -> Iterator[ClusterWriter]:
        """One clustering batch: a write transaction holding the clustering lock, committed
        when the block ends and rolled back, whole, when it raises."""
        with self._guard(), self._write_engine.begin() as connection:
            clustering.lock(connection)
            yield ClusterWriter(connection)

    def clustering_turn(self) -> AbstractContextManager[bool]:
        """Whether this process runs the clustering stage now: True on SQLite (one process),
        on PostgreSQL unless another worker holds the turn, until the block ends. Batches
        still serialize on the clustering lock, which is what keeps them correct; the turn
        only saves computing the same entries' features twice."""
        return self._turn(clustering.try_stage_turn, clustering.end_stage_turn)

    @contextmanager
    def _turn(
        self, take: Callable[[Connection], bool], give_back: Callable[[Connection], None]
    ) -> Iterator[bool]:
        """A stage's turn among workers: a PostgreSQL session lock ``take`` tries on a
        connection of its own and ``give_back`` releases; always True on SQLite."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        connection = self.engine.connect()
        try:
            with self._guard():
                mine = take(connection)
                connection.commit()
            try:
                yield mine
            finally:
                if mine:
                    # A connection lost meanwhile took the lock with it.
                    with suppress(SQLAlchemyError):
                        give_back(connection)
                        connection.commit()
        finally:
            with suppress(SQLAlchemyError):
                connection.close()

    def reset_clustering(self, now: datetime) -> int:
        """Undo every clustering decision so the stage makes them again (see ``reset``)."""
        with self.clustering() as writer:
            return clustering.reset(writer.connection, now)

    def add_override(
        self,
        kind: str,
        *,
        by: str,
        now: datetime,
        entry_id: int | None = None,
        other_entry_id: int | None = None,
        story_id: int | None = None,
        other_story_id: int | None = None,
        note: str | None = None,
        category: str | None = None,
        audit: AuditNote | None = None,
    ) -> int:
        """Record an editor's correction and apply it now (``overrides.record_override``);
        ``audit``, when given, is written in the same transaction."""
        with self.clustering() as writer:
            made = overrides.record_override(
                writer,
                kind,
                by=by,
                now=now,
                entry_id=entry_id,
                other_entry_id=other_entry_id,
                story_id=story_id,
                other_story_id=other_story_id,
                note=note,
                category=category,
            )
            if audit is not None:
                accounts.record(writer.connection, audit, now, override_id=made)
            return made

    # Editors' corrections: each in one transaction (a refused one, ValueError naming the id,
    # leaves nothing behind), undone at once by ``undo_override``.

    def merge_stories(
        self,
        story_id: int,
        other_story_id: int,
        *,
        by: str,
        now: datetime,
        note: str | None = None,
        audit: AuditNote | None = None,
    ) -> int:
        """Merge two stories; the older keeps its id and uid. Returns the correction's id."""
        return self.add_override(
            "merge",
            by=by,
            now=now,
            story_id=story_id,
            other_story_id=other_story_id,
            note=note,
            audit=audit,
        )

    def split_entry(
        self,
        entry_id: int,
        *,
        by: str,
        now: datetime,
        note: str | None = None,
        audit: AuditNote | None = None,
    ) -> int:
        """Take an entry out of its story into a new one; returns the new story's id."""
        with self.clustering() as writer:
            made = overrides.split_entry(writer, entry_id, by=by, now=now, note=note)
            if audit is not None:
                accounts.record(writer.connection, audit, now, new_story_id=made)
            return made

    def pin_story(
        self,
        story_id: int,
        category: str,
        *,
        by: str,
        now: datetime,
        note: str | None = None,
        audit: AuditNote | None = None,
    ) -> int:
        """Show the story in ``category`` whatever its rules say, listed first."""
        return self.add_override(
            "category_pin",
            by=by,
            now=now,
            story_id=story_id,
            category=category,
            note=note,
            audit=audit,
        )

    def hide_story(
        self,
        story_id: int,
        category: str | None,
        *,
        by: str,
        now: datetime,
        note: str | None = None,
        audit: AuditNote | None = None,
    ) -> int:
        """Keep the story out of ``category`` (None: out of every category)."""
        return self.add_override(
            "hide", by=by, now=now, story_id=story_id, category=category, note=note, audit=audit
        )

    def story_detail(self, story_id: int) -> StoryDetail | None:
        """The story as editors inspect it (``stories.story_detail``); None if unknown."""
        with self._guard(), self.engine.connect() as connection:
            return story_reads.story_detail(connection, story_id)

    def index_pending(self) -> None:
        """Index the entries written since the last time (SQLite; ``search.index_pending``):
        every read of the search index calls it first, a poll may call it when it is done."""
        with self._guard():
            with self.engine.connect() as connection:
                if not search.has_pending(connection):
                    return
            with self._write_engine.begin() as connection:
                search.index_pending(connection)
            self._unindexed = 0

    def search(
        self,
        terms: tuple[str, ...],
        limit: int,
        *,
        after: tuple[datetime, int] | None = None,
        include_hidden: bool = False,
    ) -> tuple[list[SearchHit], tuple[datetime, int] | None]:
        """Entries holding every term (``search.parse_query``), newest first, one page."""
        self.index_pending()
        with self._guard(), self.engine.connect() as connection:
            return search.search(
                connection, terms, limit, after=after, include_hidden=include_hidden
            )

    def entry_categories(self, entry_ids: Sequence[int]) -> dict[int, tuple[CategoryDecision, ...]]:
        with self._guard(), self.engine.connect() as connection:
            return story_reads.entry_categories(connection, entry_ids)

    def withdrawn_uids(self, category_id: str, uids: Sequence[str]) -> frozenset[str]:
        """Of ``uids``, the stories editors took out of the category (hidden or merged)."""
        with self._guard(), self.engine.connect() as connection:
            return story_reads.withdrawn_uids(connection, category_id, uids)

    def split_story(
        self, entry_ids: Sequence[int], *, by: str, now: datetime, note: str | None = None
    ) -> int:
        with self.clustering() as writer:
            return overrides.split(writer, entry_ids, by=by, now=now, note=note)

    def apply_category_rules(
        self,
        category: str,
        added: Sequence[reclassify.NewRow],
        removed: Sequence[int],
        *,
        days: int,
        by: str,
        now: datetime,
        note: str | None = None,
        audit: AuditNote | None = None,
    ) -> tuple[int, int, int]:
        """Write a rules change's diff over stored entries as one undoable correction
        (``reclassify.apply_rules``): (correction id, rows added, rows removed)."""
        with self.clustering() as writer:
            if audit is not None:
                accounts.record(writer.connection, audit, now)
            return reclassify.apply_rules(
                writer.connection, category, added, removed, days=days, by=by, now=now, note=note
            )

    def undo_override(
        self, override_id: int, *, by: str, now: datetime, audit: AuditNote | None = None
    ) -> bool:
        with self.clustering() as writer:
            undone = overrides.undo_override(writer, override_id, by=by, now=now)
            if undone and audit is not None:
                accounts.record(writer.connection, audit, now)
            return undone

    # Editors' accounts and the audit log (``store.accounts``).

    def editors(self) -> list[EditorView]:
        with self._guard(), self.engine.connect() as connection:
            return accounts.list_editors(connection)

    def active_editor_count(self) -> int:
        with self._guard(), self.engine.connect() as connection:
            return accounts.active_count(connection)

    def editor_by_key(self, key: str) -> tuple[EditorView, str] | None:
        with self._guard(), self.engine.connect() as connection:
            return accounts.by_key(connection, key)

    def change_editor(
        self,
        action: str,
        name: str,
        *,
        now: datetime,
        audit: AuditNote,
        role: str | None = None,
        key: str | None = None,
        hashed: str | None = None,
    ) -> None:
        """``add``, ``rotate`` or ``revoke`` an account, with its audit row, in one
        transaction; ValueError names what was refused."""
        with self._guard(), self._write_engine.begin() as connection:
            if action == "add" and role is not None and key and hashed:
                accounts.add_editor(
                    connection, name, Role(role), key, hashed, by=audit.editor, now=now
                )
            elif action == "rotate" and key and hashed:
                accounts.rotate_editor(connection, name, key, hashed, now=now)
            elif action == "revoke":
                accounts.revoke_editor(connection, name, by=audit.editor, now=now)
            else:
                raise ValueError(f"unknown account change {action!r}")
            accounts.record(connection, audit, now)

    @contextmanager
    def audited(self, note: AuditNote, now: datetime) -> Iterator[None]:
        """Record ``note`` for an edit made outside the database (the editorial files): the
        row commits when the block ends and is rolled back when the edit raises."""
        with self._guard(), self._write_engine.begin() as connection:
            accounts.record(connection, note, now)
            yield

    def audit_log(self, limit: int, before: int | None = None) -> list[AuditView]:
        with self._guard(), self.engine.connect() as connection:
            return accounts.audit_page(connection, limit, before)

    def signing_secret(self) -> str:
        with self._guard(), self._write_engine.begin() as connection:
            return accounts.signing_secret(connection)

    def entry_stories(self, source_id: str) -> dict[str, int]:
        """guid → story id of a source's entries (the evaluation reads its clustering so)."""
        with self._guard(), self._read() as session:
            rows = session.exec(
                select(Entry.guid, Entry.story_id).where(Entry.source_id == source_id)
            )
            return {guid: story for guid, story in rows if guid and story is not None}

    def entry_features(self, source_id: str) -> dict[str, dict[str, object]]:
        """guid → stored feature record of a source's entries (for the evaluation)."""
        with self._guard(), self.engine.connect() as connection:
            return clustering.source_features(connection, source_id)

    def centering_state(self) -> dict[str, tuple[int, bytes]]:
        with self._guard(), self.engine.connect() as connection:
            return ClusterWriter(connection).centering()

    def overrides(self, include_undone: bool = False) -> list[OverrideView]:
        with self._guard(), self.engine.connect() as connection:
            return overrides.list_overrides(connection, include_undone=include_undone)

    def category_history(
        self, category_id: str, source_ids: Sequence[str], since: datetime
    ) -> Iterator[HistoryEntry]:
        """Entries of ``source_ids`` published from ``since`` on, oldest id first, each with
        ``category_id``'s stored decision; streamed a page at a time (the rules dry run)."""
        return iter_history(self.engine, category_id, source_ids, since)

    # -- many workers (store.leases) and retention (store.retention) ----------------------

    @property
    def supports_leases(self) -> bool:
        """Whether several workers may share this database (PostgreSQL; SQLite: one)."""
        return self.engine.dialect.name == "postgresql"

    def claim_sources(
        self,
        owner: str,
        now: datetime,
        *,
        lease_seconds: float,
        limit: int,
        per_host: int,
        checked_before: datetime | None = None,
    ) -> tuple[list[SourceStatus], int]:
        """Lease due sources to ``owner`` (``leases.claim``): the sources, in due order, and
        how many due ones wait for a host another worker holds."""
        if not self.supports_leases:
            raise StoreError("claiming sources needs PostgreSQL; SQLite polls in one process")
        until = now + timedelta(seconds=lease_seconds)
        with self._guard(), self._write_engine.begin() as connection:
            claimed = leases.claim(
                connection,
                owner=owner,
                now=now,
                until=until,
                limit=limit,
                per_host=per_host,
                checked_before=checked_before,
            )
        if claimed.reaped:
            log.warning(
                "action=claim outcome=reaped sources=%d: a worker of this machine "
                "died holding them",
                claimed.reaped,
            )
        if not claimed.ids:
            return [], claimed.waiting
        with self._guard(), self._read() as session:
            rows = {
                row.id: row
                for row in session.exec(select(Source).where(col(Source.id).in_(claimed.ids)))
            }
        return [sourcerows.status_of(rows[i]) for i in claimed.ids if i in rows], claimed.waiting

    def renew_leases(self, owner: str, now: datetime, lease_seconds: float) -> int:
        with self._guard(), self._write_engine.begin() as connection:
            return leases.renew(
                connection, owner=owner, until=now + timedelta(seconds=lease_seconds)
            )

    def release_leases(self, owner: str, source_ids: Sequence[str] | None = None) -> int:
        with self._guard(), self._write_engine.begin() as connection:
            return leases.release(connection, owner=owner, ids=source_ids)

    def live_leases(self, now: datetime) -> dict[str, int]:
        with self._guard(), self.engine.connect() as connection:
            return leases.live_leases(connection, now)

    def hold_host(self, host: str, until: datetime, reason: str) -> None:
        """Keep every worker off ``host`` until ``until`` (its Retry-After)."""
        with self._guard(), self._write_engine.begin() as connection:
            leases.hold_host(connection, host, until, reason)

    def claim_output_change(self, category_id: str, digest: str, now: datetime) -> bool:
        """True for the first worker to see the category's outputs become ``digest``."""
        with self._guard(), self._write_engine.begin() as connection:
            return leases.claim_output_change(connection, category_id, digest, now)

    def prune_entries(self, cutoff: datetime, now: datetime, limit: int) -> tuple[int, int]:
        """One retention batch of entries (``retention.prune_entries``), under the
        clustering lock."""
        with self._guard(), self._write_engine.begin() as connection:
            retention.lock(connection)
            return retention.prune_entries(connection, cutoff=cutoff, now=now, limit=limit)

    def prune_stories(self, cutoff: datetime, now: datetime, limit: int) -> tuple[int, int, int]:
        with self._guard(), self._write_engine.begin() as connection:
            retention.lock(connection)
            return retention.prune_stories(connection, cutoff=cutoff, now=now, limit=limit)

    def expire_tombstones(self, before: datetime, limit: int) -> int:
        with self._guard(), self._write_engine.begin() as connection:
            return retention.expire_tombstones(connection, before=before, limit=limit)

    def expire_host_holds(self, now: datetime) -> int:
        with self._guard(), self._write_engine.begin() as connection:
            return leases.expire_holds(connection, now)

    def prune_preview(self, cutoff: datetime, tombstones_before: datetime) -> retention.Preview:
        with self._guard(), self.engine.connect() as connection:
            return retention.preview(connection, cutoff=cutoff, tombstones_before=tombstones_before)

    @property
    def webhooks(self) -> WebhookStore:
        """Webhook subscribers, the event outbox and deliveries (``store.webhooks``)."""
        return WebhookStore(self.engine)

    def _guard(self) -> _Guard:
        return _Guard()


class _Guard:
    """Translate SQLAlchemy errors into StoreError at the adapter boundary."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"database error: {exc}") from exc


def _languages(features: EntryFeatureRecord | None) -> dict[str, Any] | None:
    if features is None:
        return None
    return {
        "lang": features.lang,
        "title": features.title_lang,
        "body": features.body_lang,
        "confidence": features.lang_confidence,
    }


def open_store(url: str, limits: GrowthLimits | None = None) -> Store:
    return Store(make_engine(url), limits)

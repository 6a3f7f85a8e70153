"""The webhooks' tables: subscribers, the event outbox and its fan-out into deliveries, the
claim and outcome of each delivery attempt, and what the event detector reads and remembers.

Events, their deliveries and the detector's marks are written in one transaction, and an
event's idempotency key is unique: a detector that crashed halfway, or two that looked at once,
leave each event once. A delivery is claimed by moving its ``next_attempt_at`` forward, so a
process that dies mid-post leaves it due again, never lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.store.engine import WRITE_OPTION
from aggregator.store.tables import (
    CATEGORIES,
    ENTRIES,
    HOOK_DELIVERIES,
    HOOK_EVENTS,
    HOOK_MARKS,
    HOOK_SUBSCRIBERS,
    OVERRIDES,
    SOURCES,
    STORIES,
)
from aggregator.types import DeliveryState, Subscriber

MAX_ERROR = 1000
# An advisory lock key of its own (see store.leases for the others): "aggHOOKS".
RECORD_LOCK_KEY = 0x61676748_4F4F4B53


@dataclass(frozen=True)
class NewEvent:
    """An event the detector found: ``categories`` and ``languages`` select subscribers."""

    key: str
    kind: str
    payload: dict[str, Any]
    categories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class DueDelivery:
    """A claimed delivery: everything the sender needs to post it."""

    id: int
    attempts: int
    subscriber: Subscriber
    event_key: str
    event_kind: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class DeliveryView:
    """One line of the delivery log."""

    id: int
    event_key: str
    event_kind: str
    subscriber_id: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "event_id": self.event_key,
            "type": self.event_kind,
            "subscriber_id": self.subscriber_id,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": when(self.next_attempt_at),
            "last_attempt_at": when(self.last_attempt_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": when(self.delivered_at),
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class StoryFacts:
    """A live story as the detector compares it with its mark."""

    id: int
    uid: str
    title: str
    published_at: datetime
    # entry id -> (source id, content hash, language, link)
    entries: dict[int, tuple[str, str, str | None, str | None]] = field(default_factory=dict)
    categories: frozenset[str] = frozenset()

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(source for source, _, _, _ in self.entries.values())

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({lang for _, _, lang, _ in self.entries.values() if lang}))


@dataclass(frozen=True)
class SourceFacts:
    """A source's health fields plus what it has stored, for the health alerts."""

    id: str
    url: str
    configured_url: str | None
    redirect_url: str | None
    title: str | None
    language: str | None
    categories: tuple[str, ...]
    state: str
    error_count: int
    last_error: str | None
    last_success_at: datetime | None
    publish_interval_seconds: float | None
    entries: int
    newest_entry_at: datetime | None


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id,
        url=row.url,
        secret=row.secret,
        secret_env=row.secret_env,
        categories=tuple(row.categories or ()),
        languages=tuple(row.languages or ()),
        events=tuple(row.events or ()),
        origin=row.origin,
        active=bool(row.active),
        created_at=row.created_at,
    )


def _values(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "url": subscriber.url,
        "secret": subscriber.secret,
        "secret_env": subscriber.secret_env,
        "categories": list(subscriber.categories),
        "languages": list(subscriber.languages),
        "events": list(subscriber.events),
        "origin": subscriber.origin,
        "active": True,
    }


class WebhookStore:
    """The webhooks' reads and writes over the store's engine (``Store.webhooks``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})

    # Subscribers

    def subscribers(self, *, include_inactive: bool = False) -> list[Subscriber]:
        query = sa.select(HOOK_SUBSCRIBERS).order_by(HOOK_SUBSCRIBERS.c.id)
        if not include_inactive:
            query = query.where(HOOK_SUBSCRIBERS.c.active.is_(True))
        with self.engine.connect() as connection:
            return [_subscriber(row) for row in connection.execute(query)]

    def subscriber(self, subscriber_id: str) -> Subscriber | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(HOOK_SUBSCRIBERS).where(HOOK_SUBSCRIBERS.c.id == subscriber_id)
            ).first()
        return _subscriber(row) if row is not None else None

    def sync_file_subscribers(self, subscribers: Sequence[Subscriber], now: datetime) -> None:
        """Make the file's subscribers the active ``file`` ones: new ones added, changed
        ones updated, those no longer in the file deactivated (their log stays)."""
        with self._write_engine.begin() as connection:
            existing = {
                row.id: row
                for row in connection.execute(
                    sa.select(HOOK_SUBSCRIBERS.c.id, HOOK_SUBSCRIBERS.c.origin)
                )
            }
            for subscriber in subscribers:
                values = _values(subscriber) | {"origin": "file"}
                if subscriber.id in existing:
                    connection.execute(
                        HOOK_SUBSCRIBERS.update()
                        .where(HOOK_SUBSCRIBERS.c.id == subscriber.id)
                        .values(**values)
                    )
                else:
                    connection.execute(
                        HOOK_SUBSCRIBERS.insert().values(id=subscriber.id, created_at=now, **values)
                    )
            kept = [s.id for s in subscribers]
            connection.execute(
                HOOK_SUBSCRIBERS.update()
                .where(HOOK_SUBSCRIBERS.c.origin == "file", HOOK_SUBSCRIBERS.c.id.not_in(kept))
                .values(active=False)
            )

    def add_subscriber(self, subscriber: Subscriber, now: datetime) -> bool:
        """Add (or bring back) an API subscriber; False when an active one has its id."""
        with self._write_engine.begin() as connection:
            row = connection.execute(
                sa.select(HOOK_SUBSCRIBERS.c.active).where(HOOK_SUBSCRIBERS.c.id == subscriber.id)
            ).first()
            values = _values(subscriber) | {"origin": "api"}
            if row is None:
                connection.execute(
                    HOOK_SUBSCRIBERS.insert().values(id=subscriber.id, created_at=now, **values)
                )
                return True
            if row.active:
                return False
            connection.execute(
                HOOK_SUBSCRIBERS.update()
                .where(HOOK_SUBSCRIBERS.c.id == subscriber.id)
                .values(created_at=now, **values)
            )
            return True

    def deactivate_subscriber(self, subscriber_id: str) -> bool:
        """Stop sending to a subscriber; what it was owed is marked failed, its log kept."""
        with self._write_engine.begin() as connection:
            changed = connection.execute(
                HOOK_SUBSCRIBERS.update()
                .where(HOOK_SUBSCRIBERS.c.id == subscriber_id, HOOK_SUBSCRIBERS.c.active.is_(True))
                .values(active=False)
            ).rowcount
            connection.execute(
                HOOK_DELIVERIES.update()
                .where(
                    HOOK_DELIVERIES.c.subscriber_id == subscriber_id,
                    HOOK_DELIVERIES.c.state == DeliveryState.PENDING,
                )
                .values(
                    state=DeliveryState.FAILED,
                    next_attempt_at=None,
                    last_error="subscriber removed",
                )
            )
        return bool(changed)

    # The detector's reads and its one write

    def marks(self, subjects: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(subjects), 500):
                chunk = list(subjects[start : start + 500])
                found.update(
                    (row.subject, dict(row.state))
                    for row in connection.execute(
                        sa.select(HOOK_MARKS).where(HOOK_MARKS.c.subject.in_(chunk))
                    )
                )
        return found

    def record(
        self, events: Sequence[NewEvent], marks: Mapping[str, dict[str, Any]], now: datetime
    ) -> int:
        """Write ``events`` (those whose key is new) with their deliveries to the active
        subscribers that want them, and the detector's ``marks``, in one transaction.
        Returns how many events were new."""
        new = 0
        with self._write_engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Workers sharing the database record one at a time, so the second finds the
                # first one's events known instead of failing on their unique keys.
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(RECORD_LOCK_KEY)))
            subscribers = [
                _subscriber(row)
                for row in connection.execute(
                    sa.select(HOOK_SUBSCRIBERS).where(HOOK_SUBSCRIBERS.c.active.is_(True))
                )
            ]
            for event in events:
                wanted = [
                    s.id
                    for s in subscribers
                    if s.wants(event.kind, event.categories, event.languages)
                ]
                if not wanted or _known(connection, event.key):
                    continue
                event_id = connection.execute(
                    HOOK_EVENTS.insert()
                    .values(key=event.key, kind=event.kind, payload=event.payload, created_at=now)
                    .returning(HOOK_EVENTS.c.id)
                ).scalar_one()
                connection.execute(
                    HOOK_DELIVERIES.insert(),
                    [
                        {
                            "event_id": event_id,
                            "subscriber_id": subscriber_id,
                            "state": DeliveryState.PENDING,
                            "attempts": 0,
                            "next_attempt_at": now,
                        }
                        for subscriber_id in wanted
                    ],
                )
                new += 1
            _write_marks(connection, marks, now)
        return new

    def changed_stories(self, since: datetime) -> list[int]:
        """Live stories with an entry clustered or rewritten since ``since``."""
        ids: set[int] = set()
        with self.engine.connect() as connection:
            # Two plain range queries, so each uses its own index (with DISTINCT, SQLite
            # prefers walking the story_id index instead).
            # Unclustered entries (a poll round's, until the stage decides them) are left out
            # here rather than sent over and dropped: a round stores hundreds of thousands.
            for column in (ENTRIES.c.clustered_at, ENTRIES.c.fetched_at):
                ids.update(
                    connection.execute(
                        sa.select(ENTRIES.c.story_id).where(
                            column >= since,
                            ENTRIES.c.story_id.is_not(None),
                            ENTRIES.c.clustered_at.is_not(None),
                        )
                    ).scalars()
                )
        return sorted(ids)

    def story_facts(self, story_ids: Sequence[int]) -> dict[int, StoryFacts]:
        """The live (not merged) ones among ``story_ids``, with their clustered entries."""
        found: dict[int, StoryFacts] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(story_ids), 500):
                chunk = list(story_ids[start : start + 500])
                stories = connection.execute(
                    sa.select(
                        STORIES.c.id, STORIES.c.uid, STORIES.c.title, STORIES.c.published_at
                    ).where(
                        STORIES.c.id.in_(chunk),
                        STORIES.c.merged_into_id.is_(None),
                        # Unsettled stories are in no output yet, and their uids may go.
                        STORIES.c.settled_at.is_not(None),
                    )
                )
                rows = {row.id: row for row in stories}
                entries: dict[int, dict[int, tuple[str, str, str | None, str | None]]] = {}
                entry_story: dict[int, int] = {}
                for member in connection.execute(
                    sa.select(
                        ENTRIES.c.id,
                        ENTRIES.c.story_id,
                        ENTRIES.c.source_id,
                        ENTRIES.c.content_hash,
                        ENTRIES.c.language,
                        ENTRIES.c.link,
                    ).where(ENTRIES.c.story_id.in_(list(rows)), ENTRIES.c.clustered_at.is_not(None))
                ):
                    entries.setdefault(member.story_id, {})[member.id] = (
                        member.source_id,
                        member.content_hash,
                        member.language,
                        member.link,
                    )
                    entry_story[member.id] = member.story_id
                categories: dict[int, set[str]] = {}
                ids = list(entry_story)
                for offset in range(0, len(ids), 500):
                    for match in connection.execute(
                        sa.select(CATEGORIES.c.entry_id, CATEGORIES.c.category_id).where(
                            CATEGORIES.c.entry_id.in_(ids[offset : offset + 500])
                        )
                    ):
                        categories.setdefault(entry_story[match.entry_id], set()).add(
                            match.category_id
                        )
                for story_id, story in rows.items():
                    if story_id not in entries:
                        continue
                    found[story_id] = StoryFacts(
                        id=story_id,
                        uid=story.uid,
                        title=story.title,
                        published_at=story.published_at,
                        entries=entries[story_id],
                        categories=frozenset(categories.get(story_id, ())),
                    )
        return found

    def merged_since(self, since: datetime) -> list[tuple[str, int, str, str | None, datetime]]:
        """Stories merged since ``since``: (uid, id and uid of the story now holding it, by,
        when)."""
        into = STORIES.alias("into")
        with self.engine.connect() as connection:
            return [
                (row.uid, row.into_id, row.into_uid, row.merged_by, row.merged_at)
                for row in connection.execute(
                    sa.select(
                        STORIES.c.uid,
                        into.c.id.label("into_id"),
                        into.c.uid.label("into_uid"),
                        STORIES.c.merged_by,
                        STORIES.c.merged_at,
                    )
                    .join(into, into.c.id == STORIES.c.merged_into_id)
                    # A story merged away before it settled was never published: no event.
                    .where(STORIES.c.merged_at >= since, STORIES.c.settled_at.is_not(None))
                    .order_by(STORIES.c.merged_at)
                )
            ]

    def corrections_after(self, override_id: int, kinds: Sequence[str]) -> list[dict[str, Any]]:
        """Corrections of ``kinds`` newer than ``override_id``, with their stories' uids."""
        story = STORIES.alias("story")
        other = STORIES.alias("other")
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(OVERRIDES, story.c.uid.label("story_uid"), other.c.uid.label("other_uid"))
                .outerjoin(story, story.c.id == OVERRIDES.c.story_id)
                .outerjoin(other, other.c.id == OVERRIDES.c.other_story_id)
                .where(OVERRIDES.c.id > override_id, OVERRIDES.c.kind.in_(list(kinds)))
                .order_by(OVERRIDES.c.id)
            )
            return [dict(row._mapping) for row in rows]

    def last_correction_id(self) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(sa.select(sa.func.max(OVERRIDES.c.id))).scalar()
        return int(value or 0)

    def entry_story_uid(self, entry_id: int) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(STORIES.c.uid)
                .join(ENTRIES, ENTRIES.c.story_id == STORIES.c.id)
                .where(ENTRIES.c.id == entry_id)
            ).scalar()

    def source_facts(self, after: str = "", limit: int | None = None) -> list[SourceFacts]:
        """Configured (not removed) sources with their entry count and newest entry, in id
        order: those whose id sorts after ``after``, at most ``limit`` of them (all without).
        Only the page's sources' entries are counted, so a caller paging through 10,000
        sources holds one page at a time."""
        ids = sa.select(SOURCES.c.id).where(SOURCES.c.state != "removed", SOURCES.c.id > after)
        if limit is not None:
            ids = ids.order_by(SOURCES.c.id).limit(limit)
        counts = (
            sa.select(
                ENTRIES.c.source_id,
                sa.func.count().label("n"),
                sa.func.max(ENTRIES.c.first_seen_at).label("newest"),
            )
            .where(ENTRIES.c.source_id.in_(ids))
            .group_by(ENTRIES.c.source_id)
            .subquery()
        )
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(SOURCES, counts.c.n, counts.c.newest)
                .outerjoin(counts, counts.c.source_id == SOURCES.c.id)
                .where(SOURCES.c.id.in_(ids))
                .order_by(SOURCES.c.id)
            )
            return [
                SourceFacts(
                    id=row.id,
                    url=row.url,
                    configured_url=row.configured_url,
                    redirect_url=row.redirect_url,
                    title=row.title,
                    language=row.language,
                    categories=tuple(row.categories or ()),
                    state=row.state,
                    error_count=row.error_count,
                    last_error=row.last_error,
                    last_success_at=row.last_success_at,
                    publish_interval_seconds=row.publish_interval_seconds,
                    entries=int(row.n or 0),
                    newest_entry_at=_aware(row.newest),
                )
                for row in rows
            ]

    def health_alerts(self) -> list[HealthMark]:
        """Sources whose last recorded health is not ok, by source id."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(HOOK_MARKS)
                .where(HOOK_MARKS.c.subject.like("source:%"))
                .order_by(HOOK_MARKS.c.subject)
            )
            return [
                HealthMark(
                    source_id=row.subject.removeprefix("source:"),
                    health=row.state["health"],
                    detail=row.state.get("detail", ""),
                    since=row.updated_at,
                )
                for row in rows
                if row.state.get("health") != "ok"
            ]

    # Delivery

    def claim_due(self, now: datetime, hold_until: datetime, limit: int) -> list[DueDelivery]:
        """Claim up to ``limit`` due deliveries of active subscribers until ``hold_until``;
        a row another sender claimed first is skipped."""
        query = (
            sa.select(
                HOOK_DELIVERIES.c.id,
                HOOK_DELIVERIES.c.attempts,
                HOOK_DELIVERIES.c.next_attempt_at,
                HOOK_EVENTS.c.key,
                HOOK_EVENTS.c.kind,
                HOOK_EVENTS.c.payload,
                HOOK_EVENTS.c.created_at.label("event_created_at"),
                *[c.label("sub_" + c.name) for c in HOOK_SUBSCRIBERS.c],
            )
            .join(HOOK_EVENTS, HOOK_EVENTS.c.id == HOOK_DELIVERIES.c.event_id)
            .join(HOOK_SUBSCRIBERS, HOOK_SUBSCRIBERS.c.id == HOOK_DELIVERIES.c.subscriber_id)
            .where(
                HOOK_DELIVERIES.c.state == DeliveryState.PENDING,
                HOOK_DELIVERIES.c.next_attempt_at <= now,
                HOOK_SUBSCRIBERS.c.active.is_(True),
            )
            .order_by(HOOK_DELIVERIES.c.next_attempt_at, HOOK_DELIVERIES.c.id)
            .limit(limit)
        )
        claimed: list[DueDelivery] = []
        # Most rounds find nothing due: a read answers that without taking the write lock.
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return claimed
        with self._write_engine.begin() as connection:
            for row in rows:
                taken = connection.execute(
                    HOOK_DELIVERIES.update()
                    .where(
                        HOOK_DELIVERIES.c.id == row.id,
                        HOOK_DELIVERIES.c.state == DeliveryState.PENDING,
                        HOOK_DELIVERIES.c.next_attempt_at == row.next_attempt_at,
                    )
                    .values(next_attempt_at=hold_until)
                ).rowcount
                if not taken:
                    continue
                fields = {c.name: getattr(row, "sub_" + c.name) for c in HOOK_SUBSCRIBERS.c}
                claimed.append(
                    DueDelivery(
                        id=row.id,
                        attempts=row.attempts,
                        subscriber=_subscriber(_Row(fields)),
                        event_key=row.key,
                        event_kind=row.kind,
                        payload=dict(row.payload),
                        created_at=_aware(row.event_created_at) or now,
                    )
                )
        return claimed

    def finish(
        self,
        delivery_id: int,
        *,
        now: datetime,
        delivered: bool,
        status: int | None,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        """Record an attempt: delivered, due again at ``retry_at``, or (no ``retry_at``)
        failed for good."""
        state = (
            DeliveryState.DELIVERED
            if delivered
            else DeliveryState.PENDING
            if retry_at is not None
            else DeliveryState.FAILED
        )
        with self._write_engine.begin() as connection:
            connection.execute(
                HOOK_DELIVERIES.update()
                .where(HOOK_DELIVERIES.c.id == delivery_id)
                .values(
                    state=state,
                    attempts=HOOK_DELIVERIES.c.attempts + 1,
                    last_attempt_at=now,
                    last_status=status,
                    last_error=error[:MAX_ERROR] if error else None,
                    delivered_at=now if delivered else None,
                    next_attempt_at=None if delivered else retry_at,
                )
            )

    def release(self, delivery_ids: Sequence[int], now: datetime) -> None:
        """Give back claimed deliveries that were not attempted: due at ``now``."""
        with self._write_engine.begin() as connection:
            connection.execute(
                HOOK_DELIVERIES.update()
                .where(
                    HOOK_DELIVERIES.c.id.in_(list(delivery_ids)),
                    HOOK_DELIVERIES.c.state == DeliveryState.PENDING,
                )
                .values(next_attempt_at=now)
            )

    def retry(self, delivery_id: int, now: datetime) -> bool:
        """Put a failed delivery back in the queue (an editor's "send again")."""
        with self._write_engine.begin() as connection:
            return bool(
                connection.execute(
                    HOOK_DELIVERIES.update()
                    .where(
                        HOOK_DELIVERIES.c.id == delivery_id,
                        HOOK_DELIVERIES.c.state == DeliveryState.FAILED,
                    )
                    .values(state=DeliveryState.PENDING, next_attempt_at=now)
                ).rowcount
            )

    def forget(self, before: datetime, limit: int = 500) -> int:
        """Forget up to ``limit`` finished deliveries (delivered, or failed for good) of
        events created before ``before``, then the events left without deliveries; pending
        ones are never touched. Returns how many deliveries went."""
        finished = (DeliveryState.DELIVERED, DeliveryState.FAILED)
        old_events = sa.select(HOOK_EVENTS.c.id).where(HOOK_EVENTS.c.created_at < before)
        with self._write_engine.begin() as connection:
            ids = list(
                connection.execute(
                    sa.select(HOOK_DELIVERIES.c.id)
                    .where(
                        HOOK_DELIVERIES.c.state.in_(finished),
                        HOOK_DELIVERIES.c.event_id.in_(old_events),
                    )
                    .order_by(HOOK_DELIVERIES.c.id)
                    .limit(limit)
                ).scalars()
            )
            if ids:
                connection.execute(HOOK_DELIVERIES.delete().where(HOOK_DELIVERIES.c.id.in_(ids)))
            owed = sa.select(HOOK_DELIVERIES.c.event_id).where(
                HOOK_DELIVERIES.c.event_id == HOOK_EVENTS.c.id
            )
            connection.execute(
                HOOK_EVENTS.delete().where(HOOK_EVENTS.c.created_at < before, ~sa.exists(owed))
            )
        return len(ids)

    def deliveries(
        self, *, limit: int = 100, subscriber_id: str | None = None, state: str | None = None
    ) -> list[DeliveryView]:
        """The delivery log, newest event first."""
        query = (
            sa.select(
                HOOK_DELIVERIES,
                HOOK_EVENTS.c.key,
                HOOK_EVENTS.c.kind,
                HOOK_EVENTS.c.created_at.label("event_created_at"),
            )
            .join(HOOK_EVENTS, HOOK_EVENTS.c.id == HOOK_DELIVERIES.c.event_id)
            .order_by(HOOK_DELIVERIES.c.id.desc())
            .limit(limit)
        )
        if subscriber_id is not None:
            query = query.where(HOOK_DELIVERIES.c.subscriber_id == subscriber_id)
        if state is not None:
            query = query.where(HOOK_DELIVERIES.c.state == state)
        with self.engine.connect() as connection:
            return [
                DeliveryView(
                    id=row.id,
                    event_key=row.key,
                    event_kind=row.kind,
                    subscriber_id=row.subscriber_id,
                    state=row.state,
                    attempts=row.attempts,
                    next_attempt_at=row.next_attempt_at,
                    last_attempt_at=row.last_attempt_at,
                    last_status=row.last_status,
                    last_error=row.last_error,
                    delivered_at=row.delivered_at,
                    created_at=row.event_created_at,
                )
                for row in connection.execute(query)
            ]


@dataclass(frozen=True)
class HealthMark:
    """A source's health as the detector last recorded (and sent) it."""

    source_id: str
    health: str
    detail: str
    since: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "health": self.health,
            "detail": self.detail,
            "since": self.since.isoformat(),
        }


class _Row:
    """Attribute access over a dict, so a joined row's subscriber columns read like a row."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)


def _aware(value: datetime | None) -> datetime | None:
    # Aggregates and labelled columns lose the UTC column type on SQLite.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _known(connection: Connection, key: str) -> bool:
    return (
        connection.execute(sa.select(HOOK_EVENTS.c.id).where(HOOK_EVENTS.c.key == key)).first()
        is not None
    )


def _write_marks(
    connection: Connection, marks: Mapping[str, dict[str, Any]], now: datetime
) -> None:
    if not marks:
        return
    subjects = list(marks)
    present: set[str] = set()
    for start in range(0, len(subjects), 500):
        present.update(
            row[0]
            for row in connection.execute(
                sa.select(HOOK_MARKS.c.subject).where(
                    HOOK_MARKS.c.subject.in_(subjects[start : start + 500])
                )
            )
        )
    inserts = [
        {"subject": s, "state": marks[s], "updated_at": now} for s in subjects if s not in present
    ]
    if inserts:
        connection.execute(HOOK_MARKS.insert(), inserts)
    for subject in present:
        connection.execute(
            HOOK_MARKS.update()
            .where(HOOK_MARKS.c.subject == subject)
            .values(state=marks[subject], updated_at=now)
        )

"""The clustering stage's reads and writes: pending entries, stored features, the active window,
story moves and merges with recounts, decisions, language centering, and the reset for a redo.

``ClusterWriter`` works inside one transaction that the caller (``Store.clustering``) opens and
commits, so a batch is all or nothing. Set-based where it matters; per-story statements where
a batch touches a few dozen stories at most.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from aggregator.store.entries import _chunks, _greatest, _when, story_uid
from aggregator.store.models import PENDING_ORDER
from aggregator.store.republication import FACT_COLUMNS, ItemFacts, stored_facts
from aggregator.store.tables import CENTERING, ENTRIES, FEATURES, FULL_TEXTS, STATE, STORIES
from aggregator.types import FullTextOutcome

# The write path's exact signals: an entry joined its story by one of these when it was stored.
EXACT_SIGNALS = frozenset({"url", "content_hash"})
# Text handed to the stage per entry: more than language detection, the embedding lead, the
# evidence tokens and the shingles read (400, 300, 1,500 and 3,000 characters).
PENDING_TEXT_CHARS = 4000
# Any constant works, as long as nothing else in the database takes the same key.
ADVISORY_LOCK_KEY = 0x61676753544F5259  # "aggSTORY"
# One worker runs the stage at a time, so two never spend model time on the same entries.
STAGE_LOCK_KEY = 0x6167675354414745  # "aggSTAGE"
MERGED_BY_CLUSTER = "cluster"
MERGED_BY_EDITOR = "editor"


@dataclass(frozen=True)
class PendingEntry:
    """An entry waiting for the clustering stage, with what the stage reads of it."""

    id: int
    title: str
    text: str
    language: str | None
    url: str | None
    published_at: datetime
    has_features: bool
    source_id: str = ""
    identity_key: str = ""

    @property
    def order(self) -> tuple[datetime, str, str, int]:
        """The stage's decision order: by time, then by what the entry is, never by when it
        happened to be stored (concurrent polls store in any order)."""
        return (self.published_at, self.source_id, self.identity_key, self.id)

    # The article's main text when the full-text stage extracted it (``polling.fulltext``),
    # for the features to read instead of the feed's often truncated text; None otherwise.
    full_text: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where a pending entry is right now (inside the batch's transaction) and why."""

    entry_id: int
    story_id: int | None  # None only for rows written before stories existed
    signal: str | None
    matched_entry_id: int | None

    @property
    def exact(self) -> bool:
        return self.signal in EXACT_SIGNALS


# The stage's order, read through ix_entries_pending (models.PENDING_ORDER): led by
# ``clustered_at``, NULL in every pending row, so it changes nothing but lets both databases
# walk the index by time, sorting only entries of equal time, instead of sorting every pending
# entry at each batch.
_PENDING_ORDER = tuple(ENTRIES.c[name] for name in PENDING_ORDER)


def pending_entries(connection: Connection, limit: int) -> list[PendingEntry]:
    """The first ``limit`` pending entries in the stage's order (``PendingEntry.order``), so a
    batch holds the same entries whichever order the polls stored them in."""
    return _pending_rows(connection, _pending().order_by(*_PENDING_ORDER).limit(limit))


def unfeatured_entries(connection: Connection, limit: int) -> list[PendingEntry]:
    """Up to ``limit`` pending entries without stored features, newest first: the model step
    of a worker without the stage's turn, which works from the other end of the queue than
    the turn's holder (it decides oldest first), so the two rarely compute one entry."""
    query = (
        _pending()
        .where(FEATURES.c.entry_id.is_(None))
        .order_by(*(column.desc() for column in _PENDING_ORDER))
    )
    return _pending_rows(connection, query.limit(limit))


def _pending() -> sa.Select[Any]:
    return (
        sa.select(
            ENTRIES.c.id,
            ENTRIES.c.title,
            sa.func.substr(ENTRIES.c.text, 1, PENDING_TEXT_CHARS).label("text"),
            ENTRIES.c.language,
            ENTRIES.c.url,
            ENTRIES.c.published_at,
            FEATURES.c.entry_id.is_not(None).label("has_features"),
            ENTRIES.c.source_id,
            ENTRIES.c.identity_key,
            sa.func.substr(FULL_TEXTS.c.text, 1, PENDING_TEXT_CHARS).label("full_text"),
        )
        .select_from(
            ENTRIES.outerjoin(FEATURES, FEATURES.c.entry_id == ENTRIES.c.id).outerjoin(
                FULL_TEXTS,
                sa.and_(
                    FULL_TEXTS.c.entry_id == ENTRIES.c.id,
                    FULL_TEXTS.c.outcome == FullTextOutcome.EXTRACTED.value,
                ),
            )
        )
        .where(ENTRIES.c.clustered_at.is_(None))
    )


def _pending_rows(connection: Connection, query: sa.Select[Any]) -> list[PendingEntry]:
    return [
        PendingEntry(
            row.id,
            row.title,
            row.text or "",
            row.language,
            row.url,
            row.published_at,
            bool(row.has_features),
            source_id=row.source_id,
            identity_key=row.identity_key,
            full_text=row.full_text or None,
        )
        for row in connection.execute(query)
    ]


def save_features(
    connection: Connection, records: Iterable[dict[str, object]], model: str, now: datetime
) -> int:
    """Store computed features of entries still stored; a row another worker stored first
    stays (features are a function of the entry's text, so either row serves). Returns the
    rows written."""
    values = [
        {**record, "entry_id": int(str(record["entry_id"])), "model": model, "computed_at": now}
        for record in records
    ]
    if not values:
        return 0
    # An entry pruned while its features were computed (retention) gets none.
    present = set(
        connection.execute(
            sa.select(ENTRIES.c.id).where(ENTRIES.c.id.in_([v["entry_id"] for v in values]))
        ).scalars()
    )
    values = [v for v in values if v["entry_id"] in present]
    if not values:
        return 0
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    written = connection.execute(
        insert(FEATURES)
        .values(values)
        .on_conflict_do_nothing(index_elements=[FEATURES.c.entry_id])
        .returning(FEATURES.c.entry_id)
    ).all()
    return len(written)


def pending_count(connection: Connection) -> int:
    return int(
        connection.execute(
            sa.select(sa.func.count()).select_from(ENTRIES).where(ENTRIES.c.clustered_at.is_(None))
        ).scalar_one()
    )


def live_story(connection: Connection, story_id: int) -> int:
    """Follow ``merged_into_id`` to the story that absorbed ``story_id`` (itself if none)."""
    current = story_id
    for _ in range(50):  # chains are flattened on merge; the bound guards against a cycle
        target = connection.execute(
            sa.select(STORIES.c.merged_into_id).where(STORIES.c.id == current)
        ).scalar()
        if target is None:
            return current
        current = int(target)
    return current


def story_uid_for(*parts: object) -> str:
    """A uid for a story made by an editor's split: derived, so it is the same on a rebuild."""
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:20]


class ClusterWriter:
    """Reads and writes of one clustering batch, inside its caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._touched: set[int] = set()

    # -- state -----------------------------------------------------------------------------

    def version(self) -> int:
        value = self.connection.execute(sa.select(STATE.c.version).where(STATE.c.id == 1)).scalar()
        return int(value or 0)

    def bump(self, now: datetime) -> int:
        version = self.version() + 1
        updated = self.connection.execute(
            STATE.update().where(STATE.c.id == 1).values(version=version, updated_at=now)
        )
        if not updated.rowcount:
            self.connection.execute(STATE.insert().values(id=1, version=version, updated_at=now))
        return version

    def centering(self) -> dict[str, tuple[int, bytes]]:
        rows = self.connection.execute(
            sa.select(CENTERING.c.lang, CENTERING.c.count, CENTERING.c.vector_sum)
        )
        return {lang: (int(count), bytes(data)) for lang, count, data in rows}

    def save_centering(self, state: dict[str, tuple[int, bytes]], now: datetime) -> None:
        stored = set(self.centering())
        for lang in sorted(state):
            count, data = state[lang]
            if lang in stored:
                self.connection.execute(
                    CENTERING.update()
                    .where(CENTERING.c.lang == lang)
                    .values(count=count, vector_sum=data, updated_at=now)
                )
            else:
                self.connection.execute(
                    CENTERING.insert().values(
                        lang=lang, count=count, vector_sum=data, updated_at=now
                    )
                )

    # -- reads -----------------------------------------------------------------------------

    def placements(self, entry_ids: Sequence[int]) -> dict[int, Placement]:
        """Entries of ``entry_ids`` that are still pending, with their live story."""
        found: dict[int, Placement] = {}
        for chunk in _chunks(sorted(entry_ids)):
            rows = self.connection.execute(
                sa.select(
                    ENTRIES.c.id,
                    ENTRIES.c.story_id,
                    ENTRIES.c.story_signal,
                    ENTRIES.c.story_matched_entry_id,
                    STORIES.c.merged_into_id,
                )
                .select_from(ENTRIES.outerjoin(STORIES, STORIES.c.id == ENTRIES.c.story_id))
                .where(ENTRIES.c.id.in_(chunk), ENTRIES.c.clustered_at.is_(None))
            )
            for row in rows:
                story = row.story_id
                if row.merged_into_id is not None:  # rare: merged while the entry waited
                    story = live_story(self.connection, story)
                found[row.id] = Placement(
                    row.id, story, row.story_signal, row.story_matched_entry_id
                )
        return found

    def features(self, entry_ids: Sequence[int]) -> dict[int, dict[str, object]]:
        """Stored feature records of these entries (computed by an earlier run)."""
        found: dict[int, dict[str, object]] = {}
        for chunk in _chunks(sorted(entry_ids)):
            for row in self.connection.execute(
                sa.select(FEATURES).where(FEATURES.c.entry_id.in_(chunk))
            ):
                found[row.entry_id] = _record(row)
        return found

    def window(self, since: datetime) -> list[tuple[int, dict[str, object]]]:
        """(story id, member features) of clustered members of live stories with a time from
        ``since`` on: the active window, read through the features' time index and grouped by
        story here: with an ORDER BY story in SQL, SQLite walked every stored entry in story
        order instead, so the warm-up grew with the store (docs/dedup.md, "Clustering cost")."""
        rows = self.connection.execute(
            sa.select(ENTRIES.c.story_id, FEATURES)
            .select_from(
                FEATURES.join(ENTRIES, ENTRIES.c.id == FEATURES.c.entry_id).join(
                    STORIES, STORIES.c.id == ENTRIES.c.story_id
                )
            )
            .where(
                FEATURES.c.published >= _when("since"),
                ENTRIES.c.clustered_at.is_not(None),
                STORIES.c.merged_into_id.is_(None),
            ),
            {"since": since},
        )
        found = [(int(row.story_id), int(row.entry_id), _record(row)) for row in rows]
        found.sort(key=lambda item: (item[0], item[1]))
        return [(story_id, record) for story_id, _, record in found]

    def item_facts(self, entry_ids: Iterable[int]) -> dict[int, tuple[str, ItemFacts]]:
        """(source id, what tells the source's items apart) of these entries: two entries of
        one source share a story only when ``same_item`` says they are one item."""
        found: dict[int, tuple[str, ItemFacts]] = {}
        for chunk in _chunks(sorted(set(entry_ids))):
            rows = self.connection.execute(
                sa.select(
                    ENTRIES.c.id, ENTRIES.c.source_id, *(ENTRIES.c[name] for name in FACT_COLUMNS)
                ).where(ENTRIES.c.id.in_(chunk))
            )
            for row in rows:
                found[row.id] = (row.source_id, stored_facts(row))
        return found

    def clustered_members(self, story_id: int, *, besides: int) -> int:
        """How many members of the story the stage has already placed, ``besides`` excluded."""
        return int(
            self.connection.execute(
                sa.select(sa.func.count())
                .select_from(ENTRIES)
                .where(
                    ENTRIES.c.story_id == story_id,
                    ENTRIES.c.id != besides,
                    ENTRIES.c.clustered_at.is_not(None),
                )
            ).scalar_one()
        )

    def live(self, story_id: int) -> int:
        return live_story(self.connection, story_id)

    def is_settled(self, story_id: int) -> bool:
        """Whether the story's uid is fixed (it may have been shown)."""
        return (
            self.connection.execute(
                sa.select(STORIES.c.settled_at).where(STORIES.c.id == story_id)
            ).scalar()
            is not None
        )

    def story_exists(self, story_id: int) -> bool:
        return (
            self.connection.execute(sa.select(STORIES.c.id).where(STORIES.c.id == story_id)).first()
            is not None
        )

    # -- writes ----------------------------------------------------------------------------

    def save_features(
        self, records: Iterable[dict[str, object]], model: str, now: datetime
    ) -> None:
        save_features(self.connection, records, model, now)

    def move_entry(self, entry_id: int, story_id: int, *, editor: bool = False) -> None:
        """Put one entry in another story. An editor's move also becomes the entry's origin,
        so re-clustering starts from where the editor put it and story ids stay put."""
        old = self.connection.execute(
            sa.select(ENTRIES.c.story_id).where(ENTRIES.c.id == entry_id)
        ).scalar()
        values: dict[str, Any] = {"story_id": story_id}
        if editor:
            values["origin_story_id"] = story_id
        if old == story_id and not editor:
            return
        self.connection.execute(ENTRIES.update().where(ENTRIES.c.id == entry_id).values(values))
        self._touched.update(s for s in (old, story_id) if s is not None)

    def merge(self, gone: int, into: int, now: datetime, *, by: str = MERGED_BY_CLUSTER) -> None:
        """Move every member of ``gone`` into ``into`` and mark ``gone`` merged: its uid never
        comes back as an item of its own. Earlier merges into ``gone`` now point at ``into``."""
        if gone == into:
            return
        self.connection.execute(
            ENTRIES.update().where(ENTRIES.c.story_id == gone).values(story_id=into)
        )
        self.connection.execute(
            STORIES.update().where(STORIES.c.merged_into_id == gone).values(merged_into_id=into)
        )
        self.connection.execute(
            STORIES.update()
            .where(STORIES.c.id == gone)
            .values(merged_into_id=into, merged_by=by, merged_at=now)
        )
        self._touched.update((gone, into))

    def new_story(self, entry_id: int, now: datetime, salt: object, *, settled: bool = True) -> int:
        """A fresh story for one entry (an editor's split, or a cannot-link honoured).
        ``settled=False`` leaves its uid to ``settle`` at the end of the clustering batch."""
        row = self.connection.execute(
            sa.select(
                ENTRIES.c.title,
                ENTRIES.c.published_at,
                ENTRIES.c.updated_at,
                ENTRIES.c.source_id,
                ENTRIES.c.identity_key,
            ).where(ENTRIES.c.id == entry_id)
        ).one()
        story_id = int(
            self.connection.execute(
                STORIES.insert()
                .returning(STORIES.c.id)
                .values(
                    uid=story_uid_for(row.source_id, row.identity_key, salt),
                    title=row.title,
                    first_seen_at=now,
                    published_at=row.published_at,
                    updated_at=row.updated_at,
                    entry_count=0,
                    settled_at=now if settled else None,
                )
            ).scalar_one()
        )
        self._touched.add(story_id)
        return story_id

    def settle(self, entry_ids: Sequence[int], now: datetime) -> int:
        """Fix the uid of each unsettled live story holding one of ``entry_ids`` whose members
        are all decided: the uid its canonical member (least source id, then identity key)
        would found, so the same stories get the same uids whichever copy was stored first.
        Unsettled stories were never shown, so their provisional uids can go. Returns how
        many stories settled."""
        stories: set[int] = set()
        for chunk in _chunks(sorted(entry_ids)):
            stories.update(
                self.connection.execute(
                    sa.select(ENTRIES.c.story_id).where(
                        ENTRIES.c.id.in_(chunk), ENTRIES.c.story_id.is_not(None)
                    )
                ).scalars()
            )
        current: dict[int, str] = {}
        for chunk in _chunks(sorted(stories)):
            current.update(
                (row.id, row.uid)
                for row in self.connection.execute(
                    sa.select(STORIES.c.id, STORIES.c.uid).where(
                        STORIES.c.id.in_(chunk),
                        STORIES.c.merged_into_id.is_(None),
                        STORIES.c.settled_at.is_(None),
                    )
                )
            )
        canonical: dict[int, tuple[str, str]] = {}
        waiting: set[int] = set()
        for chunk in _chunks(sorted(current)):
            for story_id, source_id, key, clustered in self.connection.execute(
                sa.select(
                    ENTRIES.c.story_id,
                    ENTRIES.c.source_id,
                    ENTRIES.c.identity_key,
                    ENTRIES.c.clustered_at,
                ).where(ENTRIES.c.story_id.in_(chunk))
            ):
                if clustered is None:
                    waiting.add(story_id)  # a copy the next batch decides: settle then
                best = canonical.get(story_id)
                if best is None or (source_id, key) < best:
                    canonical[story_id] = (source_id, key)
        final = {
            story_id: story_uid(*member)
            for story_id, member in canonical.items()
            if story_id not in waiting
        }
        if not final:
            return 0
        # Whoever holds a wanted uid already: an unsettled story (never shown) gives it up; a
        # settled one keeps it, and the story that wanted it keeps its provisional uid.
        holders = {
            row.uid: row.id
            for row in self.connection.execute(
                sa.select(STORIES.c.uid, STORIES.c.id).where(
                    STORIES.c.uid.in_(sorted(set(final.values()))),
                    STORIES.c.id.not_in(sorted(final)),
                )
            )
        }
        settled_holders = set(
            self.connection.execute(
                sa.select(STORIES.c.id).where(
                    STORIES.c.id.in_(sorted(holders.values())), STORIES.c.settled_at.is_not(None)
                )
            ).scalars()
        )
        renames = {
            story_id: uid
            for story_id, uid in final.items()
            if holders.get(uid) not in settled_holders
        }
        while True:  # a story that cannot move keeps its uid, which no other may then take
            staying = {current[story_id] for story_id in final if story_id not in renames}
            blocked = {story_id for story_id, uid in renames.items() if uid in staying}
            if not blocked:
                break
            for story_id in blocked:
                del renames[story_id]
        displaced = {
            holders[uid]: story_uid_for("provisional", holders[uid], uid)
            for uid in renames.values()
            if uid in holders
        }
        changes = {**renames, **displaced}
        update = (
            STORIES.update()
            .where(STORIES.c.id == sa.bindparam("story_id"))
            .values(uid=sa.bindparam("new_uid"))
        )
        # Through unique placeholders first, so two stories may trade uids.
        moving = {
            story_id: uid for story_id, uid in changes.items() if current.get(story_id) != uid
        }
        if moving:
            self.connection.execute(
                update, [{"story_id": story_id, "new_uid": f"~{story_id}"} for story_id in moving]
            )
            self.connection.execute(
                update, [{"story_id": story_id, "new_uid": uid} for story_id, uid in moving.items()]
            )
        self.connection.execute(
            STORIES.update().where(STORIES.c.id.in_(sorted(final))).values(settled_at=now)
        )
        return len(final)

    def decide(
        self,
        entry_id: int,
        *,
        story_id: int,
        signal: str | None,
        score: float | None,
        matched_entry_id: int | None,
        decision: str,
        evidence: dict[str, Any],
        now: datetime,
    ) -> None:
        self.move_entry(entry_id, story_id)
        self.connection.execute(
            ENTRIES.update()
            .where(ENTRIES.c.id == entry_id)
            .values(
                story_signal=signal,
                story_score=score,
                story_matched_entry_id=matched_entry_id,
                story_decision=decision,
                story_evidence=evidence,
                story_decided_at=now,
                clustered_at=now,
            )
        )

    def keep(self, entry_ids: Sequence[int], evidence: dict[str, Any], now: datetime) -> None:
        """The cheap path: the entries stay in the story the exact signals gave them."""
        if not entry_ids:
            return
        self.connection.execute(
            ENTRIES.update()
            .where(ENTRIES.c.id == sa.bindparam("entry_id"))
            .values(
                story_decision="kept",
                story_evidence=sa.bindparam("evidence", type_=sa.JSON),
                story_decided_at=_when("now"),
                clustered_at=_when("now"),
            ),
            [{"entry_id": entry_id, "evidence": evidence, "now": now} for entry_id in entry_ids],
        )

    def recount(self, now: datetime) -> None:
        """Member count, earliest time and update time of every story this batch touched."""
        touched, self._touched = sorted(self._touched), set()
        members = (
            sa.select(sa.func.count())
            .select_from(ENTRIES)
            .where(ENTRIES.c.story_id == STORIES.c.id)
            .scalar_subquery()
        )
        earliest = (
            sa.select(sa.func.min(ENTRIES.c.published_at))
            .where(ENTRIES.c.story_id == STORIES.c.id)
            .scalar_subquery()
        )
        for chunk in _chunks(touched):
            self.connection.execute(
                STORIES.update()
                .where(STORIES.c.id.in_(chunk))
                .values(
                    entry_count=members,
                    published_at=sa.func.coalesce(earliest, STORIES.c.published_at),
                    # Readers see a story whose versions changed as updated.
                    updated_at=_greatest(self.connection)(STORIES.c.updated_at, _when("now")),
                ),
                {"now": now},
            )


def source_features(connection: Connection, source_id: str) -> dict[str, dict[str, object]]:
    rows = connection.execute(
        sa.select(ENTRIES.c.guid, FEATURES)
        .select_from(FEATURES.join(ENTRIES, ENTRIES.c.id == FEATURES.c.entry_id))
        .where(ENTRIES.c.source_id == source_id)
    )
    return {row.guid: _record(row) for row in rows if row.guid}


def _record(row: Any) -> dict[str, object]:
    return {
        "entry_id": str(row.entry_id),
        "lang": row.lang,
        "title_lang": row.title_lang,
        "body_lang": row.body_lang,
        "lang_confidence": row.lang_confidence,
        "published": row.published,
        "embedding": bytes(row.embedding),
        "minhash": bytes(row.minhash),
        "evidence": row.evidence,
    }


def reset(connection: Connection, now: datetime) -> int:
    """Forget every clustering decision: entries go back to the story they were written into,
    the machine's merges are undone (editors' stay), the language centering starts afresh;
    features and overrides are kept. Returns how many entries are pending again."""
    exact = ENTRIES.c.story_signal.in_(sorted(EXACT_SIGNALS))
    connection.execute(
        STORIES.update()
        .where(STORIES.c.merged_by == MERGED_BY_CLUSTER)
        .values(merged_into_id=None, merged_by=None, merged_at=None)
    )
    connection.execute(
        ENTRIES.update().values(
            story_id=sa.func.coalesce(ENTRIES.c.origin_story_id, ENTRIES.c.story_id)
        )
    )
    connection.execute(
        ENTRIES.update()
        .where(ENTRIES.c.story_decision.is_not(None))
        .values(
            story_signal=sa.case((exact, ENTRIES.c.story_signal), else_="new"),
            story_score=sa.case((exact, ENTRIES.c.story_score), else_=None),
            story_matched_entry_id=sa.case((exact, ENTRIES.c.story_matched_entry_id), else_=None),
            story_decision=None,
            story_evidence=sa.null(),
            story_decided_at=None,
        )
    )
    # An entry written into a story that an editor merged away belongs to the survivor.
    merged = (
        connection.execute(sa.select(STORIES.c.id).where(STORIES.c.merged_into_id.is_not(None)))
        .scalars()
        .all()
    )
    for story_id in merged:
        connection.execute(
            ENTRIES.update()
            .where(ENTRIES.c.story_id == story_id)
            .values(story_id=live_story(connection, story_id))
        )
    pending = connection.execute(
        ENTRIES.update().where(ENTRIES.c.clustered_at.is_not(None)).values(clustered_at=None)
    )
    members = (
        sa.select(sa.func.count())
        .select_from(ENTRIES)
        .where(ENTRIES.c.story_id == STORIES.c.id)
        .scalar_subquery()
    )
    connection.execute(STORIES.update().values(entry_count=members))
    connection.execute(CENTERING.delete())
    ClusterWriter(connection).bump(now)
    return int(pending.rowcount or 0)


def lock(connection: Connection) -> None:
    """Under PostgreSQL, one clustering batch at a time across every process: released at the
    end of the transaction. SQLite's writer lock (BEGIN IMMEDIATE) already does this."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))


def try_stage_turn(connection: Connection) -> bool:
    """Under PostgreSQL, take the turn to run the clustering stage (a session lock held by
    ``connection`` until ``end_stage_turn``); False when another worker has it. Its own key:
    the batches it runs still take ``lock`` on other connections."""
    if connection.dialect.name != "postgresql":
        return True
    return bool(
        connection.execute(sa.select(sa.func.pg_try_advisory_lock(STAGE_LOCK_KEY))).scalar()
    )


def end_stage_turn(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_unlock(STAGE_LOCK_KEY)))

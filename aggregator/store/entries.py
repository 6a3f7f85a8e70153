"""Writing one feed's entries in set-based statements: entries, categories, exact-match stories.

A feed of N entries costs a handful of statements, not N round trips: one SELECT for the entries
already stored, one for the source's stored content hashes, one per exact signal (URL, content
hash) for stories to join, then executemany INSERT/UPDATE. New entries are left pending for the
clustering stage. Runs in ``save_poll``'s transaction.

Growth is bounded per source (``GrowthLimits``): an entry with a new identity but content this
source already stored is the same item under a new id (feeds that rotate their guids), so it
moves the stored entry's identity instead of adding one; and at most ``new_per_poll`` entries,
the newest, are added by one poll.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.models import UTCDateTime
from aggregator.store.republication import (
    FACT_COLUMNS,
    ItemFacts,
    item_facts,
    same_item,
    stored_facts,
)
from aggregator.store.tables import CATEGORIES, ENTRIES, STORIES
from aggregator.types import (
    FEED_DATE_SOURCES,
    CategoryMatch,
    CategoryOrigin,
    NormalizedEntry,
    media_json,
)

MAX_IDENTITY_KEY = 500
# Values per IN (...) list; stays far below every engine's bound-parameter limit.
IN_CHUNK = 500
# An undated entry found on a source's first poll is backlog of unknown age, not news of the
# poll's day: it is dated this long before the oldest of the feed's dated entries (or before
# the poll, when the feed dates nothing), one second apart in feed order, so a feed's whole
# undated backlog never takes over a category's top as "today". Undated entries that appear
# on later polls are new since the previous poll: they keep the time first seen.
BACKLOG_AGE = timedelta(days=7)


@dataclass(frozen=True)
class GrowthLimits:
    """How much one source may grow (0: no cap). ``new_per_poll`` bounds the entries one poll
    adds, the newest kept; ``per_source`` the entries the source keeps, the oldest pruned
    (``retention.trim_source``)."""

    new_per_poll: int = 500
    per_source: int = 10_000


@dataclass(frozen=True)
class Written:
    """What ``write_entries`` did with one feed's entries. ``repeated``: new identity, content
    already stored for the source (the same item, not added); ``refused``: over the per-poll
    cap, left for later polls."""

    new: int = 0
    updated: int = 0
    repeated: int = 0
    refused: int = 0


def _keys(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name, expanding=True)


# The save path's statements, built once: building and hashing a statement for every feed cost
# more than SQLite running it. Each is run with its bound values (``sa.bindparam``).
_ANY_ENTRY = (
    sa.select(ENTRIES.c.id).where(ENTRIES.c.source_id == sa.bindparam("source_id")).limit(1)
)
_STORED = sa.select(
    ENTRIES.c.id,
    ENTRIES.c.identity_key,
    ENTRIES.c.content_hash,
    ENTRIES.c.title,
    ENTRIES.c.url,
    ENTRIES.c.story_id,
    ENTRIES.c.published_at,
    ENTRIES.c.updated_at,
    ENTRIES.c.date_source,
    ENTRIES.c.enclosures,
    ENTRIES.c.image,
).where(ENTRIES.c.source_id == sa.bindparam("source_id"), ENTRIES.c.identity_key.in_(_keys("keys")))
_SAME_CONTENT = (
    sa.select(ENTRIES.c.id, ENTRIES.c.content_hash, ENTRIES.c.published_at)
    .where(
        ENTRIES.c.source_id == sa.bindparam("source_id"), ENTRIES.c.content_hash.in_(_keys("keys"))
    )
    .order_by(ENTRIES.c.id)
)
_MATCHES = {
    name: (
        sa.select(ENTRIES.c[name], ENTRIES.c.id, ENTRIES.c.story_id)
        .where(ENTRIES.c[name].in_(_keys("keys")), ENTRIES.c.story_id.is_not(None))
        .order_by(ENTRIES.c.id)
    )
    for name in ("url", "content_hash")
}
_OWN_MEMBERS = sa.select(ENTRIES.c.story_id, *(ENTRIES.c[name] for name in FACT_COLUMNS)).where(
    ENTRIES.c.source_id == sa.bindparam("source_id"), ENTRIES.c.story_id.in_(_keys("keys"))
)
_INSERT_STORIES = STORIES.insert().returning(STORIES.c.id, STORIES.c.uid)
_INSERT_ENTRIES = ENTRIES.insert().returning(ENTRIES.c.id, ENTRIES.c.identity_key)
_INSERT_CATEGORIES = CATEGORIES.insert()


def identity(key: str) -> str:
    # A long guid would overflow the index; its hash is as unique and stays stable.
    if len(key) <= MAX_IDENTITY_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def story_uid(source_id: str, identity_key: str) -> str:
    """Deterministic uid from the founding entry, so a rebuilt store gives the same item ids."""
    digest = hashlib.sha256(f"{source_id}\x00{identity_key}".encode()).hexdigest()
    return digest[:20]


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def _columns(entry: NormalizedEntry, now: datetime) -> dict[str, Any]:
    return {
        "guid": entry.guid[:2048] if entry.guid else None,
        "url": entry.url[:2048] if entry.url else None,
        "link": entry.link[:2048] if entry.link else None,
        "title": entry.title[:1000],
        "summary_html": entry.summary_html,
        "content_html": entry.content_html,
        "text": entry.text,
        "language": entry.language,
        "author": entry.author[:512] if entry.author else None,
        "tags": list(entry.tags),
        **_media_columns(entry),
        "content_hash": entry.content_hash,
        "published_at": entry.published_at,
        "updated_at": entry.updated_at,
        "date_source": entry.date_source,
        "fetched_at": now,
    }


def _media_columns(entry: NormalizedEntry) -> dict[str, Any]:
    return media_json(entry.enclosures, entry.image)


def _media(row: Any) -> dict[str, Any]:
    return {"enclosures": list(row.enclosures or []), "image": row.image}


def write_entries(
    connection: Connection,
    source_id: str,
    entries: Sequence[tuple[NormalizedEntry, Sequence[CategoryMatch]]],
    now: datetime,
    *,
    new_per_poll: int = 0,
) -> Written:
    """Insert new entries (at most ``new_per_poll``, the newest; 0: all), update changed ones,
    recognise repeated content under new identities.

    Entries are given in feed order. A row stored under an entry's ``legacy_key`` (the key an
    earlier version gave it) is adopted: renamed to the current key, so upgrading never
    duplicates what is stored. An undated entry keeps the date it was first given.
    """
    first_poll = connection.execute(_ANY_ENTRY, {"source_id": source_id}).first() is None
    if first_poll:
        entries = _date_backlog(entries, now)
    wanted = {identity(e.identity_key) for e, _ in entries}
    wanted |= {identity(e.legacy_key) for e, _ in entries if e.legacy_key}
    stored: dict[str, Any] = {}
    for chunk in _chunks(sorted(wanted)):
        for row in connection.execute(_STORED, {"source_id": source_id, "keys": chunk}):
            stored[row.identity_key] = row
    _adopt_legacy_rows(connection, entries, stored)
    # Oldest first, so a story's founding entry is the earliest one: stable uids.
    ordered = sorted(entries, key=lambda pair: (pair[0].published_at, pair[0].identity_key))
    keys = [identity(e.identity_key) for e, _ in ordered]
    fresh: list[tuple[str, NormalizedEntry, Sequence[CategoryMatch]]] = []
    changed: list[tuple[Any, NormalizedEntry, Sequence[CategoryMatch]]] = []
    media_only: list[dict[str, Any]] = []
    listed: set[int] = set()
    seen: set[str] = set()
    for key, (entry, matches) in zip(keys, ordered, strict=True):
        if key in seen:
            continue
        seen.add(key)
        old = stored.get(key)
        if old is None:
            fresh.append((key, entry, matches))
            continue
        listed.add(old.id)
        if (old.content_hash, old.title, old.url) != (
            entry.content_hash,
            entry.title[:1000],
            entry.url,
        ):
            kept = entry
            if entry.date_source not in FEED_DATE_SOURCES:
                # Still undated: the date it got when first seen stays (an edit is not news).
                kept = replace(
                    entry,
                    published_at=old.published_at,
                    updated_at=max(old.updated_at, old.published_at),
                    date_source=old.date_source or entry.date_source,
                )
            changed.append((old, kept, matches))
        elif _media(old) != (media := _media_columns(entry)):
            media_only.append({"entry_id": old.id, **media})
    candidates = len(fresh)
    fresh, moves = _recognise(connection, source_id, fresh, listed)
    repeated = candidates - len(fresh)
    refused = 0
    if new_per_poll and len(fresh) > new_per_poll:
        # Sorted oldest first: the newest are at the end, and readers must get those.
        refused = len(fresh) - new_per_poll
        fresh = fresh[refused:]
    if moves:
        connection.execute(
            ENTRIES.update()
            .where(ENTRIES.c.id == sa.bindparam("entry_id"))
            .values(identity_key=sa.bindparam("key"), guid=sa.bindparam("new_guid")),
            moves,
        )
    if changed:
        _update(connection, changed, now)
    if media_only:
        # New or moved media alone is no news: the row takes them without being "updated".
        connection.execute(
            ENTRIES.update()
            .where(ENTRIES.c.id == sa.bindparam("entry_id"))
            .values(enclosures=sa.bindparam("enclosures"), image=sa.bindparam("image")),
            media_only,
        )
    if fresh:
        _insert(connection, source_id, fresh, now)
    return Written(new=len(fresh), updated=len(changed), repeated=repeated, refused=refused)


def _recognise(
    connection: Connection,
    source_id: str,
    fresh: list[tuple[str, NormalizedEntry, Sequence[CategoryMatch]]],
    listed: set[int],
) -> tuple[list[tuple[str, NormalizedEntry, Sequence[CategoryMatch]]], list[dict[str, Any]]]:
    """Split entries with new identities into those to insert and the moves of stored
    identities: content this source stored under an id the feed no longer lists is the same
    item under a new id (a feed rotating its guids). Each stored entry takes at most one new
    identity, and never one while the feed still lists it under its own (the identity would
    flip between the two every poll). Without a guid, only an entry of the same date is the
    same item: a feed may repeat a text as a new item on a later date (the same talk at another
    event), and that stays an entry of its own, as do copies of one text within this batch."""
    if not fresh:
        return fresh, []
    free: dict[str, list[tuple[int, datetime]]] = {}
    for chunk in _chunks(sorted({e.content_hash for _, e, _ in fresh})):
        for row in connection.execute(_SAME_CONTENT, {"source_id": source_id, "keys": chunk}):
            if row.id not in listed:
                free.setdefault(row.content_hash, []).append((row.id, row.published_at))
    inserted: list[tuple[str, NormalizedEntry, Sequence[CategoryMatch]]] = []
    moves: list[dict[str, Any]] = []
    for key, entry, matches in fresh:
        candidates = free.get(entry.content_hash, [])
        pick = next(
            (
                i
                for i, (_, published) in enumerate(candidates)
                if entry.guid or published == entry.published_at
            ),
            None,
        )
        if pick is None:
            inserted.append((key, entry, matches))
            continue
        entry_id, _ = candidates.pop(pick)
        moves.append(
            {
                "entry_id": entry_id,
                "key": key,
                "new_guid": entry.guid[:2048] if entry.guid else None,
            }
        )
    return inserted, moves


def _date_backlog(
    entries: Sequence[tuple[NormalizedEntry, Sequence[CategoryMatch]]], now: datetime
) -> list[tuple[NormalizedEntry, Sequence[CategoryMatch]]]:
    """A first poll's undated entries dated as backlog (``BACKLOG_AGE``)."""
    dated = [e.published_at for e, _ in entries if e.date_source in FEED_DATE_SOURCES]
    anchor = min([*dated, now]) - BACKLOG_AGE
    result: list[tuple[NormalizedEntry, Sequence[CategoryMatch]]] = []
    position = 0
    for entry, matches in entries:
        if entry.date_source != "first-seen":
            result.append((entry, matches))
            continue
        moment = anchor - timedelta(seconds=position)
        position += 1
        result.append(
            (replace(entry, published_at=moment, updated_at=moment, date_source="backlog"), matches)
        )
    return result


def _adopt_legacy_rows(
    connection: Connection,
    entries: Sequence[tuple[NormalizedEntry, Sequence[CategoryMatch]]],
    stored: dict[str, Any],
) -> None:
    """Rename rows stored under a legacy key to the current key of the first entry (in feed
    order) that claims them, unless some entry still has that key as its own."""
    current = {identity(e.identity_key) for e, _ in entries}
    renames: list[dict[str, Any]] = []
    for entry, _ in entries:
        if not entry.legacy_key:
            continue
        key, legacy = identity(entry.identity_key), identity(entry.legacy_key)
        row = stored.get(legacy)
        if key in stored or row is None or legacy in current:
            continue
        del stored[legacy]
        stored[key] = row
        renames.append({"entry_id": row.id, "key": key})
    if renames:
        connection.execute(
            ENTRIES.update()
            .where(ENTRIES.c.id == sa.bindparam("entry_id"))
            .values(identity_key=sa.bindparam("key")),
            renames,
        )


def _update(
    connection: Connection,
    changed: list[tuple[Any, NormalizedEntry, Sequence[CategoryMatch]]],
    now: datetime,
) -> None:
    connection.execute(
        ENTRIES.update().where(ENTRIES.c.id == sa.bindparam("entry_id")),
        [{"entry_id": old.id, **_columns(entry, now)} for old, entry, _ in changed],
    )
    ids = [old.id for old, _, _ in changed]
    # The topic match was decided on the entry's stored embedding, which an edit of its text
    # does not recompute: it stays unless the new keyword decisions cover that category.
    kept_topics: dict[int, list[CategoryMatch]] = {}
    for chunk in _chunks(ids):
        for row in connection.execute(
            sa.select(
                CATEGORIES.c.entry_id,
                CATEGORIES.c.category_id,
                CATEGORIES.c.score,
                CATEGORIES.c.reason,
                CATEGORIES.c.origin,
            ).where(CATEGORIES.c.entry_id.in_(chunk))
        ):
            if row.origin == CategoryOrigin.TOPIC:
                kept_topics.setdefault(row.entry_id, []).append(
                    CategoryMatch(row.category_id, row.score, row.reason, CategoryOrigin.TOPIC)
                )
        connection.execute(CATEGORIES.delete().where(CATEGORIES.c.entry_id.in_(chunk)))
    rows: list[tuple[int, Sequence[CategoryMatch]]] = []
    for old, _, matches in changed:
        taken = {m.category_id for m in matches}
        topics = [m for m in kept_topics.get(old.id, ()) if m.category_id not in taken]
        rows.append((old.id, [*matches, *topics]))
    _insert_categories(connection, rows)
    bumps: dict[int, datetime] = {}
    for old, entry, _ in changed:
        if old.story_id is not None:
            bumps[old.story_id] = max(bumps.get(old.story_id, entry.updated_at), entry.updated_at)
    if bumps:
        connection.execute(
            STORIES.update()
            .where(STORIES.c.id == sa.bindparam("story_id"))
            .values(updated_at=_greatest(connection)(STORIES.c.updated_at, _when("moment"))),
            [{"story_id": sid, "moment": moment} for sid, moment in bumps.items()],
        )


def _when(name: str) -> sa.BindParameter[datetime]:
    # Typed, so SQLite gets the same naive-UTC text as the column's own values.
    return sa.bindparam(name, type_=UTCDateTime())


def _greatest(connection: Connection) -> Any:
    return sa.func.max if connection.dialect.name == "sqlite" else sa.func.greatest


def _existing_matches(
    connection: Connection, column: str, values: set[str]
) -> dict[str, tuple[int, int]]:
    """value → (earliest entry id, its story id) among entries that already have a story."""
    found: dict[str, tuple[int, int]] = {}
    for chunk in _chunks(sorted(values)):
        for value, entry_id, story_id in connection.execute(_MATCHES[column], {"keys": chunk}):
            found.setdefault(value, (entry_id, story_id))
    return found


def _live_stories(connection: Connection, story_ids: set[int]) -> dict[int, int]:
    """Follow ``merged_into_id`` so entries join the story that absorbed theirs."""
    resolved = {sid: sid for sid in story_ids}
    pending = set(story_ids)
    for _ in range(20):  # merge chains are short; the bound guards against a cycle
        if not pending:
            break
        rows = connection.execute(
            sa.select(STORIES.c.id, STORIES.c.merged_into_id).where(
                STORIES.c.id.in_(sorted(pending)), STORIES.c.merged_into_id.is_not(None)
            )
        )
        moved = {row.id: row.merged_into_id for row in rows}
        for original, current in resolved.items():
            if current in moved:
                resolved[original] = moved[current]
        pending = set(moved.values())
    return resolved


def _insert(
    connection: Connection,
    source_id: str,
    fresh: list[tuple[str, NormalizedEntry, Sequence[CategoryMatch]]],
    now: datetime,
) -> None:
    by_url = _existing_matches(connection, "url", {e.url for _, e, _ in fresh if e.url})
    by_hash = _existing_matches(connection, "content_hash", {e.content_hash for _, e, _ in fresh})
    live = _live_stories(connection, {sid for _, sid in (*by_url.values(), *by_hash.values())})
    # This source's entries already in those stories: one feed's distinct items never share a
    # story (issue 14), so an exact signal that would put an entry beside one is not followed.
    own: dict[int | tuple[str, int], list[ItemFacts]] = _own_members(
        connection, source_id, set(live.values())
    )

    def fits(ref: int | tuple[str, int], facts: ItemFacts) -> bool:
        return all(same_item(facts, member) for member in own.get(ref, ()))

    # Each entry's story: a stored story id, or ("new", p) for the story that the entry at
    # batch position p founds. Copies within this feed follow the first one.
    story_ref: list[int | tuple[str, int]] = []
    signals: list[str] = []
    matched: list[int | None] = []  # a stored entry id
    matched_in_batch: dict[int, int] = {}  # position -> earlier position it matched
    first_url: dict[str, int] = {}
    first_hash: dict[str, int] = {}
    for position, (_key, entry, _matches) in enumerate(fresh):
        facts = item_facts(entry)
        ref: int | tuple[str, int] = ("new", position)
        signal, stored_match = "new", None
        if entry.url and entry.url in by_url and fits(live[by_url[entry.url][1]], facts):
            stored_match, story_id = by_url[entry.url]
            ref, signal = live[story_id], "url"
        elif entry.content_hash in by_hash and fits(live[by_hash[entry.content_hash][1]], facts):
            stored_match, story_id = by_hash[entry.content_hash]
            ref, signal = live[story_id], "content_hash"
        elif entry.url and entry.url in first_url and fits(story_ref[first_url[entry.url]], facts):
            earlier = first_url[entry.url]
            ref, signal = story_ref[earlier], "url"
            matched_in_batch[position] = earlier
        elif entry.content_hash in first_hash and fits(
            story_ref[first_hash[entry.content_hash]], facts
        ):
            earlier = first_hash[entry.content_hash]
            ref, signal = story_ref[earlier], "content_hash"
            matched_in_batch[position] = earlier
        own.setdefault(ref, []).append(facts)
        story_ref.append(ref)
        signals.append(signal)
        matched.append(stored_match)
        if entry.url:
            first_url.setdefault(entry.url, position)
        first_hash.setdefault(entry.content_hash, position)

    founders = [p for p, ref in enumerate(story_ref) if ref == ("new", p)]
    # A story founded here is written with its members already counted and dated (what
    # _count_members would make of it), which spares an UPDATE per new story.
    members: dict[int, list[NormalizedEntry]] = {p: [] for p in founders}
    for position, ref in enumerate(story_ref):
        if isinstance(ref, tuple):
            members[ref[1]].append(fresh[position][1])
    founded: dict[int, int] = {}
    if founders:
        uids = {p: story_uid(source_id, fresh[p][0]) for p in founders}
        # Ids matched back by uid rather than by row order: asking for the order makes
        # SQLAlchemy send SQLite one INSERT per row, this way it is one per batch.
        rows = connection.execute(
            _INSERT_STORIES,
            [
                {
                    "uid": uids[p],
                    "title": fresh[p][1].title[:1000],
                    "first_seen_at": now,
                    "published_at": min(e.published_at for e in members[p]),
                    "updated_at": max(e.updated_at for e in members[p]),
                    "entry_count": len(members[p]),
                    "merged_into_id": None,
                }
                for p in founders
            ],
        )
        by_uid = {row.uid: row.id for row in rows}
        founded = {p: by_uid[uids[p]] for p in founders}

    values = []
    for position, (key, entry, _matches) in enumerate(fresh):
        ref = story_ref[position]
        story_id = founded[ref[1]] if isinstance(ref, tuple) else ref
        values.append(
            {
                "source_id": source_id,
                "identity_key": key,
                "first_seen_at": now,
                # clustered_at stays NULL: the clustering stage picks the entry up after this.
                "story_id": story_id,
                "origin_story_id": story_id,
                "story_signal": signals[position],
                "story_score": None if signals[position] == "new" else 1.0,
                "story_matched_entry_id": matched[position],
                **_columns(entry, now),
            }
        )
    # Matched back by identity key (unique within the source), as the stories by uid.
    by_key = {row.identity_key: row.id for row in connection.execute(_INSERT_ENTRIES, values)}
    entry_ids = [by_key[v["identity_key"]] for v in values]
    # Matches inside this batch point at entries whose ids exist only now.
    inside = [(entry_ids[p], entry_ids[q]) for p, q in matched_in_batch.items()]
    if inside:
        connection.execute(
            ENTRIES.update()
            .where(ENTRIES.c.id == sa.bindparam("entry_id"))
            .values(story_matched_entry_id=sa.bindparam("matched")),
            [{"entry_id": entry_id, "matched": matched} for entry_id, matched in inside],
        )
    _insert_categories(connection, [(entry_ids[p], fresh[p][2]) for p in range(len(fresh))])
    joined = [v for v, ref in zip(values, story_ref, strict=True) if not isinstance(ref, tuple)]
    if joined:
        _count_members(
            connection,
            [v["story_id"] for v in joined],
            [(v["story_id"], v["published_at"], v["updated_at"]) for v in joined],
            now,
        )


def _own_members(
    connection: Connection, source_id: str, story_ids: set[int]
) -> dict[int | tuple[str, int], list[ItemFacts]]:
    found: dict[int | tuple[str, int], list[ItemFacts]] = {}
    for chunk in _chunks(sorted(story_ids)):
        for row in connection.execute(_OWN_MEMBERS, {"source_id": source_id, "keys": chunk}):
            found.setdefault(row.story_id, []).append(stored_facts(row))
    return found


def _count_members(
    connection: Connection,
    story_ids: list[int],
    dates: list[tuple[int, datetime, datetime]],
    now: datetime,
) -> None:
    counts: dict[int, int] = {}
    earliest: dict[int, datetime] = {}
    latest: dict[int, datetime] = {}
    for story_id, published, updated in dates:
        counts[story_id] = counts.get(story_id, 0) + 1
        earliest[story_id] = min(earliest.get(story_id, published), published)
        latest[story_id] = max(latest.get(story_id, updated), updated)
    sqlite = connection.dialect.name == "sqlite"
    least = sa.func.min if sqlite else sa.func.least
    connection.execute(
        STORIES.update()
        .where(STORIES.c.id == sa.bindparam("story_id"))
        .values(
            entry_count=STORIES.c.entry_count + sa.bindparam("added"),
            published_at=least(STORIES.c.published_at, _when("earliest")),
            # A stored story that gains a member is updated: readers see the new version.
            updated_at=_greatest(connection)(
                STORIES.c.updated_at,
                _when("latest"),
                sa.case((STORIES.c.entry_count > 0, _when("now")), else_=STORIES.c.updated_at),
            ),
        ),
        [
            {
                "story_id": sid,
                "added": counts[sid],
                "earliest": earliest[sid],
                "latest": latest[sid],
                "now": now,
            }
            for sid in sorted(counts)
        ],
    )


def _insert_categories(
    connection: Connection, rows: list[tuple[int, Sequence[CategoryMatch]]]
) -> None:
    values = [
        {
            "entry_id": entry_id,
            "category_id": m.category_id,
            "score": m.score,
            "reason": m.reason[:500],
            "origin": m.origin.value,
        }
        for entry_id, matches in rows
        for m in matches
    ]
    if values:
        connection.execute(_INSERT_CATEGORIES, values)

"""Editors' corrections to stories: recorded with who and when, applied at once, obeyed by every
later clustering decision, and undone at once (kept, marked undone, for the record).

Each correction remembers what it changed (``detail``): the entries a merge moved, the story a
split took an entry from, so undo restores that state without waiting for a re-clustering.
Runs inside a ``ClusterWriter``'s transaction, so a correction and a clustering batch never
interleave and a refused one leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store import reclassify
from aggregator.store.clustering import MERGED_BY_EDITOR, ClusterWriter, live_story
from aggregator.store.tables import ENTRIES, OVERRIDES, STORIES
from aggregator.types import CorrectionKind

# ``pin`` puts an entry in a story; ``category_pin`` lists a story first in a category.
# Rules applied to stored entries are recorded by ``store.reclassify``, not here.
OVERRIDE_KINDS = frozenset(CorrectionKind) - {CorrectionKind.RULES}
# Corrections of what a category shows: they never change a story's members.
CATEGORY_KINDS = frozenset({CorrectionKind.HIDE, CorrectionKind.CATEGORY_PIN, CorrectionKind.RULES})
EDITOR_SIGNAL = "editor_pin"
MAX_CATEGORY = 64


@dataclass(frozen=True)
class OverrideView:
    id: int
    kind: str
    entry_id: int | None
    other_entry_id: int | None
    story_id: int | None
    other_story_id: int | None
    note: str | None
    created_by: str
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None
    category: str | None = None

    def describe(self) -> str:
        """One line for people: what the correction does."""
        where = f" in {self.category!r}" if self.category else ""
        return {
            "merge": f"merge story #{self.story_id} with story #{self.other_story_id}",
            "split": f"split entry #{self.entry_id} into story #{self.story_id}",
            "pin": f"put entry #{self.entry_id} in story #{self.story_id}",
            "must_link": f"keep entries #{self.entry_id} and #{self.other_entry_id} together",
            "cannot_link": f"keep entries #{self.entry_id} and #{self.other_entry_id} apart",
            "hide": f"hide story #{self.story_id}{where or ' everywhere'}",
            "category_pin": f"pin story #{self.story_id} first{where}",
            "rules": f"apply the rules{where} to stored entries",
        }.get(self.kind, self.kind)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "entry_id": self.entry_id,
            "other_entry_id": self.other_entry_id,
            "story_id": self.story_id,
            "other_story_id": self.other_story_id,
            "category": self.category,
            "note": self.note,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "undone_at": self.undone_at.isoformat() if self.undone_at else None,
            "undone_by": self.undone_by,
            "active": self.undone_at is None,
            "description": self.describe(),
        }


def override_view(row: Any) -> OverrideView:
    return OverrideView(
        id=row.id,
        kind=row.kind,
        entry_id=row.entry_id,
        other_entry_id=row.other_entry_id,
        story_id=row.story_id,
        other_story_id=row.other_story_id,
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
        undone_at=row.undone_at,
        undone_by=row.undone_by,
        category=row.category,
    )


def list_overrides(connection: Connection, *, include_undone: bool = False) -> list[OverrideView]:
    query = sa.select(OVERRIDES).order_by(OVERRIDES.c.id)
    if not include_undone:
        query = query.where(OVERRIDES.c.undone_at.is_(None))
    return [override_view(row) for row in connection.execute(query)]


def required_names(kind: str) -> str:
    return {
        "pin": "an entry and a story",
        "split": "an entry and a story",
        "merge": "two stories",
        "hide": "a story",
        "must_link": "two entries",
        "cannot_link": "two entries",
        "category_pin": "a story and a category",
    }[kind]


def record_override(
    writer: ClusterWriter,
    kind: str,
    *,
    by: str,
    now: datetime,
    entry_id: int | None = None,
    other_entry_id: int | None = None,
    story_id: int | None = None,
    other_story_id: int | None = None,
    category: str | None = None,
    note: str | None = None,
) -> int:
    """Store an editor's correction and apply its immediate effect; returns its id.

    pin and split move the entry; merge and must_link merge the two stories (the older keeps
    its id and uid); cannot_link moves the second entry to a story of its own when both share
    one; hide (everywhere, or in ``category``) and category_pin only change what the outputs
    select. Every later clustering decision obeys it. Raises ValueError naming what is wrong.
    """
    required = {
        "pin": (entry_id, story_id),
        "split": (entry_id, story_id),
        "merge": (story_id, other_story_id),
        "hide": (story_id,),
        "must_link": (entry_id, other_entry_id),
        "cannot_link": (entry_id, other_entry_id),
        "category_pin": (story_id, category),
    }
    if kind not in OVERRIDE_KINDS:
        raise ValueError(f"unknown override kind {kind!r}; known: {sorted(OVERRIDE_KINDS)}")
    if any(value is None for value in required[kind]):
        raise ValueError(f"a {kind} override needs {required_names(kind)}")
    if category is not None:
        _check_category(category)
    if category is not None and kind not in CATEGORY_KINDS:
        raise ValueError(f"a {kind} override applies to every category; drop the category")
    connection = writer.connection
    for entry in (entry_id, other_entry_id):
        if (
            entry is not None
            and connection.execute(sa.select(ENTRIES.c.id).where(ENTRIES.c.id == entry)).first()
            is None
        ):
            raise ValueError(f"no entry {entry}")
    for story in (story_id, other_story_id):
        if story is not None and not writer.story_exists(story):
            raise ValueError(f"no story {story}")
    if kind in CATEGORY_KINDS:
        assert story_id is not None
        story_id = writer.live(story_id)  # what readers see, not a merged-away id
        same = _active_same(connection, kind, story_id, category)
        if same is not None:
            return same  # already in force: a second click records nothing new
    detail: dict[str, Any] | None = None
    if kind in {CorrectionKind.PIN, CorrectionKind.SPLIT}:
        assert entry_id is not None
        assert story_id is not None
        target = writer.live(story_id)
        if _story_of(connection, entry_id) == target:
            raise ValueError(f"entry {entry_id} is already in story {target}")
        detail = _entry_state(connection, entry_id)
        if detail["from_story"] is not None:
            left = writer.live(int(detail["from_story"]))
            others = [e for e in _members(connection, left) if e != entry_id]
            # "not that story": kept apart from the entries it leaves
            if kind == CorrectionKind.SPLIT:
                detail["apart"] = others
            detail["anchored"] = _anchor(connection, left, others)
        writer.move_entry(entry_id, target, editor=True)
        # What a re-clustering records for a pinned entry, so both read the same.
        _set_signal(connection, entry_id, EDITOR_SIGNAL, 1.0, None)
    elif kind == CorrectionKind.MERGE:
        assert story_id is not None
        assert other_story_id is not None
        first, second = writer.live(story_id), writer.live(other_story_id)
        if first == second:
            raise ValueError(
                f"stories {story_id} and {other_story_id} are already one story (#{first})"
            )
        detail = _merge_older(writer, first, second, now)
    elif kind in {CorrectionKind.MUST_LINK, CorrectionKind.CANNOT_LINK}:
        assert entry_id is not None
        assert other_entry_id is not None
        if entry_id == other_entry_id:
            raise ValueError(f"a {kind} override needs two different entries")
        first, second = (_story_of(connection, e) for e in (entry_id, other_entry_id))
        if kind == CorrectionKind.MUST_LINK and first != second:
            detail = _merge_older(writer, first, second, now)
        elif kind == CorrectionKind.CANNOT_LINK and first == second:
            detail = {"entry": other_entry_id, **_entry_state(connection, other_entry_id)}
            salt = f"override:{writer.version()}:{other_entry_id}"
            story = writer.new_story(other_entry_id, now, salt)
            writer.move_entry(other_entry_id, story, editor=True)
            detail["to_story"] = story
            _set_signal(connection, other_entry_id, "new", None, None)
    override_id = int(
        connection.execute(
            OVERRIDES.insert()
            .returning(OVERRIDES.c.id)
            .values(
                kind=kind,
                entry_id=entry_id,
                other_entry_id=other_entry_id,
                story_id=story_id,
                other_story_id=other_story_id,
                category=category,
                detail=detail,
                note=(note or None) and note[:500],
                created_by=by[:128],
                created_at=now,
            )
        ).scalar_one()
    )
    writer.recount(now)
    if kind not in CATEGORY_KINDS:  # the clusterer kept in memory is unaffected otherwise
        writer.bump(now)
    return override_id


def split(
    writer: ClusterWriter,
    entry_ids: Sequence[int],
    *,
    by: str,
    now: datetime,
    note: str | None = None,
) -> int:
    """Move ``entry_ids`` into a new story of their own; each is pinned there (a ``split``
    override per entry, so re-clustering keeps them apart). Returns the new story's id."""
    if not entry_ids:
        raise ValueError("a split needs at least one entry")
    ids = sorted(set(entry_ids))
    for entry_id in ids:
        if (
            writer.connection.execute(
                sa.select(ENTRIES.c.id).where(ENTRIES.c.id == entry_id)
            ).first()
            is None
        ):
            raise ValueError(f"no entry {entry_id}")
    salt = f"split:{writer.version()}:{','.join(map(str, ids))}"
    story_id = writer.new_story(ids[0], now, salt)
    recorded = [
        record_override(
            writer, "split", by=by, now=now, entry_id=entry_id, story_id=story_id, note=note
        )
        for entry_id in ids
    ]
    if len(ids) > 1:  # entries split out together are not kept apart from each other
        for override_id, detail in writer.connection.execute(
            sa.select(OVERRIDES.c.id, OVERRIDES.c.detail).where(OVERRIDES.c.id.in_(recorded))
        ).all():
            apart = [e for e in (detail or {}).get("apart", ()) if e not in ids]
            writer.connection.execute(
                OVERRIDES.update()
                .where(OVERRIDES.c.id == override_id)
                .values(detail={**(detail or {}), "apart": apart})
            )
    return story_id


def split_entry(
    writer: ClusterWriter, entry_id: int, *, by: str, now: datetime, note: str | None = None
) -> int:
    """Take one entry out of its story into a new story; returns the new story's id."""
    connection = writer.connection
    row = connection.execute(sa.select(ENTRIES.c.story_id).where(ENTRIES.c.id == entry_id)).first()
    if row is None:
        raise ValueError(f"no entry {entry_id}")
    if row.story_id is None:
        raise ValueError(f"entry {entry_id} is in no story")
    story = writer.live(int(row.story_id))
    members = int(
        connection.execute(
            sa.select(sa.func.count()).select_from(ENTRIES).where(ENTRIES.c.story_id == story)
        ).scalar_one()
    )
    if members < 2:
        raise ValueError(
            f"entry {entry_id} is the only entry of story {story}; "
            "there is nothing to split it from"
        )
    return split(writer, [entry_id], by=by, now=now, note=note)


def undo_override(writer: ClusterWriter, override_id: int, *, by: str, now: datetime) -> bool:
    """Withdraw a correction and restore, at once, what it changed; a later re-clustering
    reaches the same stories. Returns False when there is no such active override.

    A correction recorded before the store remembered what it changed (no ``detail``) stops
    counting at the next re-clustering (``aggregator cluster --redo``) only.
    """
    connection = writer.connection
    row = connection.execute(
        sa.select(OVERRIDES).where(OVERRIDES.c.id == override_id, OVERRIDES.c.undone_at.is_(None))
    ).first()
    if row is None:
        return False
    connection.execute(
        OVERRIDES.update()
        .where(OVERRIDES.c.id == override_id)
        .values(undone_at=now, undone_by=by[:128])
    )
    detail = row.detail or {}
    if row.kind in {CorrectionKind.MERGE, CorrectionKind.MUST_LINK} and "gone" in detail:
        _unmerge(writer, detail)
    elif row.kind in {CorrectionKind.PIN, CorrectionKind.SPLIT} and "from_story" in detail:
        _put_back(writer, int(row.entry_id), writer.live(int(row.story_id)), detail)
        if row.kind == CorrectionKind.SPLIT:
            _return_followers(writer, override_id, int(row.story_id), detail)
    elif row.kind == CorrectionKind.CANNOT_LINK and "from_story" in detail:
        _put_back(writer, int(detail["entry"]), int(detail["to_story"]), detail)
    elif row.kind == CorrectionKind.RULES:
        reclassify.undo_rules(connection, str(row.category), detail)
    writer.recount(now)
    if row.kind not in CATEGORY_KINDS:
        writer.bump(now)
    return True


@dataclass(frozen=True)
class Constraints:
    """What editors' active corrections require of the clustering stage, by entry id."""

    must_link: frozenset[frozenset[int]]
    cannot_link: frozenset[frozenset[int]]
    # Entry → the live story it must be in; a later correction wins.
    pinned: dict[int, int]


def clustering_constraints(connection: Connection) -> Constraints:
    """Active corrections as the clusterer obeys them: must- and cannot-links; pins and splits
    pin their entry, a split also keeps it apart from the story it left; a merge pins every
    entry the two stories then held to the survivor (else a re-clustering could take the
    founder of either back out)."""
    must: set[frozenset[int]] = set()
    cannot: set[frozenset[int]] = set()
    pins: dict[int, int] = {}
    rows = connection.execute(
        sa.select(
            OVERRIDES.c.kind,
            OVERRIDES.c.entry_id,
            OVERRIDES.c.other_entry_id,
            OVERRIDES.c.story_id,
            OVERRIDES.c.detail,
        )
        .where(OVERRIDES.c.undone_at.is_(None), OVERRIDES.c.kind.not_in(CATEGORY_KINDS))
        .order_by(OVERRIDES.c.id)
    )
    for kind, entry_id, other_entry_id, story_id, detail in rows:
        if (
            kind in {CorrectionKind.MUST_LINK, CorrectionKind.CANNOT_LINK}
            and entry_id is not None
            and other_entry_id is not None
        ):
            (must if kind == CorrectionKind.MUST_LINK else cannot).add(
                frozenset({int(entry_id), int(other_entry_id)})
            )
        elif (
            kind in {CorrectionKind.PIN, CorrectionKind.SPLIT}
            and entry_id is not None
            and story_id is not None
        ):
            pins[int(entry_id)] = live_story(connection, int(story_id))
            if kind == CorrectionKind.SPLIT:
                cannot.update(
                    frozenset({int(entry_id), int(other)})
                    for other in (detail or {}).get("apart", ())
                )
        elif kind == CorrectionKind.MERGE and detail and "into" in detail:
            into = live_story(connection, int(detail["into"]))
            for member in (*detail.get("moved", ()), *detail.get("kept", ())):
                pins[int(member)] = into
    return Constraints(frozenset(must), frozenset(cannot), pins)


# -- helpers -------------------------------------------------------------------------------


def _check_category(category: str) -> None:
    if not category.strip():
        raise ValueError("the category is empty")
    if len(category) > MAX_CATEGORY:
        raise ValueError(f"category {category[:80]!r} is longer than {MAX_CATEGORY} characters")


def _active_same(
    connection: Connection, kind: str, story_id: int, category: str | None
) -> int | None:
    found = connection.execute(
        sa.select(OVERRIDES.c.id)
        .where(
            OVERRIDES.c.kind == kind,
            OVERRIDES.c.story_id == story_id,
            OVERRIDES.c.undone_at.is_(None),
            OVERRIDES.c.category.is_(None)
            if category is None
            else OVERRIDES.c.category == category,
        )
        .order_by(OVERRIDES.c.id)
    ).scalar()
    return int(found) if found is not None else None


def _story_of(connection: Connection, entry_id: int) -> int:
    story = connection.execute(
        sa.select(ENTRIES.c.story_id).where(ENTRIES.c.id == entry_id)
    ).scalar_one()
    if story is None:
        raise ValueError(f"entry {entry_id} is in no story")
    return live_story(connection, int(story))


def _entry_state(connection: Connection, entry_id: int) -> dict[str, Any]:
    """Where an entry is and why, before a correction moves it."""
    row = connection.execute(
        sa.select(
            ENTRIES.c.story_id,
            ENTRIES.c.origin_story_id,
            ENTRIES.c.story_signal,
            ENTRIES.c.story_score,
            ENTRIES.c.story_matched_entry_id,
        ).where(ENTRIES.c.id == entry_id)
    ).one()
    return {
        "from_story": row.story_id,
        "from_origin": row.origin_story_id,
        "signal": row.story_signal,
        "score": row.story_score,
        "matched": row.story_matched_entry_id,
    }


def _set_signal(
    connection: Connection,
    entry_id: int,
    signal: str | None,
    score: float | None,
    matched: int | None,
) -> None:
    connection.execute(
        ENTRIES.update()
        .where(ENTRIES.c.id == entry_id)
        .values(story_signal=signal, story_score=score, story_matched_entry_id=matched)
    )


def _members(connection: Connection, story_id: int) -> list[int]:
    return [
        int(i)
        for i in connection.execute(
            sa.select(ENTRIES.c.id).where(ENTRIES.c.story_id == story_id).order_by(ENTRIES.c.id)
        ).scalars()
    ]


def _merge_older(writer: ClusterWriter, first: int, second: int, now: datetime) -> dict[str, Any]:
    """Merge two live stories, the older keeping its id and uid (so its output item stays the
    same); returns what undo needs to separate them again."""
    into, gone = min(first, second), max(first, second)
    connection = writer.connection
    detail = {
        "into": into,
        "gone": gone,
        "moved": _members(connection, gone),
        "kept": _members(connection, into),
        "absorbed": [
            int(s)
            for s in connection.execute(
                sa.select(STORIES.c.id)
                .where(STORIES.c.merged_into_id == gone)
                .order_by(STORIES.c.id)
            ).scalars()
        ],
    }
    writer.merge(gone, into, now, by=MERGED_BY_EDITOR)
    return detail


def _unmerge(writer: ClusterWriter, detail: dict[str, Any]) -> None:
    """The merged-away story comes back with its id, uid and the entries it gave up (those
    still in the story that absorbed them: one split out since stays where it was put)."""
    connection = writer.connection
    gone = int(detail["gone"])
    current = connection.execute(
        sa.select(STORIES.c.merged_into_id).where(STORIES.c.id == gone)
    ).scalar()
    if current is None:
        return
    holder = live_story(connection, gone)
    connection.execute(
        STORIES.update()
        .where(STORIES.c.id == gone)
        .values(merged_into_id=None, merged_by=None, merged_at=None)
    )
    absorbed = [int(s) for s in detail.get("absorbed", ())]
    if absorbed:
        connection.execute(
            STORIES.update()
            .where(STORIES.c.id.in_(absorbed), STORIES.c.merged_into_id == holder)
            .values(merged_into_id=gone)
        )
    for entry_id in detail.get("moved", ()):
        if _current_story(connection, int(entry_id)) == holder:
            writer.move_entry(int(entry_id), gone)


def _current_story(connection: Connection, entry_id: int) -> int | None:
    value = connection.execute(
        sa.select(ENTRIES.c.story_id).where(ENTRIES.c.id == entry_id)
    ).scalar()
    return int(value) if value is not None else None


def _anchor(connection: Connection, story: int, members: Sequence[int]) -> dict[str, int]:
    """When the entry a correction moves out is the one the story grew from (no other member
    was written into it), the members left become the story's own: a re-clustering then
    rebuilds it under the same id and uid instead of under a member's. Returns their former
    origins, for undo (JSON keys are strings)."""
    if not members:
        return {}
    rows = connection.execute(
        sa.select(ENTRIES.c.id, ENTRIES.c.origin_story_id).where(ENTRIES.c.id.in_(list(members)))
    ).all()
    if any(row.origin_story_id == story for row in rows):
        return {}
    connection.execute(
        ENTRIES.update().where(ENTRIES.c.id.in_(list(members))).values(origin_story_id=story)
    )
    return {str(row.id): row.origin_story_id for row in rows}


def _unanchor(connection: Connection, story: int, anchored: dict[str, Any]) -> None:
    for entry_id, origin in anchored.items():
        connection.execute(
            ENTRIES.update()
            .where(ENTRIES.c.id == int(entry_id), ENTRIES.c.origin_story_id == story)
            .values(origin_story_id=origin)
        )


def _put_back(writer: ClusterWriter, entry_id: int, placed: int, detail: dict[str, Any]) -> None:
    """An entry a correction moved goes back to where it was, with its former reason, unless
    something has moved it since."""
    connection = writer.connection
    if detail.get("from_story") is None:
        return
    home = live_story(connection, int(detail["from_story"]))
    _unanchor(connection, home, detail.get("anchored") or {})
    if _current_story(connection, entry_id) != placed:
        return
    writer.move_entry(entry_id, home)
    connection.execute(
        ENTRIES.update()
        .where(ENTRIES.c.id == entry_id)
        .values(
            origin_story_id=detail.get("from_origin"),
            story_signal=detail.get("signal"),
            story_score=detail.get("score"),
            story_matched_entry_id=detail.get("matched"),
        )
    )


def _return_followers(
    writer: ClusterWriter, override_id: int, split_story: int, detail: dict[str, Any]
) -> None:
    """Entries that joined a split-off story after the split followed the split entry; with
    the split undone they go where it went, as a re-clustering would put them. Not when other
    active corrections still hold entries in that story."""
    connection = writer.connection
    if detail.get("from_story") is None:
        return
    story = live_story(connection, split_story)
    held = connection.execute(
        sa.select(OVERRIDES.c.id).where(
            OVERRIDES.c.kind.in_(("pin", "split")),
            OVERRIDES.c.story_id == split_story,
            OVERRIDES.c.undone_at.is_(None),
            OVERRIDES.c.id != override_id,
        )
    ).first()
    if held is not None:
        return
    home = live_story(connection, int(detail["from_story"]))
    for entry_id in _members(connection, story):
        writer.move_entry(entry_id, home)

"""Editors' corrections to stories: recorded with who and when, applied at once, loaded by the
clustering stage for every later decision, kept (marked undone) when withdrawn.

Runs inside a ``ClusterWriter``'s transaction, so a correction and a clustering batch never
interleave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.clustering import (
    ENTRIES,
    MERGED_BY_EDITOR,
    ClusterWriter,
    live_story,
)
from aggregator.store.models import StoryOverride

OVERRIDES = StoryOverride.__table__  # type: ignore[attr-defined]
OVERRIDE_KINDS = frozenset({"merge", "split", "pin", "must_link", "cannot_link", "hide"})


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

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "entry_id": self.entry_id,
            "other_entry_id": self.other_entry_id, "story_id": self.story_id,
            "other_story_id": self.other_story_id, "note": self.note,
            "created_by": self.created_by, "created_at": self.created_at.isoformat(),
            "undone_at": self.undone_at.isoformat() if self.undone_at else None,
            "undone_by": self.undone_by,
        }


def _override_view(row: Any) -> OverrideView:
    return OverrideView(row.id, row.kind, row.entry_id, row.other_entry_id, row.story_id,
                        row.other_story_id, row.note, row.created_by, row.created_at,
                        row.undone_at, row.undone_by)


def list_overrides(connection: Connection, *, include_undone: bool = False
                   ) -> list[OverrideView]:
    query = sa.select(OVERRIDES).order_by(OVERRIDES.c.id)
    if not include_undone:
        query = query.where(OVERRIDES.c.undone_at.is_(None))
    return [_override_view(row) for row in connection.execute(query)]


def record_override(writer: ClusterWriter, kind: str, *, by: str, now: datetime,
                    entry_id: int | None = None, other_entry_id: int | None = None,
                    story_id: int | None = None, other_story_id: int | None = None,
                    note: str | None = None) -> int:
    """Store an editor's correction and apply its immediate effect; returns its id.

    pin moves the entry; merge and must_link merge the two stories (the older keeps its id);
    cannot_link moves the second entry to a story of its own when both share one; hide only
    takes the story out of the outputs. Every later clustering decision obeys it.
    """
    required = {"pin": (entry_id, story_id), "split": (entry_id, story_id),
                "merge": (story_id, other_story_id), "hide": (story_id,),
                "must_link": (entry_id, other_entry_id),
                "cannot_link": (entry_id, other_entry_id)}
    if kind not in OVERRIDE_KINDS:
        raise ValueError(f"unknown override kind {kind!r}; known: {sorted(OVERRIDE_KINDS)}")
    if any(value is None for value in required[kind]):
        raise ValueError(f"a {kind} override needs {required_names(kind)}")
    connection = writer.connection
    for entry in (entry_id, other_entry_id):
        if entry is not None and connection.execute(
                sa.select(ENTRIES.c.id).where(ENTRIES.c.id == entry)).first() is None:
            raise ValueError(f"no entry {entry}")
    for story in (story_id, other_story_id):
        if story is not None and not writer.story_exists(story):
            raise ValueError(f"no story {story}")
    if kind == "hide":
        assert story_id is not None
        story_id = writer.live(story_id)  # hide what readers see, not a merged-away id
    override_id = int(connection.execute(
        OVERRIDES.insert().returning(OVERRIDES.c.id).values(
            kind=kind, entry_id=entry_id, other_entry_id=other_entry_id, story_id=story_id,
            other_story_id=other_story_id, note=(note or None) and note[:500],
            created_by=by[:128], created_at=now)).scalar_one())
    if kind in {"pin", "split"}:
        assert entry_id is not None
        assert story_id is not None
        writer.move_entry(entry_id, writer.live(story_id), editor=True)
    elif kind == "merge":
        assert story_id is not None
        assert other_story_id is not None
        _merge_older(writer, writer.live(story_id), writer.live(other_story_id), now)
    elif kind in {"must_link", "cannot_link"}:
        assert entry_id is not None
        assert other_entry_id is not None
        first, second = (_story_of(connection, e) for e in (entry_id, other_entry_id))
        if kind == "must_link" and first != second:
            _merge_older(writer, first, second, now)
        elif kind == "cannot_link" and first == second:
            story = writer.new_story(other_entry_id, now, f"override:{override_id}")
            writer.move_entry(other_entry_id, story, editor=True)
            connection.execute(ENTRIES.update().where(ENTRIES.c.id == other_entry_id).values(
                story_signal="new", story_score=None, story_matched_entry_id=None))
    writer.recount(now)
    writer.bump(now)
    return override_id


def required_names(kind: str) -> str:
    return {"pin": "an entry and a story", "split": "an entry and a story",
            "merge": "two stories", "hide": "a story", "must_link": "two entries",
            "cannot_link": "two entries"}[kind]


def _story_of(connection: Connection, entry_id: int) -> int:
    story = connection.execute(
        sa.select(ENTRIES.c.story_id).where(ENTRIES.c.id == entry_id)).scalar_one()
    return live_story(connection, int(story))


def _merge_older(writer: ClusterWriter, first: int, second: int, now: datetime) -> None:
    # The older story keeps its id and uid, so its output item stays the same.
    writer.merge(max(first, second), min(first, second), now, by=MERGED_BY_EDITOR)


def split(writer: ClusterWriter, entry_ids: Sequence[int], *, by: str, now: datetime,
          note: str | None = None) -> int:
    """Move ``entry_ids`` into a new story of their own; each is pinned there (a ``split``
    override per entry, so re-clustering keeps them apart). Returns the new story's id."""
    if not entry_ids:
        raise ValueError("a split needs at least one entry")
    first = sorted(entry_ids)[0]
    salt = f"split:{writer.version()}:{','.join(map(str, sorted(entry_ids)))}"
    story_id = writer.new_story(first, now, salt)
    for entry_id in sorted(entry_ids):
        record_override(writer, "split", by=by, now=now, entry_id=entry_id, story_id=story_id,
                        note=note)
    return story_id


def undo_override(writer: ClusterWriter, override_id: int, *, by: str, now: datetime) -> bool:
    """Mark an override undone; the next re-clustering (``aggregator cluster --redo``) stops
    obeying it. Returns False when there is no such active override."""
    done = writer.connection.execute(
        OVERRIDES.update().where(OVERRIDES.c.id == override_id,
                                 OVERRIDES.c.undone_at.is_(None))
        .values(undone_at=now, undone_by=by[:128]))
    if not done.rowcount:
        return False
    writer.bump(now)
    return True


def hidden_stories() -> sa.Select[Any]:
    """Story ids an editor hid from the outputs."""
    return sa.select(OVERRIDES.c.story_id).where(OVERRIDES.c.kind == "hide",
                                                 OVERRIDES.c.undone_at.is_(None))

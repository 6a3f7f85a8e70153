"""Category rules applied to stored entries: the category rows a rules change adds and removes
over a window (the diff ``editorial.dryrun`` computes), written in one transaction and recorded
as an editor's correction (kind ``rules``, with who and when) whose detail keeps the removed
rows as they were, so undoing it puts the category rows back as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.entries import _chunks
from aggregator.store.tables import CATEGORIES, ENTRIES, OVERRIDES
from aggregator.types import CategoryOrigin, CorrectionKind


@dataclass(frozen=True)
class NewRow:
    """A category row the changed rules add: the entry, its score and the matching rule."""

    entry_id: int
    score: float
    reason: str


def _existing(connection: Connection, entry_ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(sorted(set(entry_ids))):
        found.update(
            connection.execute(sa.select(ENTRIES.c.id).where(ENTRIES.c.id.in_(chunk))).scalars()
        )
    return found


def _rows(connection: Connection, category: str, entry_ids: Sequence[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(set(entry_ids))):
        rows += [
            dict(row._mapping)
            for row in connection.execute(
                sa.select(CATEGORIES).where(
                    CATEGORIES.c.category_id == category, CATEGORIES.c.entry_id.in_(chunk)
                )
            )
        ]
    return rows


def _delete(connection: Connection, category: str, entry_ids: Sequence[int]) -> None:
    for chunk in _chunks(sorted(set(entry_ids))):
        connection.execute(
            CATEGORIES.delete().where(
                CATEGORIES.c.category_id == category, CATEGORIES.c.entry_id.in_(chunk)
            )
        )


def _insert(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows whose entry still exists and that are not there already."""
    if not rows:
        return
    category = rows[0]["category_id"]
    alive = _existing(connection, [r["entry_id"] for r in rows])
    present = {r["entry_id"] for r in _rows(connection, category, list(alive))}
    fresh = [r for r in rows if r["entry_id"] in alive and r["entry_id"] not in present]
    if fresh:
        connection.execute(CATEGORIES.insert(), fresh)


def apply_rules(
    connection: Connection,
    category: str,
    added: Sequence[NewRow],
    removed: Sequence[int],
    *,
    days: int,
    by: str,
    now: datetime,
    note: str | None,
) -> tuple[int, int, int]:
    """Write the diff and record it; returns (correction id, rows added, rows removed)."""
    before = _rows(connection, category, list(removed))
    _delete(connection, category, list(removed))
    present = {r["entry_id"] for r in _rows(connection, category, [a.entry_id for a in added])}
    new: list[dict[str, Any]] = [
        {
            "entry_id": a.entry_id,
            "category_id": category,
            "score": a.score,
            "reason": a.reason[:500],
            "origin": CategoryOrigin.RULES,
        }
        for a in added
        if a.entry_id not in present
    ]
    _insert(connection, new)
    written = _rows(connection, category, [r["entry_id"] for r in new])
    detail = {
        "days": days,
        "added": sorted(r["entry_id"] for r in written),
        "removed": sorted(before, key=lambda r: int(r["entry_id"])),
    }
    override_id = connection.execute(
        OVERRIDES.insert()
        .values(
            kind=CorrectionKind.RULES,
            category=category,
            detail=detail,
            note=note,
            created_by=by[:128],
            created_at=now,
        )
        .returning(OVERRIDES.c.id)
    ).scalar_one()
    return int(override_id), len(written), len(before)


def undo_rules(connection: Connection, category: str, detail: dict[str, Any]) -> None:
    """Take out the rows the correction added and put back the ones it removed."""
    _delete(connection, category, [int(e) for e in detail.get("added", [])])
    _insert(connection, [dict(r) for r in detail.get("removed", [])])

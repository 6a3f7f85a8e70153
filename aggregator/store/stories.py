"""Stories as editors inspect them and as categories select them under editors' corrections.

``story_detail`` is the one read model behind ``aggregator stories show``, the API and the admin
page: each entry with why it is in the story and why each category took it, plus the active
corrections touching the story. The ``*_stories`` selects let the outputs obey category pins
and hides (a pinned story is always included and listed first; a hide beats a pin).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from aggregator.store.clustering import MERGED_BY_EDITOR
from aggregator.store.entries import _chunks
from aggregator.store.overrides import OverrideView, override_view
from aggregator.store.tables import CATEGORIES, ENTRIES, FEATURES, OVERRIDES, STORIES
from aggregator.types import Enclosure, MediaImage, media_from_json, media_json


@dataclass(frozen=True)
class CategoryDecision:
    """Why a category took an entry: the rule or reason the classifier recorded, its score."""

    category: str
    score: float
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"category": self.category, "score": self.score, "reason": self.reason}


@dataclass(frozen=True)
class EntryDetail:
    """One member of a story with why it is there (signal, score, matched entry, the
    clustering decision and its evidence) and which categories took it."""

    entry_id: int
    source_id: str
    title: str
    url: str | None
    declared_language: str | None
    languages: dict[str, Any] | None  # detected: lang, title, body, confidence
    published_at: datetime
    signal: str | None
    score: float | None
    matched_entry_id: int | None
    decision: str | None
    evidence: dict[str, Any] | None
    decided_at: datetime | None
    categories: tuple[CategoryDecision, ...]
    # Where published_at came from (NormalizedEntry.date_source); None for older rows.
    date_source: str | None = None
    enclosures: tuple[Enclosure, ...] = ()
    image: MediaImage | None = None

    def evidence_row(self) -> dict[str, Any]:
        """The shape ``aggregator.clustering.explain`` reads (as ``Store.story_evidence``)."""
        return {
            "entry_id": self.entry_id,
            "source_id": self.source_id,
            "title": self.title,
            "url": self.url,
            "signal": self.signal,
            "score": self.score,
            "matched_entry_id": self.matched_entry_id,
            "decision": self.decision,
            "evidence": self.evidence,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "declared_language": self.declared_language,
            "languages": self.languages,
            "categories": [c.as_json() for c in self.categories],
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **self.evidence_row(),
            "published_at": self.published_at.isoformat(),
            "date_source": self.date_source,
            **media_json(self.enclosures, self.image),
        }


@dataclass(frozen=True)
class StoryDetail:
    story_id: int
    uid: str
    title: str
    published_at: datetime
    updated_at: datetime
    merged_into_id: int | None
    merged_by: str | None
    entries: tuple[EntryDetail, ...]
    # Active corrections touching the story, its entries, or stories merged into it.
    corrections: tuple[OverrideView, ...]

    @property
    def pinned_in(self) -> tuple[str, ...]:
        return tuple(
            sorted(
                {c.category for c in self.corrections if c.kind == "category_pin" and c.category}
            )
        )

    @property
    def hidden_in(self) -> tuple[str, ...]:
        return tuple(
            sorted({c.category for c in self.corrections if c.kind == "hide" and c.category})
        )

    @property
    def hidden_everywhere(self) -> bool:
        return any(c.kind == "hide" and c.category is None for c in self.corrections)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.story_id,
            "uid": self.uid,
            "title": self.title,
            "published_at": self.published_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "merged_into_id": self.merged_into_id,
            "merged_by": self.merged_by,
            "pinned_in": list(self.pinned_in),
            "hidden_in": list(self.hidden_in),
            "hidden_everywhere": self.hidden_everywhere,
            "entries": [e.as_json() for e in self.entries],
            "corrections": [c.as_json() for c in self.corrections],
        }


def story_detail(connection: Connection, story_id: int) -> StoryDetail | None:
    """The story with its entries, their evidence and categories, and its corrections; None
    when there is no such story. A story merged into another keeps its row and shows which."""
    story = connection.execute(sa.select(STORIES).where(STORIES.c.id == story_id)).first()
    if story is None:
        return None
    rows = connection.execute(
        sa.select(
            ENTRIES.c.id,
            ENTRIES.c.source_id,
            ENTRIES.c.title,
            ENTRIES.c.url,
            ENTRIES.c.link,
            ENTRIES.c.language,
            ENTRIES.c.published_at,
            ENTRIES.c.date_source,
            ENTRIES.c.story_signal,
            ENTRIES.c.story_score,
            ENTRIES.c.story_matched_entry_id,
            ENTRIES.c.story_decision,
            ENTRIES.c.story_evidence,
            ENTRIES.c.story_decided_at,
            ENTRIES.c.enclosures,
            ENTRIES.c.image,
            FEATURES.c.lang,
            FEATURES.c.title_lang,
            FEATURES.c.body_lang,
            FEATURES.c.lang_confidence,
        )
        .select_from(ENTRIES.outerjoin(FEATURES, FEATURES.c.entry_id == ENTRIES.c.id))
        .where(ENTRIES.c.story_id == story_id)
        .order_by(ENTRIES.c.id)
    ).all()
    categories = entry_categories(connection, [row.id for row in rows])
    entries = tuple(
        EntryDetail(
            entry_id=row.id,
            source_id=row.source_id,
            title=row.title,
            url=row.url or row.link,
            declared_language=row.language,
            languages=None
            if row.lang_confidence is None
            else {
                "lang": row.lang,
                "title": row.title_lang,
                "body": row.body_lang,
                "confidence": row.lang_confidence,
            },
            published_at=row.published_at,
            signal=row.story_signal,
            score=row.story_score,
            matched_entry_id=row.story_matched_entry_id,
            decision=row.story_decision,
            evidence=row.story_evidence,
            decided_at=row.story_decided_at,
            categories=categories.get(row.id, ()),
            date_source=row.date_source,
            **_media(row),
        )
        for row in rows
    )
    return StoryDetail(
        story_id=story.id,
        uid=story.uid,
        title=story.title,
        published_at=story.published_at,
        updated_at=story.updated_at,
        merged_into_id=story.merged_into_id,
        merged_by=story.merged_by,
        entries=entries,
        corrections=tuple(_corrections(connection, story.id, [e.entry_id for e in entries])),
    )


def _media(row: Any) -> dict[str, Any]:
    enclosures, image = media_from_json(row.enclosures, row.image)
    return {"enclosures": enclosures, "image": image}


def entry_categories(
    connection: Connection, entry_ids: Sequence[int]
) -> dict[int, tuple[CategoryDecision, ...]]:
    """entry id → the categories that took it, with the classifier's reason and score."""
    found: dict[int, list[CategoryDecision]] = {}
    for chunk in _chunks(sorted(set(entry_ids))):
        for row in connection.execute(
            sa.select(CATEGORIES)
            .where(CATEGORIES.c.entry_id.in_(chunk))
            .order_by(CATEGORIES.c.entry_id, CATEGORIES.c.category_id)
        ):
            found.setdefault(row.entry_id, []).append(
                CategoryDecision(row.category_id, row.score, row.reason)
            )
    return {entry_id: tuple(decisions) for entry_id, decisions in found.items()}


def _corrections(
    connection: Connection, story_id: int, members: Iterable[int]
) -> list[OverrideView]:
    related = {
        story_id,
        *connection.execute(
            sa.select(STORIES.c.id).where(STORIES.c.merged_into_id == story_id)
        ).scalars(),
    }
    entries = set(members)
    conditions = [
        OVERRIDES.c.story_id.in_(sorted(related)),
        OVERRIDES.c.other_story_id.in_(sorted(related)),
    ]
    for chunk in _chunks(sorted(entries)):
        conditions += [OVERRIDES.c.entry_id.in_(chunk), OVERRIDES.c.other_entry_id.in_(chunk)]
    rows = connection.execute(
        sa.select(OVERRIDES)
        .where(OVERRIDES.c.undone_at.is_(None), sa.or_(*conditions))
        .order_by(OVERRIDES.c.id)
    )
    return [override_view(row) for row in rows]


# -- what a category shows -------------------------------------------------------------------


def _live_of(kind: str, category: str, *, everywhere: bool) -> sa.Select[Any]:
    """Live story ids (a merged-away story stands for the one that absorbed it) named by
    active ``kind`` corrections in ``category`` (and, with ``everywhere``, in none)."""
    target = sa.orm.aliased(STORIES)
    scope = OVERRIDES.c.category == category
    if everywhere:
        scope = sa.or_(scope, OVERRIDES.c.category.is_(None))
    return (
        sa.select(sa.func.coalesce(target.c.merged_into_id, target.c.id))
        .select_from(OVERRIDES.join(target, target.c.id == OVERRIDES.c.story_id))
        .where(OVERRIDES.c.kind == kind, OVERRIDES.c.undone_at.is_(None), scope)
    )


def hidden_stories(category: str) -> sa.Select[Any]:
    """Story ids kept out of ``category``: hidden there or everywhere."""
    return _live_of("hide", category, everywhere=True)


def pinned_stories(category: str) -> sa.Select[Any]:
    """Story ids an editor pinned in ``category``: always included, listed first."""
    return _live_of("category_pin", category, everywhere=False)


def withdrawn_uids(connection: Connection, category: str, uids: Collection[str]) -> frozenset[str]:
    """Those of ``uids`` (stories the archive's open page holds but the category no longer
    lists) that an editor took out: hidden there or everywhere, or merged into another story.
    The open page lets them go rather than freeze them into an archive page."""
    if not uids:
        return frozenset()
    hidden = set(connection.execute(hidden_stories(category)).scalars())
    found: set[str] = set()
    for chunk in _chunks(sorted(set(uids))):
        for row in connection.execute(
            sa.select(
                STORIES.c.id, STORIES.c.uid, STORIES.c.merged_into_id, STORIES.c.merged_by
            ).where(STORIES.c.uid.in_(chunk))
        ):
            live = row.merged_into_id if row.merged_into_id is not None else row.id
            if live in hidden or (
                row.merged_into_id is not None and row.merged_by == MERGED_BY_EDITOR
            ):
                found.add(row.uid)
    return frozenset(found)

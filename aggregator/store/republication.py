"""What counts as one feed republishing one item: the only case in which two entries of one
source may share a story (issue 14). The store's exact signals (URL, content hash) follow a
match into a story only when every member from the same source passes ``same_item``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aggregator.types import FEED_DATE_SOURCES, NormalizedEntry


@dataclass(frozen=True)
class ItemFacts:
    """What tells one feed's items apart, from a ``NormalizedEntry`` or a stored row.

    ``has_body``: the text is more than the title, so an equal hash is equal content and not
    just an equal title. ``feed_date``: the entry's date when the feed gave it, else None.
    """

    guid: str | None
    link: str | None
    content_hash: str
    has_body: bool
    enclosures: frozenset[str]
    feed_date: datetime | None


def item_facts(entry: NormalizedEntry) -> ItemFacts:
    feed_dated = entry.date_source in FEED_DATE_SOURCES
    return ItemFacts(
        guid=entry.guid,
        link=entry.link,
        content_hash=entry.content_hash,
        has_body=has_body(entry.title, entry.text),
        enclosures=frozenset(e.url for e in entry.enclosures),
        feed_date=entry.published_at if feed_dated else None,
    )


def stored_facts(row: Any) -> ItemFacts:
    """The facts of a stored entry row (its guid, link, content_hash, title, text,
    enclosures, published_at and date_source columns)."""
    enclosures = frozenset(str(e.get("url")) for e in row.enclosures or () if isinstance(e, dict))
    # Rows stored before date_source existed (NULL) may carry a poll time: no evidence.
    dated = row.published_at if row.date_source in FEED_DATE_SOURCES else None
    return ItemFacts(
        row.guid, row.link, row.content_hash, has_body(row.title, row.text), enclosures, dated
    )


FACT_COLUMNS: tuple[str, ...] = (
    "guid",
    "link",
    "content_hash",
    "title",
    "text",
    "enclosures",
    "published_at",
    "date_source",
)


def has_body(title: str, text: str) -> bool:
    return bool(text.strip()) and text.strip() != title.strip()


def same_item(a: ItemFacts, b: ItemFacts) -> bool:
    """Whether two entries of one feed are the feed republishing one item, the only case in
    which they may share a story (issue 14).

    The same guid is one item. Otherwise what tells items apart wins: different enclosures
    (podcast episodes linking to one home page), different links with their fragments unless
    the same text with a body is listed twice (title-only entries repeating a talk's title at
    each event are not), and, without links, different dates from the feed (a changelog
    repeating a line). Then two guids need the same content; without them the same link or
    the same content is a republication.
    """
    if a.guid and a.guid == b.guid:
        return True
    if a.enclosures and b.enclosures and a.enclosures.isdisjoint(b.enclosures):
        return False
    same_content = a.content_hash == b.content_hash
    if a.link and b.link and a.link != b.link:
        return same_content and a.has_body
    if a.feed_date and b.feed_date and a.feed_date != b.feed_date and not (a.link and b.link):
        return False
    if a.guid and b.guid:
        return same_content
    return same_content or (bool(a.link) and a.link == b.link)

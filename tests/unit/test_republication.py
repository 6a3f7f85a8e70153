"""Unit tests for aggregator.store.republication: when two entries of one feed are the feed
republishing one item (issue 14), the only case in which they may share a story."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.store.republication import ItemFacts, same_item

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def at(days: float) -> datetime:
    return NOW + timedelta(days=days)


def test_same_item_is_the_feed_republishing_one_item() -> None:
    def facts(**overrides: Any) -> ItemFacts:
        values: dict[str, Any] = {
            "guid": None,
            "link": "https://example.org/a",
            "content_hash": "h",
            "has_body": True,
            "enclosures": frozenset(),
            "feed_date": None,
        }
        values.update(overrides)
        return ItemFacts(**values)

    # The same guid, whatever else changed.
    assert same_item(facts(guid="g", content_hash="x"), facts(guid="g", link="https://o/"))
    # Episodes: other enclosures; other guids with other text under one link.
    assert not same_item(
        facts(enclosures=frozenset({"https://e/1.mp3"})),
        facts(enclosures=frozenset({"https://e/2.mp3"})),
    )
    assert not same_item(facts(guid="1", content_hash="a"), facts(guid="2", content_hash="b"))
    # Republished under a new guid: same link and text.
    assert same_item(facts(guid="1"), facts(guid="2"))
    # Title-only entries repeating a title under other links are not one item; a body is.
    assert not same_item(facts(has_body=False), facts(link="https://example.org/b", has_body=False))
    assert same_item(facts(), facts(link="https://example.org/b"))
    # No links: the feed's dates tell them apart; an undated one does not.
    assert not same_item(facts(link=None, feed_date=at(-1)), facts(link=None, feed_date=at(-2)))
    assert same_item(facts(link=None, feed_date=at(-1)), facts(link=None))

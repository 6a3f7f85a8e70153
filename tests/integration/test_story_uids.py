"""Story uids do not depend on which source's poll was stored first.

The same entries are written in two orders into two stores (copies by URL and by text across
sources, and a feed's own items), the clustering stage settles them, and each store holds the
same stories (as sets of entries) under the same uids. Until it settles, a story is in no
output.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from aggregator.store import Store
from aggregator.types import NormalizedEntry
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source

FEEDS: dict[str, tuple[NormalizedEntry, ...]] = {
    "alpha": (
        entry("a1", title="Storm hits the coast", url="https://wire.example/storm"),
        entry("a2", title="Budget vote delayed"),
    ),
    "beta": (
        entry("b1", title="Storm hits the coast (copy)", url="https://wire.example/storm"),
        entry(
            "b2",
            title="Budget vote delayed",
            text="Budget vote delayed. Body of a2.",
            url="https://beta.example/budget",
        ),
    ),
    "gamma": (
        entry("g1", title="Storm reaches the coast", url="https://wire.example/storm"),
        entry("g2", title="Unrelated harvest festival"),
    ),
}


def _write(store: Store, order: list[str]) -> None:
    store.sync_sources(catalog(*(source(name) for name in FEEDS)), NOW)
    for name in order:
        store.save_poll(
            name,
            fetched(),
            body_hash=None,
            feed_title=name,
            feed_link=None,
            entries=[(e, [match("news")]) for e in FEEDS[name]],
            next_check_at=NOW + timedelta(minutes=30),
            now=NOW,
        )


def _stories(store: Store) -> dict[frozenset[tuple[str, str]], str]:
    """Each shown story as the set of its (source, title), with its uid."""
    return {
        frozenset((e.source_id, e.title) for e in s.entries): s.uid
        for s in store.category_stories("news", 50)
    }


def test_the_same_entries_in_two_orders_give_the_same_stories_and_uids(
    store: Store, other: Store
) -> None:
    _write(store, ["alpha", "beta", "gamma"])
    _write(other, ["gamma", "beta", "alpha"])
    assert _stories(store) == {}  # none settled yet
    assert _stories(other) == {}
    with store.engine.connect() as one, other.engine.connect() as two:
        query = (
            "SELECT s.uid FROM entries e JOIN stories s ON s.id = e.story_id "
            "WHERE e.source_id = 'alpha' AND e.guid = 'a1'"
        )
        # The write path founded the storm story with whichever copy came first.
        assert one.execute(sa.text(query)).scalar() != two.execute(sa.text(query)).scalar()
    settle(store)
    settle(other)
    first, second = _stories(store), _stories(other)
    assert first == second
    storm = next(members for members in first if ("alpha", "Storm hits the coast") in members)
    assert {name for name, _ in storm} == {"alpha", "beta", "gamma"}
    assert len(first) == 3  # the storm, the budget vote (same text), the festival

"""Bounded growth per source (issue 16): a feed that rotates every guid on each poll stays at
its size, moves no story's ``updated`` and shows a warning in the source's health (CLI, API,
admin page); a normal feed still gets all its new items; caps per poll and per source keep the
newest entries. Real polls against a loopback feed server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.cli.sources import _health_table
from aggregator.clustering.stage import ClusteringStage
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.polling.poller import Refresher
from aggregator.publishing.outputs import Outputs
from aggregator.runtime.service import make_fetcher
from aggregator.settings import Settings
from aggregator.store import GrowthLimits, Store
from aggregator.types import SourceStatus
from aggregator.web import create_app
from aggregator.web.admin_pages import Chrome, sources_page
from tests.support.builders import NOW
from tests.support.feeds import rss
from tests.support.webserver import serve_app

PATH = "/feed.xml"
POLLS = 4


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def items(count: int, *, generation: int = 0, first: int = 0) -> list[dict[str, str]]:
    """``count`` distinct stories (numbered from ``first``, newest first as feeds list them),
    each with a guid of ``generation``: a rotating feed changes only the generation."""
    day = NOW - timedelta(days=1)
    return [
        {
            "guid": f"urn:gen{generation}:{n}",
            "title": f"Story number {n}",
            "link": f"https://news.example/{n}?utm_gen={generation}"
            if generation
            else f"https://news.example/{n}",
            "body": f"What happened in story {n}, told once.",
            "date": (day + timedelta(minutes=n)).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        }
        for n in reversed(range(first, first + count))
    ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def refresher(store: Store, feed_server: FeedServer, clock: Clock) -> Iterator[Refresher]:
    catalog = Catalog(
        sources=(SourceConfig(id="s", url=feed_server.url(PATH), categories=("all",)),),
        categories=(CategoryConfig(id="all", title="All"),),
    )
    store.sync_sources(catalog, clock.now)
    settings = replace(
        Settings.from_env({}), host_delay=0.0, connect_timeout=2, read_timeout=2, fetch_deadline=5
    )
    refresher = Refresher(
        store=store,
        fetcher=make_fetcher(settings, now=clock),
        catalog=catalog,
        workers=1,
        clock=clock,
    )
    try:
        yield refresher
    finally:
        refresher.close()
        refresher.fetcher.close()


def poll(refresher: Refresher, clock: Clock) -> str:
    clock.now += timedelta(hours=1)
    due = refresher.store.due_sources(clock.now, everything=True)
    (outcome,) = refresher.poll(due).outcomes
    # As `aggregator poll` and the scheduler do after a poll (exact mode: no model).
    ClusteringStage(refresher.store, semantic=False).run()
    return str(outcome.result)


def health(store: Store) -> SourceStatus:
    (status,) = store.sources()
    return status


def story_updates(store: Store) -> dict[str, datetime]:
    return {s.uid: s.updated_at for s in store.iter_stories()}


def entry_count(store: Store) -> int:
    return store.counts()["entries"]


def test_a_feed_rotating_every_guid_stays_flat_and_is_flagged(
    store: Store, feed_server: FeedServer, refresher: Refresher, clock: Clock
) -> None:
    feed_server.set(PATH, Resource(body=rss("Rotating", items(50))))
    assert poll(refresher, clock) == "updated"
    assert entry_count(store) == 50
    first_updates = story_updates(store)
    assert len(first_updates) == 50
    assert health(store).warning is None

    for generation in range(1, POLLS):
        feed_server.set(PATH, Resource(body=rss("Rotating", items(50, generation=generation))))
        poll(refresher, clock)
        assert entry_count(store) == 50
        assert story_updates(store) == first_updates
        status = health(store)
        assert (status.last_new_entries, status.last_repeated_entries) == (0, 50)
        assert "ids rotate: 50 of 50" in (status.warning or "")

    # The stored entries follow the feed's current ids: the next poll matches them by id.
    with store.engine.connect() as connection:
        guids = set(connection.execute(sa.text("SELECT guid FROM entries")).scalars())
    assert guids == {f"urn:gen{POLLS - 1}:{n}" for n in range(50)}

    status = health(store)
    assert f"warning: {status.warning}" in _health_table([status])
    page = sources_page(Chrome(csrf="x", editor="e"), [status], [])
    assert "ids rotate: 50 of 50" in page
    outputs = Outputs(
        store=store,
        catalog=refresher.catalog,
        base_url="https://agg.example",
        tag_authority="agg.example",
        feed_size=50,
    )
    with serve_app(create_app(store=store, outputs=outputs)) as base:
        (shown,) = requests.get(base + "/api/sources", timeout=10).json()
    assert (shown["warning"], shown["last_repeated_entries"]) == (status.warning, 50)


def test_a_normal_feed_gets_every_new_item(
    store: Store, feed_server: FeedServer, refresher: Refresher, clock: Clock
) -> None:
    for number in range(POLLS):
        feed_server.set(PATH, Resource(body=rss("Growing", items(20 + 5 * number))))
        poll(refresher, clock)
        assert entry_count(store) == 20 + 5 * number
        status = health(store)
        assert status.last_new_entries == (20 if number == 0 else 5)
        assert (status.last_repeated_entries, status.warning) == (0, None)
    assert len(story_updates(store)) == 20 + 5 * (POLLS - 1)


def test_the_per_poll_cap_stores_the_newest_and_the_rest_later(
    store: Store, feed_server: FeedServer, refresher: Refresher, clock: Clock
) -> None:
    store.limits = GrowthLimits(new_per_poll=5, per_source=0)
    feed_server.set(PATH, Resource(body=rss("Backlog", items(12))))
    assert poll(refresher, clock) == "updated"
    assert titles(store) == {f"Story number {n}" for n in range(7, 12)}
    assert "stored the newest 5 of 12" in (health(store).warning or "")
    # The validators were forgotten: the same document is read again for the rest.
    assert poll(refresher, clock) == "updated"
    assert entry_count(store) == 10
    assert poll(refresher, clock) == "updated"
    assert (entry_count(store), health(store).warning) == (12, None)
    assert poll(refresher, clock) == "not_modified"


def test_the_per_source_cap_prunes_the_oldest(
    store: Store, feed_server: FeedServer, refresher: Refresher, clock: Clock
) -> None:
    store.limits = GrowthLimits(new_per_poll=0, per_source=10)
    feed_server.set(PATH, Resource(body=rss("Busy", items(8))))
    poll(refresher, clock)
    feed_server.set(PATH, Resource(body=rss("Busy", items(15))))
    poll(refresher, clock)
    # The 7 just stored wait for the clustering stage, so the oldest handled ones go.
    assert titles(store) == {f"Story number {n}" for n in range(5, 15)}
    assert "removed the 5 oldest entries to keep 10" in (health(store).warning or "")
    feed_server.set(PATH, Resource(body=rss("Busy", items(16))))
    poll(refresher, clock)
    assert titles(store) == {f"Story number {n}" for n in range(6, 16)}
    # The pruned ones, still listed by the feed, do not come back (tombstones).
    feed_server.set(PATH, Resource(body=rss("Busy", items(16)) + b" "))
    assert poll(refresher, clock) == "unchanged"
    assert entry_count(store) == 10


def titles(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return set(connection.execute(sa.text("SELECT title FROM entries")).scalars())

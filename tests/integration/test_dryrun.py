"""The rules dry run over a real store (SQLite and PostgreSQL) filled by a real poll: feeds are
served on 127.0.0.1, fetched, parsed, normalized, classified and saved; the dry run then
re-classifies what was stored with changed rules and reports the difference, writing nothing."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig, parse_rule
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.editorial.classify import topic_reason
from aggregator.editorial.dryrun import TOPIC_OFF_REASON, DryRun, changed_rules, rules_dry_run
from aggregator.errors import ConfigError
from aggregator.polling.poller import Refresher
from aggregator.runtime.service import make_fetcher
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.store.history import add_categories, iter_history
from aggregator.types import CategoryMatch, CategoryOrigin
from tests.support.builders import NOW
from tests.support.feeds import rss
from tests.support.stories import rfc822


def item(guid: str, title: str, days_ago: float, body: str = "") -> dict[str, str]:
    return {
        "guid": guid,
        "title": title,
        "link": f"https://news.example/{guid}",
        "date": rfc822(NOW - timedelta(days=days_ago)),
        "body": body,
    }


FEEDS = {
    "wire": (
        "en",
        [
            item("w1", "AI Act: final vote in Strasbourg", 2),
            item("w2", "Black Friday deals on AI Act books", 3),
            item("w3", "Chip export rules tighten", 1, "Export controls on chips were widened."),
            item("w4", "AI Act: what changed last month", 10),
        ],
    ),
    "journal": (
        "fr",
        [
            item("j1", "Le AI Act entre en vigueur", 1),
            item("j2", "Publicité : une formation sur le AI Act", 2),
        ],
    ),
    "sports": ("en", [item("s1", "AI Act of the goalkeeper", 1)]),
}

AI_POLICY = CategoryConfig(
    id="ai-policy",
    title="AI policy",
    description="Laws and regulation of artificial intelligence.",
    include=(parse_rule("AI Act"),),
    exclude=(parse_rule("Black Friday"),),
)


def catalog_for(server: FeedServer) -> Catalog:
    sources = (
        SourceConfig(
            id="wire", url=server.url("/wire.xml"), categories=("ai-policy",), language="en"
        ),
        # The journal's own rule: its advertorials stay out of every category.
        SourceConfig(
            id="journal",
            url=server.url("/journal.xml"),
            categories=("ai-policy",),
            language="fr",
            exclude=(parse_rule("publicite"),),
        ),
        SourceConfig(
            id="sports", url=server.url("/sports.xml"), categories=("misc",), language="en"
        ),
    )
    return Catalog(sources=sources, categories=(AI_POLICY, CategoryConfig(id="misc", title="Misc")))


@pytest.fixture
def polled(store: Store, feed_server: FeedServer) -> Catalog:
    """The store after one real poll of ``FEEDS``."""
    return poll_feeds(store, feed_server)


def poll_feeds(store: Store, feed_server: FeedServer) -> Catalog:
    """Poll ``FEEDS`` once, for real, into ``store``; the catalog it was polled with."""
    for source_id, (language, items) in FEEDS.items():
        feed_server.set(f"/{source_id}.xml", Resource(body=rss(source_id, items, language)))
    catalog = catalog_for(feed_server)
    store.sync_sources(catalog, NOW)
    settings = replace(
        Settings.from_env({}), host_delay=0.0, connect_timeout=2, read_timeout=2, fetch_deadline=5
    )
    refresher = Refresher(
        store=store,
        fetcher=make_fetcher(settings, now=lambda: NOW),
        catalog=catalog,
        workers=2,
        clock=lambda: NOW,
    )
    try:
        summary = refresher.poll(store.due_sources(NOW, everything=True))
    finally:
        refresher.close()
        refresher.fetcher.close()
    assert summary.new_entries == 7
    return catalog


def entry_ids(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {
            guid: entry_id
            for guid, entry_id in connection.execute(sa.text("SELECT guid, id FROM entries"))
        }


def stored_categories(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        return sorted(
            tuple(row)
            for row in connection.execute(
                sa.text("SELECT entry_id, category_id, score, reason FROM entry_categories")
            )
        )


def titles(found: list[Any]) -> list[str]:
    return sorted(e.title for e in found)


def dry_run(store: Store, catalog: Catalog, changed: CategoryConfig, days: int = 7) -> DryRun:
    return rules_dry_run(store, catalog, changed, since=timedelta(days=days), now=NOW)


def test_unchanged_rules_change_nothing(store: Store, polled: Catalog) -> None:
    result = dry_run(store, polled, polled.category("ai-policy"))
    # w4 is older than the window; the sports source does not feed the category.
    assert (result.examined, result.unchanged, result.added, result.removed) == (5, 5, [], [])
    assert result.source_ids == ("wire", "journal")
    assert result.since == NOW - timedelta(days=7)
    assert dry_run(store, polled, polled.category("ai-policy"), days=15).examined == 6


def test_changed_rules_show_what_they_add_and_remove(store: Store, polled: Catalog) -> None:
    before = stored_categories(store)
    ids = entry_ids(store)
    changed = changed_rules(
        polled.category("ai-policy"), add_include=["export rules"], add_exclude=["Strasbourg"]
    )
    result = dry_run(store, polled, changed)
    assert (result.examined, result.unchanged) == (5, 3)
    [added] = result.added
    assert (added.entry_id, added.source_id, added.title) == (
        ids["w3"],
        "wire",
        "Chip export rules tighten",
    )
    assert added.reason == "include 'export rules' matched in title"
    assert added.previous_reason is None
    assert added.url == "https://news.example/w3"
    assert added.published_at == NOW - timedelta(days=1)
    [removed] = result.removed
    assert removed.entry_id == ids["w1"]
    assert removed.reason == "exclude 'Strasbourg' matched in title"
    assert removed.previous_reason == "include 'AI Act' matched in title"
    # The journal's own exclude still applies, even to a config built without it: j2 matches
    # "AI Act" but stays out.
    bare = dataclasses.replace(changed, source_rules=())
    assert titles(dry_run(store, polled, bare).added) == ["Chip export rules tighten"]
    # Replacing the lists: only "export rules" included, nothing excluded.
    narrow = changed_rules(polled.category("ai-policy"), include=["export rules"], exclude=[])
    result = dry_run(store, polled, narrow)
    assert titles(result.added) == ["Chip export rules tighten"]
    assert titles(result.removed) == [
        "AI Act: final vote in Strasbourg",
        "Le AI Act entre en vigueur",
    ]
    # Nothing was written.
    assert stored_categories(store) == before


def test_min_score_in_a_dry_run(store: Store, polled: Catalog) -> None:
    # "controls" is only in w3's body: a score of 0.5, which min_score 0.75 refuses.
    changed = changed_rules(polled.category("ai-policy"), add_include=["controls"], min_score=0.75)
    result = dry_run(store, polled, changed)
    assert (result.added, result.removed) == ([], [])
    assert titles(dry_run(store, polled, replace(changed, min_score=0.5)).added) == [
        "Chip export rules tighten"
    ]
    with pytest.raises(ConfigError, match="from 0 to 1"):
        changed_rules(polled.category("ai-policy"), min_score=2.0)
    with pytest.raises(ConfigError) as info:
        changed_rules(polled.category("ai-policy"), add_include=["/(bad/"])
    assert info.value.key == "--add-include"


def test_entries_taken_by_the_topic_match(store: Store, polled: Catalog) -> None:
    ids = entry_ids(store)
    reason = topic_reason(0.21, 0.14, description=True, examples=False)
    with store.engine.begin() as connection:
        topic = CategoryOrigin.TOPIC
        assert (
            add_categories(
                connection, [(ids["w3"], CategoryMatch("ai-policy", 0.21, reason, topic))]
            )
            == 1
        )
        # A decision already stored is never replaced.
        assert (
            add_categories(
                connection, [(ids["w1"], CategoryMatch("ai-policy", 0.5, reason, topic))]
            )
            == 0
        )
    topic_on = replace(polled.category("ai-policy"), topic=True)
    result = dry_run(store, polled, topic_on)
    assert (result.unchanged, result.added, result.removed) == (5, [], [])
    [off] = dry_run(store, polled, polled.category("ai-policy")).removed
    assert (off.entry_id, off.reason, off.previous_reason) == (ids["w3"], TOPIC_OFF_REASON, reason)
    [excluded] = dry_run(store, polled, changed_rules(topic_on, add_exclude=["chip"])).removed
    assert excluded.reason == "exclude 'chip' matched in title"


def test_history_is_read_a_page_at_a_time(store: Store, polled: Catalog) -> None:
    since = NOW - timedelta(days=30)
    whole = list(store.category_history("ai-policy", ["wire", "journal"], since))
    paged = list(iter_history(store.engine, "ai-policy", ["wire", "journal"], since, page=2))
    assert [h.entry.entry_id for h in paged] == [h.entry.entry_id for h in whole]
    assert len(whole) == 6
    assert sorted(h.entry.title for h in whole if h.accepted) == [
        "AI Act: final vote in Strasbourg",
        "AI Act: what changed last month",
        "Le AI Act entre en vigueur",
    ]
    assert list(store.category_history("ai-policy", [], since)) == []

"""End to end: a loopback server with several feeds, ``aggregator poll``, the store, the outputs.

Runs the real command line in a subprocess against SQLite and PostgreSQL, then checks what was
stored (entries, categories, stories), what ``publish`` wrote, and that a second poll sends
conditional requests, gets 304s and stores nothing new.
"""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest

from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.publishing.representative import for_output
from aggregator.store import open_store
from tests.support.feeds import aggregator, atom, rss, toml_tables, write_config

ALPHA = [
    {
        "guid": "alpha-1",
        "title": "EU lawmakers agree on AI Act enforcement timeline",
        "link": "https://wire.example/ai-act-timeline?utm_source=alpha&utm_medium=rss",
        "body": "Brussels negotiators settled the enforcement calendar of the AI Act.",
        "date": "Tue, 17 Nov 2026 08:00:00 GMT",
    },
    {
        "guid": "alpha-2",
        "title": "Local club wins the football cup",
        "link": "https://alpha.example/sport/cup",
        "body": "A late goal decided the AI-free football final.",
        "date": "Tue, 17 Nov 2026 07:00:00 GMT",
    },
    {
        "guid": "alpha-3",
        "title": "Regulators publish guidance on AI audits",
        "link": "https://alpha.example/ai-audits",
        "body": "New guidance explains how AI systems will be audited.",
        "date": "Mon, 16 Nov 2026 10:00:00 GMT",
    },
]
BETA = [
    {
        "guid": "urn:beta:1",
        "title": "AI Act: enforcement dates fixed",
        "link": "https://wire.example/ai-act-timeline",
        "body": "The enforcement calendar of the AI Act is settled.",
        "date": "2026-11-17T08:30:00Z",
    },
    {
        "guid": "urn:beta:2",
        "title": "City opens new library",
        "link": "https://beta.example/library",
        "body": "Books for everyone.",
        "date": "2026-11-15T12:00:00Z",
    },
]
CATEGORIES = toml_tables(
    "category",
    {
        "id": "ai-policy",
        "title": "AI policy",
        "description": "Rules for artificial intelligence",
        "languages": ["en", "fr"],
        "include": ["AI Act", "/\\bAI\\b/"],
        "exclude": ["football"],
    },
    {"id": "general", "title": "General news"},
)


def sources_toml(server: FeedServer) -> str:
    return toml_tables(
        "source",
        {
            "id": "alpha",
            "url": server.url("/alpha.xml"),
            "categories": ["ai-policy"],
            "language": "en",
        },
        {"id": "beta", "url": server.url("/beta.atom"), "categories": ["ai-policy", "general"]},
    )


@pytest.fixture
def setup(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> tuple[FeedServer, list[str]]:
    feed_server.set("/alpha.xml", Resource(body=rss("Alpha News", ALPHA)))
    feed_server.set(
        "/beta.atom", Resource(body=atom("Beta Daily", BETA), content_type="application/atom+xml")
    )
    config = write_config(tmp_path / "config", sources_toml(feed_server), CATEGORIES)
    return feed_server, ["--config", str(config), "--database", database_url]


def test_poll_stores_classifies_clusters_and_publishes(
    setup: tuple[FeedServer, list[str]], tmp_path: Path
) -> None:
    server, options = setup
    first = aggregator("poll", *options)
    assert "5 new entries" in first.stdout, first.stdout

    store = open_store(options[-1])
    try:
        counts = store.counts()
        assert counts["sources"] == 2
        assert counts["entries"] == 5
        assert counts["stories"] == 4  # the AI Act story is one story from two sources
        ai_titles = {s.representative.title: s for s in store.category_stories("ai-policy", 50)}
        assert set(ai_titles) == {
            "EU lawmakers agree on AI Act enforcement timeline",
            "Regulators publish guidance on AI audits",
        }
        merged = ai_titles["EU lawmakers agree on AI Act enforcement timeline"]
        assert {e.source_id for e in merged.entries} == {"alpha", "beta"}
        evidence = store.story_evidence(merged.story_id)
        assert sorted(row["signal"] for row in evidence) == ["new", "url"]
        reasons = [c["reason"] for row in evidence for c in row["categories"]]
        assert any("AI Act" in reason for reason in reasons)
        # Only entries a category accepted may represent a story in it.
        general = {
            for_output(s, ()).representative.title for s in store.category_stories("general", 50)
        }
        assert general == {"AI Act: enforcement dates fixed", "City opens new library"}
    finally:
        store.close()

    lines = aggregator("stories", "--json", *options).stdout.splitlines()
    stories = [json.loads(line) for line in lines]
    assert len(stories) == 4
    assert all({"id", "title", "entries"} <= set(s) for s in stories)
    pair = [s for s in stories if len(s["entries"]) == 2]
    assert len(pair) == 1
    assert {e["source_id"] for e in pair[0]["entries"]} == {"alpha", "beta"}
    assert all(
        {"url", "source_id", "language", "title", "evidence"} <= set(e) for e in pair[0]["entries"]
    )
    signals = sorted(e["evidence"]["signal"] for e in pair[0]["entries"])
    assert signals == ["new", "url"]
    founder = next(e for e in pair[0]["entries"] if e["evidence"]["signal"] == "new")
    joined = next(e for e in pair[0]["entries"] if e["evidence"]["signal"] == "url")
    assert joined["evidence"]["matched_entry_id"] == founder["entry_id"]

    out = tmp_path / "site"
    aggregator("publish", "--out", str(out), "--base-url", "https://feeds.example.org", *options)
    for fmt in ("atom", "rss", "json"):
        assert (out / "feeds" / f"ai-policy.{fmt}").is_file()
    assert (out / "feeds.opml").is_file()
    for fmt in ("atom", "rss"):
        parsed = feedparser.parse((out / "feeds" / f"ai-policy.{fmt}").read_bytes())
        assert not parsed.bozo, parsed.bozo_exception
        assert [e.title for e in parsed.entries] == [
            "EU lawmakers agree on AI Act enforcement timeline",
            "Regulators publish guidance on AI audits",
        ]
        assert parsed.entries[0].link == "https://wire.example/ai-act-timeline"
        assert all(e.id.startswith("tag:") for e in parsed.entries)
    document = json.loads((out / "feeds" / "ai-policy.json").read_text(encoding="utf-8"))
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert len(document["items"]) == 2
    again = aggregator(
        "publish", "--out", str(out), "--base-url", "https://feeds.example.org", *options
    )
    assert "0 written" in again.stdout

    server.reset_log()
    second = aggregator("poll", "--all", *options)
    assert "0 new entries" in second.stdout, second.stdout
    assert "2 not modified" in second.stdout, second.stdout
    gets = [r for r in server.requests if r.method == "GET"]
    assert len(gets) == 2
    assert all("if-none-match" in r.headers for r in gets)
    assert all(r.status == 304 for r in gets)
    store = open_store(options[-1])
    try:
        assert store.counts()["entries"] == 5
    finally:
        store.close()


def test_a_broken_source_does_not_stop_the_others(setup: tuple[FeedServer, list[str]]) -> None:
    server, options = setup
    server.set(
        "/alpha.xml", Resource(body=b"<html><body>Moved</body></html>", content_type="text/html")
    )
    result = aggregator("poll", *options, check=False)
    assert result.returncode == 1  # some sources failed, not all
    assert "2 new entries" in result.stdout
    listing = aggregator("sources", "list", "--json", *options).stdout.splitlines()
    health = {row["id"]: row for row in map(json.loads, listing)}
    assert health["alpha"]["error_count"] == 1
    assert health["alpha"]["last_error_kind"] == "not_a_feed"
    assert health["beta"]["error_count"] == 0
    assert health["beta"]["last_status"] == 200

"""``aggregator sources add``: a feed URL or a page that links feeds, appended to sources.toml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.catalog import load_catalog
from aggregator.demo.feedserver import FeedServer, Resource
from tests.support.feeds import aggregator, rss, write_config

SOURCES = """# Our sources. This comment must survive.

[[source]]
id = "first"
url = "https://first.example/feed.xml"
categories = ["news"]
"""
CATEGORIES = '[[category]]\nid = "news"\ntitle = "News"\n'
ITEMS = [{"guid": "a", "title": "A", "link": "https://x.example/a"}]


def page(*links: str) -> Resource:
    tags = "".join(
        f'<link rel="alternate" type="application/rss+xml" title="Feed {n}" href="{href}">'
        for n, href in enumerate(links, 1)
    )
    return Resource(
        content_type="text/html; charset=utf-8",
        body=f"<html><head><title>Home</title>{tags}</head><body>Hi</body></html>".encode(),
    )


@pytest.fixture
def config(tmp_path: Path, feed_server: FeedServer) -> Path:
    feed_server.set("/feed.xml", Resource(body=rss("Le Monde Numérique", ITEMS)))
    feed_server.set("/other.xml", Resource(body=rss("Other feed", ITEMS)))
    return write_config(tmp_path / "config", SOURCES, CATEGORIES)


def test_add_a_feed_url(config: Path, feed_server: FeedServer) -> None:
    result = aggregator(
        "sources",
        "add",
        feed_server.url("/feed.xml"),
        "--category",
        "news",
        "--config",
        str(config),
    )
    assert "le-monde-num-rique" in result.stdout or "added source" in result.stdout
    text = (config / "sources.toml").read_text(encoding="utf-8")
    assert text.startswith("# Our sources. This comment must survive.")
    catalog = load_catalog(config)
    added = catalog.sources[-1]
    assert added.url == feed_server.url("/feed.xml")
    assert added.title == "Le Monde Numérique"
    assert added.categories == ("news",)


def test_add_discovers_the_single_feed_of_a_page(config: Path, feed_server: FeedServer) -> None:
    feed_server.set("/", page("/feed.xml"))
    aggregator(
        "sources",
        "add",
        feed_server.url("/"),
        "--category",
        "news",
        "--id",
        "site",
        "--config",
        str(config),
    )
    added = load_catalog(config).source("site")
    assert added.url == feed_server.url("/feed.xml")


def test_several_feeds_need_a_choice(config: Path, feed_server: FeedServer) -> None:
    feed_server.set("/", page("/feed.xml", "/other.xml"))
    refused = aggregator(
        "sources",
        "add",
        feed_server.url("/"),
        "--category",
        "news",
        "--config",
        str(config),
        check=False,
    )
    assert refused.returncode == 1
    assert "--pick" in refused.stderr
    assert feed_server.url("/other.xml") in refused.stderr
    assert len(load_catalog(config).sources) == 1
    aggregator(
        "sources",
        "add",
        feed_server.url("/"),
        "--category",
        "news",
        "--pick",
        "2",
        "--config",
        str(config),
    )
    assert load_catalog(config).sources[-1].url == feed_server.url("/other.xml")


def test_a_page_without_feeds_is_a_clear_error(config: Path, feed_server: FeedServer) -> None:
    feed_server.set("/", page())
    refused = aggregator(
        "sources",
        "add",
        feed_server.url("/"),
        "--category",
        "news",
        "--config",
        str(config),
        check=False,
    )
    assert refused.returncode == 1
    assert "links to no feed" in refused.stderr


def test_duplicates_and_unknown_categories_are_refused(
    config: Path, feed_server: FeedServer
) -> None:
    url = feed_server.url("/feed.xml")
    aggregator("sources", "add", url, "--category", "news", "--config", str(config))
    again = aggregator(
        "sources", "add", url, "--category", "news", "--config", str(config), check=False
    )
    assert again.returncode == 3
    assert "already configured" in again.stderr
    wrong = aggregator(
        "sources",
        "add",
        feed_server.url("/other.xml"),
        "--category",
        "nope",
        "--config",
        str(config),
        check=False,
    )
    assert wrong.returncode == 3
    assert "unknown category 'nope'" in wrong.stderr
    assert len(load_catalog(config).sources) == 2


def test_the_addition_is_in_the_audit_log(
    config: Path, feed_server: FeedServer, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'agg.db'}"
    aggregator("db", "upgrade", "--database", database)
    aggregator(
        "sources",
        "add",
        feed_server.url("/feed.xml"),
        "--category",
        "news",
        "--id",
        "monde",
        "--by",
        "mia",
        "--config",
        str(config),
        "--database",
        database,
    )
    audit = aggregator("editors", "audit", "--json", "--database", database)
    [row] = [json.loads(line) for line in audit.stdout.splitlines()]
    assert (row["editor"], row["kind"], row["action"], row["target"]) == (
        "mia",
        "source",
        "add",
        "monde",
    )
    assert row["detail"]["url"] == feed_server.url("/feed.xml")

"""Filtered feeds over a real server and store: ``?lang=&q=&min_sources=&since=&limit=`` keep
the stories they say, answer with validators and 304 like the plain feeds, carry a canonical
``self`` link, refuse a bad parameter with a 400 naming it, and validate (W3C, 0 errors)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests

from aggregator.catalog import load_catalog
from aggregator.demo import FEEDS_DIR, write_demo_config
from aggregator.demo.feedserver import FeedServer
from aggregator.publishing.formats import MEDIA_TYPES
from aggregator.publishing.outputs import Outputs
from aggregator.runtime.service import Service
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.web import create_app
from tests.integration.test_outputs import BASE, Newsroom, outputs_for
from tests.support import feedvalidator
from tests.support.builders import NOW, entry, settle
from tests.support.webserver import serve_app

ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass
class Feeds:
    base: str
    room: Newsroom
    http: requests.Session

    def get(self, path: str, **headers: str) -> requests.Response:
        return self.http.get(self.base + path, headers=headers, timeout=10)

    def titles(self, path: str) -> list[str]:
        response = self.get(path)
        assert response.status_code == 200, response.text
        root = ElementTree.fromstring(response.content)
        return [e.findtext(f"{ATOM}title") or "" for e in root.iter(f"{ATOM}entry")]


@pytest.fixture
def feeds(store: Store) -> Iterator[Feeds]:
    room = Newsroom(store)
    room.poll(
        "en-a",
        entry(
            "strike",
            title="Rail workers strike",
            language="en",
            published_at=NOW - timedelta(days=3),
        ),
    )
    room.poll(
        "en-b",
        entry(
            "strike",
            title="Rail workers strike",
            language="en",
            published_at=NOW - timedelta(days=3),
        ),
    )
    room.poll(
        "fr-a",
        entry(
            "greve",
            title="Grève des cheminots",
            language="fr",
            text="Les cheminots sont en grève.",
            published_at=NOW,
        ),
    )
    room.poll(
        "en-a",
        entry(
            "ferry", title="Ferry runs aground", language="en", published_at=NOW - timedelta(days=1)
        ),
    )
    with (
        serve_app(create_app(store=store, outputs=outputs_for(store, feed_size=10))) as base,
        requests.Session() as http,
    ):
        yield Feeds(base, room, http)


def test_each_parameter_keeps_what_it_says(feeds: Feeds) -> None:
    assert feeds.titles("/feeds/news.atom") == [
        "Grève des cheminots",
        "Ferry runs aground",
        "Rail workers strike",
    ]
    assert feeds.titles("/feeds/news.atom?q=STRIKE") == ["Rail workers strike"]
    assert feeds.titles("/feeds/news.atom?q=grève") == ["Grève des cheminots"]
    assert feeds.titles("/feeds/news.atom?lang=fr") == ["Grève des cheminots"]
    assert feeds.titles("/feeds/news.atom?min_sources=2") == ["Rail workers strike"]
    since = (NOW - timedelta(days=2)).isoformat()
    assert feeds.titles("/feeds/news.atom?" + requests.compat.urlencode({"since": since})) == [
        "Grève des cheminots",
        "Ferry runs aground",
    ]
    assert feeds.titles("/feeds/news.atom?limit=1") == ["Grève des cheminots"]
    assert feeds.titles("/feeds/news.atom?q=nothing-like-this") == []
    # The filters apply to new stories as they come.
    feeds.room.poll(
        "en-b", entry("strike2", title="Second strike day", language="en", published_at=NOW)
    )
    assert feeds.titles("/feeds/news.atom?q=strike") == ["Second strike day", "Rail workers strike"]


def test_self_link_is_canonical_and_the_feed_answers_304(feeds: Feeds) -> None:
    response = feeds.get("/feeds/news.atom?limit=5&q=Strike%20%20rail&lang=en&min_sources=1")
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    [self_link] = [
        link.get("href") for link in root.findall(f"{ATOM}link") if link.get("rel") == "self"
    ]
    assert self_link == f"{BASE}/feeds/news.atom?lang=en&q=Strike+rail&min_sources=1&limit=5"
    assert root.findtext(f"{ATOM}id", "").endswith("?lang=en&q=Strike+rail&min_sources=1&limit=5")
    assert not [
        link for link in root.findall(f"{ATOM}link") if link.get("rel") in ("hub", "prev-archive")
    ]
    etag = response.headers["ETag"]
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    again = feeds.get(
        "/feeds/news.atom?limit=5&q=Strike%20%20rail&lang=en&min_sources=1",
        **{"If-None-Match": etag},
    )
    assert again.status_code == 304
    # The same filter spelled otherwise is the same document.
    other = feeds.get(
        "/feeds/news.atom?lang=en&min_sources=1&q=Strike+rail&limit=5", **{"If-None-Match": etag}
    )
    assert other.status_code == 304
    json_feed = feeds.get("/feeds/news.json?q=strike").json()
    assert json_feed["feed_url"] == f"{BASE}/feeds/news.json?q=strike"
    rss = ElementTree.fromstring(feeds.get("/feeds/news.rss?q=strike").content)
    assert [link.get("href") for link in rss.iter(f"{ATOM}link") if link.get("rel") == "self"] == [
        f"{BASE}/feeds/news.rss?q=strike"
    ]
    # No query string: the plain feed, as before.
    plain = ElementTree.fromstring(feeds.get("/feeds/news.atom").content)
    assert [
        link.get("href") for link in plain.findall(f"{ATOM}link") if link.get("rel") == "self"
    ] == [f"{BASE}/feeds/news.atom"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("lang=english", "lang"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("min_sources=-1", "min_sources"),
        ("since=yesterday", "since"),
        ("since=2026-11-01T00:00:00", "since"),
        ("q=", "q"),
        ("q=" + "x" * 201, "q"),
        ("q=a&q=b", "q"),
        ("colour=red", "colour"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(feeds: Feeds, query: str, param: str) -> None:
    response = feeds.get(f"/feeds/news.atom?{query}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{param}: ")


def test_a_language_given_twice_and_an_unknown_category_are_refused(feeds: Feeds) -> None:
    twice = feeds.get("/feeds/news.fr.atom?lang=en")
    assert twice.status_code == 400
    assert twice.json()["detail"].startswith("lang: ")
    assert feeds.titles("/feeds/news.fr.atom?q=grève") == ["Grève des cheminots"]
    assert feeds.get("/feeds/nope.atom?q=x").status_code == 404


@pytest.mark.shared
def test_filtered_demo_feeds_validate(store: Store, tmp_path: Path) -> None:
    feedvalidator.require_validator()
    with FeedServer() as server:
        server.serve_directory(FEEDS_DIR)
        config = write_demo_config(tmp_path / "config", server.base_url)
        catalog = load_catalog(config)
        service = Service(Settings.from_env({"AGGREGATOR_CLUSTERING": "exact"}), store, catalog)
        try:
            summary = service.poll()
        finally:
            service.close()
    settle(store)
    assert summary.errors == 0
    site = "https://news.example.org"
    outputs = Outputs(
        store=store, catalog=catalog, base_url=site, tag_authority="news.example.org", feed_size=50
    )
    checked = 0
    with serve_app(create_app(store=store, outputs=outputs)) as base:
        # Canonical queries, so the self link is the location the validator was given.
        for query in (
            "lang=fr",
            "q=Helix",
            "lang=en&q=%22AI+Act%22&limit=2",
            "min_sources=1&since=2000-01-01T00:00:00Z",
        ):
            for fmt in ("atom", "rss"):
                response = requests.get(f"{base}/feeds/ai-policy.{fmt}?{query}", timeout=10)
                assert response.status_code == 200, response.text
                url = f"{site}/feeds/ai-policy.{fmt}?{query}"
                events = feedvalidator.validate(
                    response.content, base=url, content_type=MEDIA_TYPES[fmt]
                )
                # As for the plain feeds: stories sharing a publisher time share atom:updated.
                unexpected = [e for e in events if "DuplicateUpdated" not in e]
                assert feedvalidator.errors(events) == [], f"{url}:\n" + "\n".join(events)
                assert unexpected == [], f"{url}:\n" + "\n".join(events)
                assert b"<entry>" in response.content or b"<item>" in response.content, url
                checked += 1
    assert checked == 8

"""The HTTP layer over a real store: feeds, caching headers, 304, HEAD, errors, API, OPML."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import feedparser
import pytest
import requests

from aggregator.catalog import CategoryConfig
from aggregator.publishing.outputs import Outputs
from aggregator.store import Store
from aggregator.web import create_app
from aggregator.web.conditional import http_date
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source
from tests.support.webserver import serve_app


class Client:
    """requests against the live server, with paths relative to its base URL."""

    def __init__(self, base: str, http: requests.Session) -> None:
        self.base = base
        self.http = http

    def get(self, path: str, headers: dict[str, str] | None = None) -> requests.Response:
        return self.http.get(self.base + path, headers=headers, timeout=10)

    def head(self, path: str) -> requests.Response:
        return self.http.head(self.base + path, timeout=10)


@pytest.fixture
def client(store: Store) -> Iterator[Client]:
    cat = catalog(source("a"), source("b", language="fr"), categories=("news",))
    cat = type(cat)(
        sources=cat.sources,
        categories=(
            CategoryConfig(
                id="news", title="News", description="All the news", languages=("en", "fr")
            ),
        ),
    )
    store.sync_sources(cat, NOW)
    for source_id, entries in (
        (
            "a",
            [
                entry("1", url="https://x.example/one"),
                entry("2", published_at=NOW - timedelta(hours=1)),
            ],
        ),
        ("b", [entry("1fr", url="https://x.example/one", language="fr", title="Un")]),
    ):
        store.save_poll(
            source_id,
            fetched(),
            body_hash=None,
            feed_title=None,
            feed_link=None,
            entries=[(e, [match("news")]) for e in entries],
            next_check_at=NOW,
            now=NOW,
        )
    settle(store)
    outputs = Outputs(
        store=store,
        catalog=cat,
        base_url="https://agg.example",
        tag_authority="agg.example",
        feed_size=50,
    )
    with serve_app(create_app(store=store, outputs=outputs)) as base, requests.Session() as http:
        yield Client(base, http)


def test_feed_formats_and_content_types(client: Client) -> None:
    for fmt, media in (
        ("atom", "application/atom+xml"),
        ("rss", "application/rss+xml"),
        ("json", "application/feed+json"),
    ):
        response = client.get(f"/feeds/news.{fmt}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media)
        assert response.headers["etag"].startswith('"')
        assert "last-modified" in response.headers
    parsed = feedparser.parse(client.get("/feeds/news.atom").content)
    assert [e.title for e in parsed.entries] == ["Title 1", "Title 2"]


def test_conditional_requests_get_304(client: Client) -> None:
    first = client.get("/feeds/news.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    by_etag = client.get("/feeds/news.atom", headers={"If-None-Match": etag})
    assert by_etag.status_code == 304
    assert by_etag.content == b""
    by_date = client.get("/feeds/news.atom", headers={"If-Modified-Since": modified})
    assert by_date.status_code == 304
    older = http_date(NOW - timedelta(days=30))
    assert client.get("/feeds/news.atom", headers={"If-Modified-Since": older}).status_code == 200
    assert client.get("/feeds/news.atom", headers={"If-None-Match": '"x"'}).status_code == 200


def test_head_has_headers_and_no_body(client: Client) -> None:
    response = client.head("/feeds/news.rss")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


def test_language_variant(client: Client) -> None:
    parsed = feedparser.parse(client.get("/feeds/news.fr.atom").content)
    assert [e.title for e in parsed.entries] == ["Un"]


def test_unknown_feeds_are_404_with_a_reason(client: Client) -> None:
    missing = client.get("/feeds/nope.atom")
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]
    malformed = client.get("/feeds/news.docx")
    assert malformed.status_code == 404
    assert "not a feed name" in malformed.json()["detail"]


def test_opml_health_index_and_api(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    opml = client.get("/feeds.opml")
    assert opml.status_code == 200
    assert b"https://agg.example/feeds/news.atom" in opml.content
    assert "/feeds/news.atom" in client.get("/").text
    sources = client.get("/api/sources").json()
    assert {s["id"] for s in sources} == {"a", "b"}
    stories = client.get("/api/categories/news/stories").json()
    assert stories[0]["title"] == "Title 1"
    assert {e["language"] for e in stories[0]["entries"]} == {"en", "fr"}
    evidence = client.get(f"/api/stories/{stories[0]['id']}/evidence").json()
    assert [row["signal"] for row in evidence] == ["new", "url"]
    assert client.get("/api/stories/999999/evidence").status_code == 404
    assert client.get("/api/categories/nope/stories").status_code == 404
    assert client.get("/api/categories/news/stories?limit=0").status_code == 422
    schema = client.get("/api/openapi.json").json()
    assert "/feeds/{name}" in schema["paths"]

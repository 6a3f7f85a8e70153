"""The served documents over a real store and a real server: content codings, ETags per
coding, HEAD, Cache-Control for live feeds and immutable archives, the next-archive redirect,
the HTML pages. Raw HTTP (http.client), so the bytes on the wire are what is checked."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import brotli
import pytest

from aggregator.publishing.outputs import Outputs
from aggregator.store import Store
from aggregator.web import create_app
from tests.integration.test_outputs import Newsroom, outputs_for
from tests.support.outputchecks import html5_errors
from tests.support.webserver import serve_app

MAX_AGE = 60


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Raw:
    def __init__(self, base: str) -> None:
        self.netloc = urlsplit(base).netloc

    def request(self, path: str, method: str = "GET", **headers: str) -> Reply:
        connection = http.client.HTTPConnection(self.netloc, timeout=10)
        try:
            connection.request(
                method, path, headers={k.replace("_", "-"): v for k, v in headers.items()}
            )
            response = connection.getresponse()
            body = response.read()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
        finally:
            connection.close()


@pytest.fixture
def served(store: Store, tmp_path: Path) -> Iterator[tuple[Raw, Outputs]]:
    room = Newsroom(store)
    for n in range(7):
        room.story(f"s{n}")
    outputs = outputs_for(store, tmp_path / "archives", max_age=MAX_AGE)
    with serve_app(create_app(store=store, outputs=outputs)) as base:
        yield Raw(base), outputs


def test_codings_are_negotiated_with_their_own_etags(served: tuple[Raw, Outputs]) -> None:
    raw, outputs = served
    document = outputs.document("feeds/news.atom")
    assert document is not None
    plain = raw.request("/feeds/news.atom")
    assert plain.status == 200
    assert plain.body == document.body
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    assert plain.headers["cache-control"] == f"public, max-age={MAX_AGE}"
    zipped = raw.request("/feeds/news.atom", Accept_Encoding="gzip, deflate")
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == document.body
    assert int(zipped.headers["content-length"]) == len(zipped.body) < len(document.body)
    squeezed = raw.request("/feeds/news.atom", Accept_Encoding="gzip, br")
    assert squeezed.headers["content-encoding"] == "br"
    assert brotli.decompress(squeezed.body) == document.body
    etags = {plain.headers["etag"], zipped.headers["etag"], squeezed.headers["etag"]}
    assert len(etags) == 3
    assert all(tag.startswith('"') for tag in etags)
    # Any coding's ETag validates: the content is the same.
    for etag in etags:
        again = raw.request("/feeds/news.atom", If_None_Match=etag, Accept_Encoding="gzip")
        assert again.status == 304
        assert again.body == b""
        assert again.headers["etag"] == zipped.headers["etag"]
    modified = raw.request("/feeds/news.atom", If_Modified_Since=plain.headers["last-modified"])
    assert modified.status == 304


def test_head_matches_get_without_a_body(served: tuple[Raw, Outputs]) -> None:
    raw, _ = served
    for path in (
        "/feeds/news.rss",
        "/feeds/news/archive/0.json",
        "/categories/news.html",
        "/",
        "/feeds.opml",
    ):
        get = raw.request(path, Accept_Encoding="gzip")
        head = raw.request(path, "HEAD", Accept_Encoding="gzip")
        assert head.status == get.status == 200, path
        assert head.body == b""
        for name in (
            "etag",
            "content-length",
            "content-type",
            "cache-control",
            "last-modified",
            "content-encoding",
        ):
            assert head.headers.get(name) == get.headers.get(name), (path, name)


def test_archives_are_immutable_and_the_next_page_redirects(served: tuple[Raw, Outputs]) -> None:
    raw, outputs = served
    page = raw.request("/feeds/news/archive/1.fr.atom")
    assert page.status == 200
    assert page.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert page.headers["content-type"].startswith("application/atom+xml")
    # Page 2 is not complete yet: older pages already link to it, so it leads to the live feed.
    pending = raw.request("/feeds/news/archive/2.rss")
    assert pending.status == 307
    assert pending.headers["location"] == "https://agg.example/feeds/news.rss"
    assert pending.headers["cache-control"] == f"public, max-age={MAX_AGE}"
    assert raw.request("/feeds/news/archive/3.rss").status == 404
    assert raw.request("/feeds/nope/archive/0.rss").status == 404
    assert raw.request("/feeds/news/archive/01.rss").status == 404
    assert raw.request("/feeds/news/archive/x.docx").status == 404
    assert outputs.document("feeds/news/archive/2.rss") is None


def test_pages_are_html_with_a_strict_policy(served: tuple[Raw, Outputs]) -> None:
    raw, _ = served
    for path in ("/categories/news", "/categories/news.html", "/", "/index.html"):
        reply = raw.request(path)
        assert reply.status == 200, path
        assert reply.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src" not in reply.headers["content-security-policy"]
        assert "default-src 'none'" in reply.headers["content-security-policy"]
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert html5_errors(reply.body) == [], path
    assert raw.request("/categories/news").body == raw.request("/categories/news.html").body
    page = raw.request("/categories/news.html").body.decode()
    assert "Title s6" in page
    assert "https://agg.example/feeds/news/archive/1.atom" in page
    index = raw.request("/").body.decode()
    assert 'href="https://agg.example/categories/news.html"' in index
    assert 'href="https://agg.example/feeds/news.fr.json"' in index
    missing = raw.request("/categories/nope")
    assert missing.status == 404
    assert b"nope" in missing.body
    assert raw.request("/categories/a/b").status == 404

"""The loopback FeedServer itself: conditional GET, HEAD, redirects, bodies, the request log."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import time
from contextlib import closing
from email.utils import formatdate
from pathlib import Path

import pytest

from aggregator.demo.feedserver import (
    DEFAULT_CONTENT_TYPE,
    FeedServer,
    Resource,
    etag_matches,
)

BODY = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
LAST_MODIFIED = "Tue, 17 Nov 2026 09:00:00 GMT"
EARLIER = "Mon, 16 Nov 2026 09:00:00 GMT"
LATER = "Wed, 18 Nov 2026 09:00:00 GMT"
TIMEOUT = 5.0
SHA_ETAG = '"' + hashlib.sha256(BODY).hexdigest() + '"'


def request(
    server: FeedServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: status, lower-case headers, raw body."""
    with closing(http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)) as conn:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.fixture
def server(feed_server: FeedServer) -> FeedServer:
    feed_server.set("/feed.xml", Resource(body=BODY, last_modified=LAST_MODIFIED))
    return feed_server


def test_get_serves_body_type_length_and_validators(server: FeedServer) -> None:
    status, headers, body = request(server, "/feed.xml")
    assert (status, body) == (200, BODY)
    assert headers["content-type"] == DEFAULT_CONTENT_TYPE
    assert headers["content-length"] == str(len(BODY))
    assert headers["etag"] == SHA_ETAG
    assert headers["last-modified"] == LAST_MODIFIED


def test_urls_point_at_the_bound_port(server: FeedServer) -> None:
    assert server.port != 0
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert server.url("/feed.xml") == server.url("feed.xml") == server.base_url + "/feed.xml"


@pytest.mark.parametrize(
    "if_none_match",
    [
        SHA_ETAG,
        "W/" + SHA_ETAG,
        f'"other", {SHA_ETAG}',
        f'"a",W/{SHA_ETAG} , "b"',
        "*",
    ],
)
def test_matching_if_none_match_gives_304_without_body(
    server: FeedServer, if_none_match: str
) -> None:
    status, headers, body = request(server, "/feed.xml", headers={"If-None-Match": if_none_match})
    assert (status, body) == (304, b"")
    assert headers["etag"] == SHA_ETAG
    assert "content-length" not in headers


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"If-None-Match": '"stale"'}, 200),
        ({"If-Modified-Since": LAST_MODIFIED}, 304),
        ({"If-Modified-Since": LATER}, 304),
        ({"If-Modified-Since": EARLIER}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        ({"If-None-Match": '"stale"', "If-Modified-Since": LATER}, 200),
        ({"If-None-Match": SHA_ETAG, "If-Modified-Since": EARLIER}, 304),
    ],
)
def test_conditional_get_rules(server: FeedServer, headers: dict[str, str], expected: int) -> None:
    assert request(server, "/feed.xml", headers=headers)[0] == expected


def test_etag_matching_helper() -> None:
    assert etag_matches('W/"x"', '"x"')
    assert etag_matches('"x"', 'W/"x"')
    assert etag_matches("x, y", "y")  # bare tokens from sloppy clients
    assert not etag_matches('"xy"', '"x"')


def test_no_etag_without_auto_validators(feed_server: FeedServer) -> None:
    feed_server.set("/plain.xml", Resource(body=BODY, auto_validators=False))
    status, headers, _ = request(feed_server, "/plain.xml", headers={"If-None-Match": "*"})
    assert status == 200
    assert "etag" not in headers
    assert "last-modified" not in headers


def test_explicit_validators_and_extra_headers(feed_server: FeedServer) -> None:
    feed_server.set(
        "/x.json",
        Resource(
            body=b"{}",
            content_type="application/feed+json",
            etag='W/"v1"',
            headers={"Cache-Control": "max-age=60", "Content-Type": "application/json"},
        ),
    )
    status, headers, _ = request(feed_server, "/x.json")
    assert status == 200
    assert headers["etag"] == 'W/"v1"'
    assert headers["cache-control"] == "max-age=60"
    assert headers["content-type"] == "application/json"  # the resource's header wins
    assert request(feed_server, "/x.json", headers={"If-None-Match": '"v1"'})[0] == 304


def test_head_sends_headers_only_and_is_logged(server: FeedServer) -> None:
    status, headers, body = request(server, "/feed.xml", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len(BODY))
    assert [(r.method, r.status) for r in server.requests] == [("HEAD", 200)]


def test_unknown_path_is_404(server: FeedServer) -> None:
    assert request(server, "/missing.xml")[0] == 404
    assert server.requests[-1].status == 404


def test_set_replaces_and_remove_deletes(server: FeedServer) -> None:
    server.set("/feed.xml", Resource(body=b"new body"))
    status, headers, body = request(server, "/feed.xml", headers={"If-None-Match": SHA_ETAG})
    assert (status, body) == (200, b"new body")
    assert headers["etag"] != SHA_ETAG
    server.remove("/feed.xml")
    server.remove("/feed.xml")  # removing twice is harmless
    assert request(server, "/feed.xml")[0] == 404


def test_error_status_with_body_has_no_auto_etag(feed_server: FeedServer) -> None:
    feed_server.set("/broken", Resource(body=b"oops", status=500, content_type="text/plain"))
    status, headers, body = request(feed_server, "/broken")
    assert (status, body) == (500, b"oops")
    assert "etag" not in headers


def test_redirect_sends_location(feed_server: FeedServer) -> None:
    feed_server.set("/old", Resource(status=301, redirect_to="/new"))
    status, headers, body = request(feed_server, "/old")
    assert (status, headers["location"], body) == (301, "/new", b"")


def test_redirect_needs_a_redirect_status() -> None:
    with pytest.raises(ValueError, match="redirect status"):
        Resource(redirect_to="/elsewhere")


def test_request_log_headers_count_and_reset(server: FeedServer) -> None:
    request(server, "/feed.xml", headers={"X-Probe": "1"})
    request(server, "/feed.xml?page=2")
    request(server, "/other")
    log = server.requests
    assert [r.path for r in log] == ["/feed.xml", "/feed.xml?page=2", "/other"]
    assert log[0].headers["x-probe"] == "1"
    assert all(name == name.lower() for r in log for name in r.headers)
    assert log[1].status == 200  # the query string does not hide the resource
    assert server.count("/feed.xml") == 2
    assert server.count("/feed.xml?page=2") == 1
    assert server.count("/other") == 1
    server.reset_log()
    assert server.requests == []
    assert server.count("/feed.xml") == 0


def test_chunked_body_has_no_content_length(feed_server: FeedServer) -> None:
    big = os.urandom(40_000)
    feed_server.set("/chunked", Resource(body=big, chunked=True))
    status, headers, body = request(feed_server, "/chunked")
    assert (status, body) == (200, big)
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers


def test_gzip_only_when_accepted(feed_server: FeedServer) -> None:
    feed_server.set("/z.xml", Resource(body=BODY * 50, gzip=True))
    status, headers, body = request(feed_server, "/z.xml", headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == BODY * 50
    status, headers, body = request(feed_server, "/z.xml")
    assert "content-encoding" not in headers
    assert body == BODY * 50


def test_delay_and_drip_slow_the_answer(feed_server: FeedServer) -> None:
    feed_server.set("/late", Resource(body=b"x", delay=0.3))
    feed_server.set("/drip", Resource(body=b"y" * 40, drip=0.05, chunk_size=10))
    started = time.monotonic()
    assert request(feed_server, "/late")[2] == b"x"
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert request(feed_server, "/drip")[2] == b"y" * 40
    assert time.monotonic() - started >= 0.15  # three pauses between four chunks


def test_keep_alive_serves_several_requests_on_one_connection(server: FeedServer) -> None:
    with closing(http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)) as conn:
        for _ in range(3):
            conn.request("GET", "/feed.xml")
            assert conn.getresponse().read() == BODY
    assert len({r.client_port for r in server.requests}) == 1


def test_serve_directory(tmp_path: Path) -> None:
    files = {
        "a.xml": b"<rss/>",
        "b.atom": b"<feed/>",
        "c.json": b"{}",
        "d.rss": b"<rss/>",
        "e.txt": b"plain",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    mtime = 1_700_000_000
    os.utime(tmp_path / "a.xml", (mtime, mtime))
    with FeedServer() as server:
        paths = server.serve_directory(tmp_path, prefix="/feeds")
        assert paths == [f"/feeds/{name}" for name in sorted(files)]
        expected_types = {
            "a.xml": "application/rss+xml",
            "b.atom": "application/atom+xml",
            "c.json": "application/feed+json",
            "d.rss": "application/rss+xml",
            "e.txt": "application/octet-stream",
        }
        for name, content_type in expected_types.items():
            status, headers, body = request(server, f"/feeds/{name}")
            assert (status, headers["content-type"], body) == (200, content_type, files[name])
            assert headers["etag"]
        last_modified = formatdate(mtime, usegmt=True)
        assert request(server, "/feeds/a.xml")[1]["last-modified"] == last_modified
        assert (
            request(server, "/feeds/a.xml", headers={"If-Modified-Since": last_modified})[0] == 304
        )


def test_serve_directory_at_root(tmp_path: Path) -> None:
    (tmp_path / "wire.xml").write_bytes(b"<rss/>")
    with FeedServer() as server:
        assert server.serve_directory(tmp_path) == ["/wire.xml"]
        assert request(server, "/wire.xml")[0] == 200


def test_not_started_server_has_no_url() -> None:
    server = FeedServer()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url
    server.stop()  # stopping a server that never started is harmless


def test_stop_is_prompt_with_idle_and_slow_connections() -> None:
    server = FeedServer()
    server.start()
    server.set("/slow", Resource(body=b"z" * 1000, drip=1.0, chunk_size=1))
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    slow = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        idle.request("GET", "/missing")
        idle.getresponse().read()  # the connection stays open, idle, in keep-alive
        slow.request("GET", "/slow")
        slow_response = slow.getresponse()
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0
        with pytest.raises(http.client.IncompleteRead):
            slow_response.read()
        server.stop()
    finally:
        idle.close()
        slow.close()

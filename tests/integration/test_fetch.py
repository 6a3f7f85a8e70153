"""Fetcher against a real FeedServer on 127.0.0.1: validators, 304, redirects, limits, errors."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.errors import FetchError
from aggregator.polling.fetch import MAX_REDIRECTS, Fetcher

USER_AGENT = "aggregator-tests/1.0 (+https://example.org/bot)"
BODY = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
LAST_MODIFIED = "Tue, 17 Nov 2026 09:00:00 GMT"
MAX_BYTES = 64 * 1024
# Generous next to the loopback's milliseconds, small enough to bound every test.
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 2.0
TOTAL_TIMEOUT = 5.0


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(
        user_agent=USER_AGENT,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        total_timeout=TOTAL_TIMEOUT,
        max_bytes=MAX_BYTES,
    ) as fetcher:
        yield fetcher


@pytest.fixture
def server(feed_server: FeedServer) -> FeedServer:
    feed_server.set("/feed.xml", Resource(body=BODY, last_modified=LAST_MODIFIED))
    return feed_server


def fetch_error(fetcher: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url)
    return caught.value


def test_200_returns_body_validators_and_lowercase_headers(
    server: FeedServer, fetcher: Fetcher
) -> None:
    result = fetcher.fetch(server.url("/feed.xml"))
    assert result.status == 200
    assert result.content == BODY
    assert not result.not_modified
    assert result.url == server.url("/feed.xml")
    assert result.etag is not None
    assert result.etag.startswith('"')
    assert result.last_modified == LAST_MODIFIED
    assert result.headers["content-type"].startswith("application/rss+xml")
    assert all(name == name.lower() for name in result.headers)
    assert result.permanent_redirect is None
    assert 0 < result.elapsed < TOTAL_TIMEOUT


def test_second_fetch_with_validators_is_not_modified(server: FeedServer, fetcher: Fetcher) -> None:
    first = fetcher.fetch(server.url("/feed.xml"))
    second = fetcher.fetch(
        server.url("/feed.xml"), etag=first.etag, last_modified=first.last_modified
    )
    assert second.status == 304
    assert second.not_modified
    assert second.content is None
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    seen = server.requests[-1]
    assert seen.headers["if-none-match"] == first.etag
    assert seen.headers["if-modified-since"] == LAST_MODIFIED
    assert seen.status == 304


def test_last_modified_alone_revalidates(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set(
        "/lm.xml", Resource(body=BODY, last_modified=LAST_MODIFIED, auto_validators=False)
    )
    result = fetcher.fetch(feed_server.url("/lm.xml"), last_modified=LAST_MODIFIED)
    assert result.status == 304
    assert result.etag is None
    assert result.last_modified == LAST_MODIFIED
    assert "if-none-match" not in feed_server.requests[-1].headers


def test_changed_feed_is_fetched_again(server: FeedServer, fetcher: Fetcher) -> None:
    first = fetcher.fetch(server.url("/feed.xml"))
    server.set("/feed.xml", Resource(body=b"<rss>changed</rss>"))
    second = fetcher.fetch(server.url("/feed.xml"), etag=first.etag)
    assert second.status == 200
    assert second.content == b"<rss>changed</rss>"
    assert second.etag != first.etag


def test_request_headers_name_us_and_prefer_feeds(server: FeedServer, fetcher: Fetcher) -> None:
    fetcher.fetch(server.url("/feed.xml"))
    headers = server.requests[-1].headers
    assert headers["user-agent"] == USER_AGENT
    assert headers["accept"].startswith("application/atom+xml, application/rss+xml")
    assert "*/*;q=0.8" in headers["accept"]
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in headers
    assert "if-modified-since" not in headers


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [(404, "Not Found", "http"), (500, "Internal Server Error", "http"), (410, "Gone", "gone")],
)
def test_http_errors_carry_the_status(
    feed_server: FeedServer, fetcher: Fetcher, status: int, reason: str, kind: str
) -> None:
    feed_server.set("/bad", Resource(body=b"nope", status=status, content_type="text/plain"))
    error = fetch_error(fetcher, feed_server.url("/bad"))
    assert (error.kind, error.status) == (kind, status)
    assert error.url == feed_server.url("/bad")
    assert error.retry_after is None
    assert str(error) == f"HTTP {status} {reason} from {feed_server.url('/bad')}"


def test_unknown_path_is_http_404(feed_server: FeedServer, fetcher: Fetcher) -> None:
    error = fetch_error(fetcher, feed_server.url("/nowhere.xml"))
    assert (error.kind, error.status) == ("http", 404)
    assert str(error).startswith("HTTP 404 Not Found from ")


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_reported_in_the_message(
    feed_server: FeedServer, fetcher: Fetcher, status: int
) -> None:
    feed_server.set("/busy", Resource(status=status, headers={"Retry-After": "120"}))
    error = fetch_error(fetcher, feed_server.url("/busy"))
    assert (error.kind, error.status) == ("http", status)
    assert str(error).endswith("(Retry-After: 120)")


def test_301_chain_sets_permanent_redirect(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/a", Resource(status=301, redirect_to=feed_server.url("/b")))
    feed_server.set("/b", Resource(status=308, redirect_to="/final.xml"))  # relative Location
    feed_server.set("/final.xml", Resource(body=BODY))
    result = fetcher.fetch(feed_server.url("/a"))
    assert result.status == 200
    assert result.content == BODY
    assert result.url == feed_server.url("/final.xml")
    assert result.permanent_redirect == feed_server.url("/final.xml")
    assert [r.path for r in feed_server.requests] == ["/a", "/b", "/final.xml"]


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_is_followed_but_not_permanent(
    feed_server: FeedServer, fetcher: Fetcher, status: int
) -> None:
    feed_server.set("/tmp", Resource(status=status, redirect_to="/feed.xml"))
    feed_server.set("/feed.xml", Resource(body=BODY))
    result = fetcher.fetch(feed_server.url("/tmp"))
    assert result.url == feed_server.url("/feed.xml")
    assert result.content == BODY
    assert result.permanent_redirect is None


def test_permanent_move_ends_at_the_first_temporary_hop(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    # The source moved for good to /b; /b only borrows /c for now, so /b is what to keep.
    feed_server.set("/a", Resource(status=301, redirect_to="/b"))
    feed_server.set("/b", Resource(status=302, redirect_to="/c"))
    feed_server.set("/c", Resource(body=BODY))
    result = fetcher.fetch(feed_server.url("/a"))
    assert result.url == feed_server.url("/c")
    assert result.permanent_redirect == feed_server.url("/b")


def test_permanent_hop_after_a_temporary_one_does_not_move_the_source(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set("/a", Resource(status=302, redirect_to="/b"))
    feed_server.set("/b", Resource(status=301, redirect_to="/c"))
    feed_server.set("/c", Resource(body=BODY))
    assert fetcher.fetch(feed_server.url("/a")).permanent_redirect is None


def test_validators_follow_redirects(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/old.xml", Resource(status=301, redirect_to="/new.xml"))
    feed_server.set("/new.xml", Resource(body=BODY))
    first = fetcher.fetch(feed_server.url("/old.xml"))
    second = fetcher.fetch(feed_server.url("/old.xml"), etag=first.etag)
    assert second.status == 304
    assert second.permanent_redirect == feed_server.url("/new.xml")


def test_redirect_loop_fails_with_kind_redirects(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/ping", Resource(status=302, redirect_to="/pong"))
    feed_server.set("/pong", Resource(status=302, redirect_to="/ping"))
    error = fetch_error(fetcher, feed_server.url("/ping"))
    assert error.kind == "redirects"
    assert len(feed_server.requests) == MAX_REDIRECTS + 1


def test_redirect_to_a_non_http_url_is_invalid(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/ftp", Resource(status=301, redirect_to="ftp://files.example/feed.xml"))
    assert fetch_error(fetcher, feed_server.url("/ftp")).kind == "invalid_url"


def test_declared_length_over_limit_is_refused_before_reading(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    # The body would take minutes to drip; refusing on Content-Length must not wait for it.
    feed_server.set("/huge", Resource(body=b"x" * (MAX_BYTES + 1), drip=1.0, chunk_size=1024))
    started = time.monotonic()
    error = fetch_error(fetcher, feed_server.url("/huge"))
    assert error.kind == "too_large"
    assert time.monotonic() - started < 1.0


def test_chunked_body_over_limit_is_cut_while_streaming(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set("/endless", Resource(body=b"x" * (MAX_BYTES * 4), chunked=True))
    assert fetch_error(fetcher, feed_server.url("/endless")).kind == "too_large"
    assert "content-length" not in feed_server.requests[-1].headers


def test_body_of_exactly_the_limit_is_accepted(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/edge", Resource(body=b"x" * MAX_BYTES, chunked=True))
    result = fetcher.fetch(feed_server.url("/edge"))
    assert result.content is not None
    assert len(result.content) == MAX_BYTES


def test_compressed_body_is_limited_after_decompression(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    bomb = gzip.compress(b"\0" * (MAX_BYTES * 20))
    assert len(bomb) < MAX_BYTES
    feed_server.set("/bomb", Resource(body=bomb, headers={"Content-Encoding": "gzip"}))
    assert fetch_error(fetcher, feed_server.url("/bomb")).kind == "too_large"


def test_gzip_response_is_decompressed(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/z.xml", Resource(body=BODY * 100, gzip=True))
    result = fetcher.fetch(feed_server.url("/z.xml"))
    assert result.content == BODY * 100
    assert result.headers["content-encoding"] == "gzip"


def test_deflate_response_is_decompressed(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set(
        "/d.xml", Resource(body=zlib.compress(BODY), headers={"Content-Encoding": "deflate"})
    )
    assert fetcher.fetch(feed_server.url("/d.xml")).content == BODY


def test_corrupt_gzip_is_a_decode_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set(
        "/junk", Resource(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    )
    assert fetch_error(fetcher, feed_server.url("/junk")).kind == "decode"


def timed_fetch_error(
    feed_server: FeedServer,
    path: str,
    resource: Resource,
    *,
    read_timeout: float,
    total_timeout: float,
) -> tuple[FetchError, float]:
    """Serve ``resource`` at ``path`` and fetch it with these timeouts: the error, and the
    seconds it took to come."""
    feed_server.set(path, resource)
    with Fetcher(
        user_agent=USER_AGENT, read_timeout=read_timeout, total_timeout=total_timeout
    ) as fetcher:
        started = time.monotonic()
        error = fetch_error(fetcher, feed_server.url(path))
        waited = time.monotonic() - started
    assert error.kind == "timeout"
    return error, waited


def test_slow_drip_is_cut_at_the_total_timeout(feed_server: FeedServer) -> None:
    # A byte every 50 ms never trips the read timeout; only the total deadline stops it.
    error, waited = timed_fetch_error(
        feed_server,
        "/drip",
        Resource(body=b"x" * 200, drip=0.05, chunk_size=1),
        read_timeout=2.0,
        total_timeout=0.5,
    )
    assert "total limit" in str(error)
    assert 0.5 <= waited < 1.5


def test_stalled_body_is_cut_at_the_total_timeout(feed_server: FeedServer) -> None:
    # Each pause (1.5 s) is within the read timeout (2 s), but the second one runs past the
    # deadline: the last read must wait only for what is left of the total, not a full 2 s.
    error, waited = timed_fetch_error(
        feed_server,
        "/stall",
        Resource(body=b"xxx", drip=1.5, chunk_size=1),
        read_timeout=2.0,
        total_timeout=2.0,
    )
    assert "total limit of 2 s" in str(error)
    assert 2.0 <= waited < 2.8


def test_slow_headers_hit_the_read_timeout(feed_server: FeedServer) -> None:
    error, waited = timed_fetch_error(
        feed_server, "/late", Resource(body=BODY, delay=2.0), read_timeout=0.3, total_timeout=5.0
    )
    assert "sent nothing for 0.3 s" in str(error)
    assert waited < 1.5


def test_slow_headers_hit_the_total_timeout(feed_server: FeedServer) -> None:
    _error, waited = timed_fetch_error(
        feed_server, "/late", Resource(body=BODY, delay=2.0), read_timeout=5.0, total_timeout=0.3
    )
    assert waited < 1.5


def test_refused_connection_is_a_connection_error(fetcher: Fetcher) -> None:
    # A bound socket that never listens makes the kernel refuse connections to its port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as reserved:
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        error = fetch_error(fetcher, f"http://127.0.0.1:{port}/feed.xml")
    assert error.kind == "connection"
    assert error.status is None


def test_body_cut_short_is_a_connection_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set(
        "/short",
        Resource(body=b"0123456789", headers={"Content-Length": "1000", "Connection": "close"}),
    )
    assert fetch_error(fetcher, feed_server.url("/short")).kind == "connection"


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "feed.xml",
        "ftp://files.example/feed.xml",
        "http://",
        "http://[::1",
        "http://127.0.0.1:99999/feed.xml",
        "file:///etc/passwd",
    ],
)
def test_invalid_urls_are_refused_without_a_request(fetcher: Fetcher, url: str) -> None:
    assert fetch_error(fetcher, url).kind == "invalid_url"


def test_concurrent_fetches_share_one_fetcher(feed_server: FeedServer, fetcher: Fetcher) -> None:
    paths = [f"/feed-{n}.xml" for n in range(24)]
    for path in paths:
        feed_server.set(path, Resource(body=path.encode() * 100, delay=0.02))
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda p: fetcher.fetch(feed_server.url(p)), paths))
    assert [r.content for r in results] == [p.encode() * 100 for p in paths]
    assert all(feed_server.count(path) == 1 for path in paths)
    # One session per worker thread, each reusing its connection: at most six connections.
    assert len({r.client_port for r in feed_server.requests}) <= 6


def test_a_thread_reuses_its_connection(server: FeedServer, fetcher: Fetcher) -> None:
    for _ in range(3):
        fetcher.fetch(server.url("/feed.xml"))
    assert len({r.client_port for r in server.requests}) == 1


def test_sessions_of_finished_threads_are_closed(server: FeedServer, fetcher: Fetcher) -> None:
    def fetch_once() -> None:
        fetcher.fetch(server.url("/feed.xml"))

    for _ in range(3):
        worker = threading.Thread(target=fetch_once)
        worker.start()
        worker.join()
    fetch_once()
    # Each new thread's session replaced the dead threads' ones; only live threads keep one.
    assert len(fetcher._sessions) == 1


def test_fetcher_is_usable_after_close(server: FeedServer) -> None:
    fetcher = Fetcher(user_agent=USER_AGENT, total_timeout=TOTAL_TIMEOUT)
    assert fetcher.fetch(server.url("/feed.xml")).status == 200
    fetcher.close()
    assert fetcher.fetch(server.url("/feed.xml")).status == 200
    fetcher.close()
    fetcher.close()


@pytest.mark.parametrize(
    "options",
    [
        {"user_agent": " "},
        {"user_agent": "ua", "total_timeout": 0},
        {"user_agent": "ua", "max_bytes": -1},
        {"user_agent": "ua", "read_timeout": 0},
    ],
)
def test_nonsense_configuration_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        Fetcher(**options)  # type: ignore[arg-type]


def test_not_modified_responses_keep_the_connection(feed_server: FeedServer) -> None:
    feed_server.set("/kept.xml", Resource(body=b"<rss version='2.0'><channel/></rss>"))
    with Fetcher(user_agent="test/1") as fetcher:
        first = fetcher.fetch(feed_server.url("/kept.xml"))
        for _ in range(5):
            again = fetcher.fetch(feed_server.url("/kept.xml"), etag=first.etag)
            assert again.status == 304
    ports = {r.client_port for r in feed_server.requests if r.status == 304}
    assert len(ports) == 1


def test_netrc_credentials_never_reach_a_feed_host(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login alice password secret\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    feed_server.set("/private.xml", Resource(body=b"<rss version='2.0'><channel/></rss>"))
    with Fetcher(user_agent="test/1") as fetcher:
        fetcher.fetch(feed_server.url("/private.xml"))
    assert "authorization" not in feed_server.requests[-1].headers

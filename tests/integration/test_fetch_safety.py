"""The fetcher's manners and defences against a real FeedServer on 127.0.0.1.

Retry-After (seconds and HTTP-date) on 429/503 blocks the whole host; every hop takes a turn at
its host's gate; untrusted fetches refuse non-public addresses, on every redirect hop and on
the address actually connected to; HTML pages and binaries are refused as not_a_feed, while real
feeds served as text/html are not. Only 127.0.0.1 is ever contacted: other host names are
resolved to it by the guard's injected resolver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import TypedDict, Unpack

import pytest

from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.errors import FetchError, ParseError
from aggregator.polling.fetch import DEFAULT_429_RETRY_AFTER, MAX_RETRY_AFTER, Fetcher
from aggregator.polling.fetch.content import looks_like_html_page
from aggregator.polling.hosts import HostGate
from aggregator.polling.parse import parse_feed
from aggregator.safety.netguard import IPAddress, NetGuard, parse_address, system_resolver
from tests.support.shared import shared_dir

USER_AGENT = "aggregator-tests/1.0 (+https://example.org/bot)"
NOW = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
RSS = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"
ATOM = (
    b"<feed xmlns='http://www.w3.org/2005/Atom'><title>a</title>"
    b"<id>urn:x</id><updated>2026-01-01T00:00:00Z</updated></feed>"
)
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
    b"<title>Example   News &amp; Views</title></head><body><p>Hello</p></body></html>"
)
# Names the test resolver sends to 127.0.0.1. "public" ones play hosts on the internet.
PUBLIC_HOST = "feeds.public.test"
OTHER_PUBLIC_HOST = "cdn.public.test"
INTERNAL_HOST = "intranet.internal.test"
REAL_WORLD_FOLDERS = (
    "fastfeedparser-realworld",
    "rss-parser-inputs",
    "node-feedparser-feeds",
    "feed-rs-fixtures",
    "miniflux-testdata",
)


def loopback_resolver(calls: list[str] | None = None) -> Callable[[str, int], Sequence[str]]:
    names = {PUBLIC_HOST, OTHER_PUBLIC_HOST, INTERNAL_HOST}

    def resolve(host: str, port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        if host in names:
            return ["127.0.0.1"]
        if host == "127.0.0.1":
            return system_resolver(host, port)
        raise AssertionError(f"the test tried to resolve {host}")

    return resolve


@pytest.fixture
def guard() -> NetGuard:
    # The "public" names are trusted as if their (loopback) address were public; the internal
    # name and every IP literal are checked for real.
    return NetGuard(
        resolver=loopback_resolver(), allowed_hosts=frozenset({PUBLIC_HOST, OTHER_PUBLIC_HOST})
    )


@pytest.fixture
def gate() -> HostGate:
    return HostGate(max_per_host=2, min_delay=0.0)


@pytest.fixture
def fetcher(gate: HostGate, guard: NetGuard) -> Iterator[Fetcher]:
    with Fetcher(
        user_agent=USER_AGENT,
        connect_timeout=2,
        read_timeout=2,
        total_timeout=5,
        max_bytes=256 * 1024,
        gate=gate,
        guard=guard,
        now=lambda: NOW,
        host_wait=2,
    ) as fetcher:
        yield fetcher


class FetchOptions(TypedDict, total=False):
    allow_private: bool
    accept_html: bool


def fetch_error(fetcher: Fetcher, url: str, **options: Unpack[FetchOptions]) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url, **options)
    return caught.value


def named(server: FeedServer, host: str, path: str) -> str:
    return f"http://{host}:{server.port}{path}"


# -- Retry-After and host-wide back-off ------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("header", "delay"),
    [
        ("120", timedelta(seconds=120)),
        (format_datetime(NOW + timedelta(minutes=7), usegmt=True), timedelta(minutes=7)),
    ],
)
def test_retry_after_blocks_the_whole_host(
    feed_server: FeedServer,
    fetcher: Fetcher,
    gate: HostGate,
    status: int,
    header: str,
    delay: timedelta,
) -> None:
    feed_server.set("/busy.xml", Resource(status=status, headers={"Retry-After": header}))
    feed_server.set("/other.xml", Resource(body=RSS))
    error = fetch_error(fetcher, feed_server.url("/busy.xml"))
    assert (error.kind, error.status, error.retry_after) == ("http", status, NOW + delay)
    assert error.url == feed_server.url("/busy.xml")
    assert gate.blocked_until("127.0.0.1", NOW) == NOW + delay

    blocked = fetch_error(fetcher, feed_server.url("/other.xml"))
    assert (blocked.kind, blocked.retry_after) == ("host_backoff", NOW + delay)
    assert blocked.url == feed_server.url("/other.xml")
    assert "127.0.0.1" in str(blocked)
    assert feed_server.count("/other.xml") == 0


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, None, NOW + DEFAULT_429_RETRY_AFTER),
        (429, "soon, promise", NOW + DEFAULT_429_RETRY_AFTER),
        (429, "86400000", NOW + MAX_RETRY_AFTER),
        (503, "99999999999999999999999", NOW + MAX_RETRY_AFTER),
        (503, format_datetime(NOW + timedelta(days=30), usegmt=True), NOW + MAX_RETRY_AFTER),
        (503, None, None),
        (503, "garbage", None),
    ],
)
def test_retry_after_defaults_and_clamps(
    feed_server: FeedServer,
    fetcher: Fetcher,
    gate: HostGate,
    status: int,
    header: str | None,
    expected: datetime | None,
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    feed_server.set("/busy", Resource(status=status, headers=headers))
    error = fetch_error(fetcher, feed_server.url("/busy"))
    assert (error.kind, error.status, error.retry_after) == ("http", status, expected)
    assert gate.blocked_until("127.0.0.1", NOW) == expected


def test_retry_after_in_the_past_does_not_block(
    feed_server: FeedServer, fetcher: Fetcher, gate: HostGate
) -> None:
    past = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    feed_server.set("/busy", Resource(status=503, headers={"Retry-After": past}))
    assert fetch_error(fetcher, feed_server.url("/busy")).retry_after == NOW
    assert gate.blocked_until("127.0.0.1", NOW) is None


def test_without_a_gate_retry_after_is_reported_but_nothing_is_blocked(
    feed_server: FeedServer,
) -> None:
    feed_server.set("/busy", Resource(status=429, headers={"Retry-After": "30"}))
    feed_server.set("/ok.xml", Resource(body=RSS))
    with Fetcher(user_agent=USER_AGENT, now=lambda: NOW) as plain:
        assert fetch_error(plain, feed_server.url("/busy")).retry_after == NOW + timedelta(
            seconds=30
        )
        assert plain.fetch(feed_server.url("/ok.xml")).status == 200


def test_block_ends_when_the_time_comes(feed_server: FeedServer, gate: HostGate) -> None:
    clock = {"now": NOW}
    feed_server.set("/ok.xml", Resource(body=RSS))
    gate.block("127.0.0.1", NOW + timedelta(seconds=60))
    with Fetcher(user_agent=USER_AGENT, gate=gate, now=lambda: clock["now"]) as fetcher:
        assert fetch_error(fetcher, feed_server.url("/ok.xml")).kind == "host_backoff"
        clock["now"] = NOW + timedelta(seconds=60)
        assert fetcher.fetch(feed_server.url("/ok.xml")).status == 200


def test_a_blocked_host_is_refused_on_a_redirect_hop(
    feed_server: FeedServer, fetcher: Fetcher, gate: HostGate
) -> None:
    feed_server.set(
        "/start",
        Resource(status=302, redirect_to=named(feed_server, OTHER_PUBLIC_HOST, "/feed.xml")),
    )
    feed_server.set("/feed.xml", Resource(body=RSS))
    gate.block(OTHER_PUBLIC_HOST, NOW + timedelta(minutes=5))
    error = fetch_error(fetcher, named(feed_server, PUBLIC_HOST, "/start"), allow_private=False)
    assert error.kind == "host_backoff"
    assert error.url == named(feed_server, OTHER_PUBLIC_HOST, "/feed.xml")
    assert [r.path for r in feed_server.requests] == ["/start"]


# -- politeness ------------------------------------------------------------------------------


class RecordingGate(HostGate):
    def __init__(self, **options: float) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.turns: list[str] = []

    def acquire(self, host: str, timeout: float | None = None) -> bool:
        taken = super().acquire(host, timeout)
        if taken:
            self.turns.append(host)
        return taken


def test_every_redirect_hop_takes_a_turn_at_its_host(
    feed_server: FeedServer, guard: NetGuard
) -> None:
    feed_server.set(
        "/a", Resource(status=301, redirect_to=named(feed_server, OTHER_PUBLIC_HOST, "/b"))
    )
    feed_server.set("/b", Resource(status=302, redirect_to="/c"))
    feed_server.set("/c", Resource(body=RSS))
    gate = RecordingGate(min_delay=0.0)
    with Fetcher(user_agent=USER_AGENT, gate=gate, guard=guard) as fetcher:
        result = fetcher.fetch(named(feed_server, PUBLIC_HOST, "/a"), allow_private=False)
    assert result.content == RSS
    assert gate.turns == [PUBLIC_HOST, OTHER_PUBLIC_HOST, OTHER_PUBLIC_HOST]
    assert gate.in_flight(PUBLIC_HOST) == gate.in_flight(OTHER_PUBLIC_HOST) == 0


def test_requests_to_one_host_are_spaced(feed_server: FeedServer) -> None:
    feed_server.set("/feed.xml", Resource(body=RSS))
    gate = HostGate(max_per_host=4, min_delay=0.15)
    with Fetcher(user_agent=USER_AGENT, gate=gate) as fetcher:
        for _ in range(3):
            fetcher.fetch(feed_server.url("/feed.xml"))
    arrivals = [r.at for r in feed_server.requests]
    # The server notes arrival a little after the gate lets a request go: allow for jitter.
    assert arrivals[-1] - arrivals[0] >= 2 * 0.15 - 0.03


def test_concurrent_requests_to_one_host_are_capped(feed_server: FeedServer) -> None:
    feed_server.set("/slow.xml", Resource(body=RSS, delay=0.2))
    gate = HostGate(max_per_host=2, min_delay=0.0)
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.wait(0.005):
            peak = max(peak, gate.in_flight("127.0.0.1"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    with Fetcher(user_agent=USER_AGENT, gate=gate) as fetcher:
        workers = [
            threading.Thread(target=fetcher.fetch, args=(feed_server.url("/slow.xml"),))
            for _ in range(6)
        ]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(10)
        elapsed = time.monotonic() - started
    stop.set()
    watcher.join()
    assert peak == 2
    assert feed_server.count("/slow.xml") == 6
    assert elapsed >= 3 * 0.2  # six requests, two at a time


def test_a_host_busy_beyond_host_wait_defers_the_fetch(feed_server: FeedServer) -> None:
    feed_server.set("/feed.xml", Resource(body=RSS))
    gate = HostGate(max_per_host=1, min_delay=0.0)
    assert gate.acquire("127.0.0.1")  # another worker holds the only turn
    with Fetcher(user_agent=USER_AGENT, gate=gate, now=lambda: NOW, host_wait=0.2) as fetcher:
        error = fetch_error(fetcher, feed_server.url("/feed.xml"))
    assert error.kind == "host_backoff"
    assert error.retry_after == NOW + timedelta(seconds=0.2)
    assert feed_server.count("/feed.xml") == 0


# -- private addresses -----------------------------------------------------------------------


def test_loopback_url_is_refused_for_untrusted_sources(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set("/feed.xml", Resource(body=RSS))
    error = fetch_error(fetcher, feed_server.url("/feed.xml"), allow_private=False)
    assert error.kind == "blocked_address"
    assert "127.0.0.1" in str(error)
    assert "loopback" in str(error)
    assert error.url == feed_server.url("/feed.xml")
    assert feed_server.requests == []


def test_loopback_is_fine_for_trusted_sources(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/feed.xml", Resource(body=RSS))
    assert fetcher.fetch(feed_server.url("/feed.xml")).content == RSS


def test_a_name_resolving_to_a_private_address_is_refused(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set("/feed.xml", Resource(body=RSS))
    error = fetch_error(
        fetcher, named(feed_server, INTERNAL_HOST, "/feed.xml"), allow_private=False
    )
    assert error.kind == "blocked_address"
    assert f"{INTERNAL_HOST} (127.0.0.1)" in str(error)
    assert feed_server.requests == []


@pytest.mark.parametrize("target_host", ["127.0.0.1", INTERNAL_HOST])
def test_redirect_from_a_public_host_to_a_private_one_is_refused(
    feed_server: FeedServer, fetcher: Fetcher, target_host: str
) -> None:
    secret = named(feed_server, target_host, "/secret")
    feed_server.set("/start.xml", Resource(status=302, redirect_to=secret))
    feed_server.set("/secret", Resource(body=b"internal data"))
    error = fetch_error(fetcher, named(feed_server, PUBLIC_HOST, "/start.xml"), allow_private=False)
    assert error.kind == "blocked_address"
    assert error.url == secret
    assert target_host in str(error)
    assert [r.path for r in feed_server.requests] == ["/start.xml"]


def test_untrusted_fetch_connects_to_the_address_it_checked(feed_server: FeedServer) -> None:
    # One resolution per connection, and that answer is the one connected to: the host name
    # only travels in the Host header, so no second DNS answer can redirect the socket.
    calls: list[str] = []
    guard = NetGuard(resolver=loopback_resolver(calls), allowed_hosts=frozenset({PUBLIC_HOST}))
    feed_server.set("/feed.xml", Resource(body=RSS))
    with Fetcher(user_agent=USER_AGENT, guard=guard) as fetcher:
        for _ in range(2):
            result = fetcher.fetch(
                named(feed_server, PUBLIC_HOST, "/feed.xml"), allow_private=False
            )
            assert result.content == RSS
    assert calls == [PUBLIC_HOST]  # the second fetch reused the checked connection
    assert feed_server.requests[0].headers["host"] == f"{PUBLIC_HOST}:{feed_server.port}"


@dataclass(frozen=True)
class LaxResolutionGuard(NetGuard):
    """Resolves without checking, as if DNS had answered differently a moment before the
    connection: only the check of the connected peer stands in the way."""

    def addresses(self, host: str, port: int) -> list[IPAddress]:
        return [parse_address(text) for text in self.resolver(host, port)]


def test_the_connected_peer_is_checked_before_any_byte_is_sent(feed_server: FeedServer) -> None:
    feed_server.set("/feed.xml", Resource(body=RSS))
    guard = LaxResolutionGuard(resolver=loopback_resolver())
    with Fetcher(user_agent=USER_AGENT, guard=guard) as fetcher:
        error = fetch_error(
            fetcher, named(feed_server, INTERNAL_HOST, "/feed.xml"), allow_private=False
        )
    assert error.kind == "blocked_address"
    assert feed_server.requests == []


# -- content that is not a feed --------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/xhtml+xml", ""])
def test_an_html_page_is_not_a_feed(
    feed_server: FeedServer, fetcher: Fetcher, content_type: str
) -> None:
    feed_server.set("/", Resource(body=HTML_PAGE, content_type=content_type))
    error = fetch_error(fetcher, feed_server.url("/"))
    assert (error.kind, error.status) == ("not_a_feed", 200)
    message = str(error)
    assert "looks like an HTML page" in message
    assert "'Example News & Views'" in message
    assert f"aggregator sources add {feed_server.url('/')}" in message


def test_accept_html_lets_a_page_through_for_autodiscovery(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.set("/", Resource(body=HTML_PAGE, content_type="text/html"))
    assert fetcher.fetch(feed_server.url("/"), accept_html=True).content == HTML_PAGE


@pytest.mark.parametrize(
    "content_type", ["image/png", "application/pdf", "video/mp4", "application/zip"]
)
def test_binary_content_is_refused_from_the_headers(
    feed_server: FeedServer, fetcher: Fetcher, content_type: str
) -> None:
    # The body would take minutes to drip: refusing on the Content-Type must not wait for it.
    feed_server.set(
        "/file",
        Resource(
            body=b"\x89PNG" + b"\0" * 4096, content_type=content_type, drip=1.0, chunk_size=16
        ),
    )
    started = time.monotonic()
    error = fetch_error(fetcher, feed_server.url("/file"), accept_html=True)
    assert error.kind == "not_a_feed"
    assert content_type in str(error)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (RSS, "text/html"),
        (ATOM, "text/html; charset=utf-8"),
        (RSS, "text/plain"),
        (ATOM, ""),
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": []}',
            "text/html",
        ),
        (b"<!-- a comment with <html> in it -->\n" + RSS, "text/html"),
        (
            b"\xef\xbb\xbf<?xml version='1.0'?>\n<?xml-stylesheet href='s.xsl'?>\n<!DOCTYPE rss>\n"
            + RSS.split(b"?>", 1)[1],
            "text/html",
        ),
        (b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/>", "text/html"),
        (RSS, "application/octet-stream"),
    ],
)
def test_feeds_served_with_a_wrong_type_are_accepted(
    feed_server: FeedServer, fetcher: Fetcher, body: bytes, content_type: str
) -> None:
    feed_server.set("/feed", Resource(body=body, content_type=content_type))
    assert fetcher.fetch(feed_server.url("/feed")).content == body


def real_world_feeds() -> list[Path]:
    root = shared_dir() / "data" / "feeds"
    return sorted(
        path
        for folder in REAL_WORLD_FOLDERS
        if (root / folder).is_dir()
        for path in (root / folder).rglob("*")
        if path.is_file() and path.suffix in {".xml", ".rss", ".atom", ".json"}
    )


@pytest.mark.shared
def test_real_feeds_served_as_text_html_are_not_refused(feed_server: FeedServer) -> None:
    paths = real_world_feeds()
    if not paths:
        pytest.skip("the shared feed corpus is absent")
    for number, path in enumerate(paths):
        feed_server.set(
            f"/{number}", Resource(body=path.read_bytes(), content_type="text/html; charset=utf-8")
        )
    refused = []
    with Fetcher(user_agent=USER_AGENT, max_bytes=8 * 1024 * 1024) as fetcher:
        for number, path in enumerate(paths):
            try:
                fetcher.fetch(feed_server.url(f"/{number}"))
            except FetchError as exc:
                if exc.kind == "not_a_feed":
                    refused.append(path)
    # Only documents that are no feed at all may be refused (one is an "Object Moved" page).
    assert [p.name for p in refused if is_readable_feed(p)] == []


def is_readable_feed(path: Path) -> bool:
    try:
        parse_feed(path.read_bytes(), url="http://x.test/", headers={})
    except ParseError:
        return False
    return True


@pytest.mark.shared
def test_nothing_in_the_corpus_sniffed_as_html_is_a_readable_feed() -> None:
    root = shared_dir() / "data" / "feeds"
    if not root.is_dir():
        pytest.skip("the shared feed corpus is absent")
    documents = [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix not in {".md", ".tsv", ".opml"}
    ]
    flagged = [p for p in documents if looks_like_html_page(p.read_bytes(), "text/html")]
    readable = [p for p in flagged if is_readable_feed(p)]
    assert readable == []
    assert len(documents) > 1000

"""A source's health and schedule as the poller records them, on SQLite and PostgreSQL.

A feed that is not well-formed and yields nothing is a ``malformed`` error, a well-formed one
that lists nothing an ``empty`` one (also after good polls, without back-off and without
losing what was stored); both show in ``/api/sources``, the admin pages and the metrics. The
feed's own ``<ttl>`` keeps counting after 304s and unchanged bodies, and sources sharing a URL
cost one request per cycle, also when one joins later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import prometheus_client
import pytest
import requests

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.metrics import Metrics
from aggregator.polling.fetch.configured import fetcher_from_settings
from aggregator.polling.poller import Refresher
from aggregator.publishing.outputs import Outputs
from aggregator.runtime.service import make_fetcher
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import SourceStatus
from aggregator.web import create_app
from tests.support.builders import NOW
from tests.support.feeds import rss
from tests.support.webserver import serve_app

ITEMS = [
    {"guid": f"g{i}", "title": f"Item {i}", "link": f"https://n.example/{i}"} for i in range(3)
]
# Not well-formed (a mismatched tag), but feedparser still sees an RSS 2.0 document.
MALFORMED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title>'
    b"<description>d</descr></channel></rss>"
)
EMPTY = rss("Quiet", [])
TOKEN = "t" * 32
INTERVAL = timedelta(minutes=30)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _settings() -> Settings:
    return replace(
        Settings.from_env({}),
        host_delay=0.0,
        host_concurrency=4,
        connect_timeout=2,
        read_timeout=2,
        fetch_deadline=5,
    )


def _catalog(sources: dict[str, str]) -> Catalog:
    return Catalog(
        sources=tuple(
            SourceConfig(id=sid, url=url, categories=("all",)) for sid, url in sources.items()
        ),
        categories=(CategoryConfig(id="all", title="All"),),
    )


def _refresher(
    store: Store, catalog: Catalog, clock: Clock, metrics: Metrics | None = None, **extra: Any
) -> Iterator[Refresher]:
    """A refresher with two threads over ``catalog``'s sources (synced first); ``extra`` goes
    to ``Refresher`` as well (worker processes...)."""
    store.sync_sources(catalog, clock.now)
    refresher = Refresher(
        store=store,
        fetcher=make_fetcher(_settings(), now=clock),
        catalog=catalog,
        workers=2,
        clock=clock,
        metrics=metrics,
        **extra,
    )
    try:
        yield refresher
    finally:
        refresher.close()
        refresher.fetcher.close()


def _poll_due(refresher: Refresher, clock: Clock, *, everything: bool = False) -> dict[str, str]:
    due = refresher.store.due_sources(clock.now, everything=everything)
    return {o.source_id: o.result for o in refresher.poll(due).outcomes}


def _status(store: Store, source_id: str) -> SourceStatus:
    return next(s for s in store.sources() if s.id == source_id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


# Rejected by the parser before it found any feed in it: no root it knows, and broken.
UNREADABLE = b'<?xml version="1.0"?><feed-ish><item></feed-ish>'


@pytest.mark.parametrize(
    ("body", "message"),
    [(MALFORMED, "mismatched tag"), (UNREADABLE, "mismatched tag")],
    ids=["half-read", "rejected"],
)
def test_a_malformed_feed_is_an_error_on_its_first_poll(
    store: Store, feed_server: FeedServer, clock: Clock, body: bytes, message: str
) -> None:
    feed_server.set("/broken.xml", Resource(body=body))
    metrics = Metrics()
    catalog = _catalog({"broken": feed_server.url("/broken.xml")})
    for refresher in _refresher(store, catalog, clock, metrics):
        assert _poll_due(refresher, clock) == {"broken": "error"}
        health = _status(store, "broken")
        assert health.last_error_kind == "malformed"
        assert health.last_error is not None
        assert message in health.last_error  # the parser's own message
        assert (health.error_count, health.last_status, health.last_success_at) == (1, 200, None)
        scraped = prometheus_client.generate_latest(metrics.registry).decode()
        assert 'aggregator_fetches_total{outcome="malformed"} 1.0' in scraped


def test_an_empty_feed_is_an_error_without_back_off(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/quiet.xml", Resource(body=EMPTY))
    catalog = _catalog({"quiet": feed_server.url("/quiet.xml")})
    for refresher in _refresher(store, catalog, clock):
        for _ in range(3):
            assert _poll_due(refresher, clock, everything=True) == {"quiet": "error"}
            health = _status(store, "quiet")
            assert health.last_error_kind == "empty"
            assert health.next_check_at is not None
            # The server answered well: the next check is one interval away, not doubled.
            assert health.next_check_at - clock.now < INTERVAL * 1.2
            clock.now += timedelta(hours=1)
        assert health.error_count == 3
        assert health.last_success_at is None


def test_a_feed_that_empties_is_an_error_and_keeps_its_entries(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/news.xml", Resource(body=rss("News", ITEMS)))
    catalog = _catalog({"news": feed_server.url("/news.xml")})
    for refresher in _refresher(store, catalog, clock):
        assert _poll_due(refresher, clock) == {"news": "updated"}
        feed_server.set("/news.xml", Resource(body=EMPTY))
        clock.now += timedelta(hours=1)
        assert _poll_due(refresher, clock) == {"news": "error"}
        assert _status(store, "news").last_error_kind == "empty"
        assert store.counts()["entries"] == 3
        # Back to normal once it lists its entries again: the validators kept from the last
        # good body get a 304.
        feed_server.set("/news.xml", Resource(body=rss("News", ITEMS)))
        clock.now += timedelta(hours=1)
        assert _poll_due(refresher, clock) == {"news": "not_modified"}
        health = _status(store, "news")
        assert (health.error_count, health.last_error_kind) == (0, None)


def test_the_error_kind_shows_in_the_api_and_the_admin_pages(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/broken.xml", Resource(body=MALFORMED))
    feed_server.set("/quiet.xml", Resource(body=EMPTY))
    catalog = _catalog(
        {"broken": feed_server.url("/broken.xml"), "quiet": feed_server.url("/quiet.xml")}
    )
    for refresher in _refresher(store, catalog, clock):
        _poll_due(refresher, clock)
    outputs = Outputs(
        store=store,
        catalog=catalog,
        base_url="http://agg.test",
        tag_authority="agg.test",
        feed_size=50,
    )
    app = create_app(store=store, outputs=outputs, admin_token=TOKEN)
    with serve_app(app) as base, requests.Session() as http:
        kinds = {
            s["id"]: s["last_error_kind"]
            for s in http.get(f"{base}/api/sources", timeout=10).json()
        }
        assert kinds == {"broken": "malformed", "quiet": "empty"}
        http.post(f"{base}/admin/login", data={"token": TOKEN, "editor": "Mia"}, timeout=10)
        sources_page = http.get(f"{base}/admin/sources", timeout=10).text
        assert '<span class="error-kind">malformed</span>: not well-formed XML' in sources_page
        assert '<span class="error-kind">empty</span>' in sources_page
        overview = http.get(f"{base}/admin/", timeout=10).text
        assert "last (malformed):" in overview


def _with_ttl(body: bytes, minutes: int) -> bytes:
    return body.replace(b"<channel>", f"<channel><ttl>{minutes}</ttl>".encode(), 1)


@pytest.mark.parametrize("validators", [True, False], ids=["304", "unchanged-body"])
def test_the_feed_ttl_holds_after_a_304_or_an_unchanged_body(
    store: Store, feed_server: FeedServer, clock: Clock, validators: bool
) -> None:
    feed_server.set(
        "/slow.xml", Resource(body=_with_ttl(rss("Slow", ITEMS), 240), auto_validators=validators)
    )
    catalog = _catalog({"slow": feed_server.url("/slow.xml")})
    for refresher in _refresher(store, catalog, clock):
        assert _poll_due(refresher, clock) == {"slow": "updated"}
        for _ in range(2):
            health = _status(store, "slow")
            assert health.next_check_at is not None
            assert health.next_check_at - clock.now >= timedelta(minutes=240)
            clock.now = health.next_check_at
            again = _poll_due(refresher, clock)
            assert again == {"slow": "not_modified" if validators else "unchanged"}
        assert _status(store, "slow").feed_ttl_seconds == 240 * 60


def test_sources_sharing_a_url_cost_one_request_per_cycle(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/shared.xml", Resource(body=rss("Shared", ITEMS)))
    url = feed_server.url("/shared.xml")
    sources = {f"s{i}": url for i in range(5)}
    catalog = _catalog(sources)
    end = clock.now + timedelta(hours=6)
    joined = False
    for refresher in _refresher(store, catalog, clock):
        while clock.now < end:
            if not joined and clock.now >= NOW + timedelta(hours=2):
                # An editor adds one more source on the same URL while the others wait.
                store.sync_sources(_catalog({**sources, "late": url}), clock.now)
                joined = True
            _poll_due(refresher, clock)
            clock.now += timedelta(minutes=2)
        checks = {s.next_check_at for s in store.sources()}
    assert len(checks) == 1  # one schedule for all six
    # Every 30 minutes plus up to 10% jitter over 6 hours: 11 or 12 cycles, plus the one the
    # late source pulled forward. Each source on its own would have made about 70.
    assert feed_server.count("/shared.xml") <= 14


def test_worker_processes_record_the_same_kinds(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/broken.xml", Resource(body=MALFORMED))
    feed_server.set("/unreadable.xml", Resource(body=UNREADABLE))
    feed_server.set("/quiet.xml", Resource(body=EMPTY))
    catalog = _catalog(
        {name: feed_server.url(f"/{name}.xml") for name in ("broken", "unreadable", "quiet")}
    )
    for refresher in _refresher(
        store,
        catalog,
        clock,
        processes=2,
        process_min_urls=1,
        fetcher_factory=partial(fetcher_from_settings, _settings()),
    ):
        assert _poll_due(refresher, clock) == dict.fromkeys(
            ("broken", "unreadable", "quiet"), "error"
        )
        assert len(refresher.worker_pids()) == 2
    kinds = {s.id: s.last_error_kind for s in store.sources()}
    assert kinds == {"broken": "malformed", "unreadable": "malformed", "quiet": "empty"}

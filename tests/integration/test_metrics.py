"""/metrics after real polls against a loopback feed server (issue 8, acceptance 2).

Two polls through a ``Service``: feeds answering 200, the same feeds answering 304 on the second
poll, a feed without validators that grows, a 404 and a 410, then the clustering stage (exact
mode, no model) after each. The scrape goes through the real web app under uvicorn, and every
metric is compared with what that history must give, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.runtime.service import Service, make_outputs
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.web import create_app
from tests.support.feeds import rss
from tests.support.webserver import serve_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def item(key: str, published: datetime, link: str | None = None) -> dict[str, str]:
    return {
        "guid": key,
        "title": f"Story {key}",
        "link": link or f"https://n.example/{key}",
        "date": format_datetime(published, usegmt=True),
        "body": f"Body of {key}.",
    }


def scrape(base: str) -> Samples:
    response = requests.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def history(store: Store, feed_server: FeedServer) -> Iterator[tuple[Service, datetime]]:
    """The service after its two polls; yields it with the time the items were dated from."""
    base = datetime.now(UTC).replace(microsecond=0)
    feed_server.set(
        "/a.xml",
        Resource(
            body=rss(
                "A",
                [
                    item("a1", base - timedelta(hours=1), link="https://n.example/shared"),
                    item("a2", base - timedelta(hours=2)),
                ],
            )
        ),
    )
    feed_server.set(
        "/b.xml",
        Resource(
            body=rss(
                "B", [item("b1", base - timedelta(hours=5)), item("b2", base - timedelta(hours=6))]
            )
        ),
    )
    first_c = [item("c1", base - timedelta(hours=3)), item("c2", base - timedelta(hours=3))]
    feed_server.set("/c.xml", Resource(body=rss("C", first_c), auto_validators=False))
    feed_server.set("/gone.xml", Resource(status=410, body=b"gone"))
    sources = (
        SourceConfig(id="a", url=feed_server.url("/a.xml"), categories=("news",)),
        SourceConfig(id="b", url=feed_server.url("/b.xml"), categories=("science",)),
        SourceConfig(id="c", url=feed_server.url("/c.xml"), categories=("news",)),
        SourceConfig(id="missing", url=feed_server.url("/missing.xml"), categories=("quiet",)),
        SourceConfig(id="gone", url=feed_server.url("/gone.xml"), categories=("news",)),
        SourceConfig(
            id="paused", url=feed_server.url("/a.xml"), categories=("news",), enabled=False
        ),
    )
    catalog = Catalog(
        sources=sources,
        categories=(
            CategoryConfig(id="news", title="News"),
            CategoryConfig(id="science", title="Science"),
            CategoryConfig(id="quiet", title="Quiet"),
        ),
    )
    settings = replace(
        Settings.from_env({}),
        clustering="exact",
        poll_processes=0,
        host_delay=0.0,
        connect_timeout=2,
        read_timeout=2,
        fetch_deadline=5,
        feed_recheck_seconds=3600,
    )
    service = Service(settings, store, catalog)
    try:
        first = service.poll()
        assert {o.source_id: o.result for o in first.outcomes} == {
            "a": "updated",
            "b": "updated",
            "c": "updated",
            "missing": "error",
            "gone": "error",
        }
        service.cluster()
        # c grows by a copy of a1 (same link): the second poll merges it into a1's story.
        feed_server.set(
            "/c.xml",
            Resource(
                body=rss(
                    "C",
                    [
                        *first_c,
                        item("c3", base - timedelta(hours=4), link="https://n.example/shared"),
                    ],
                ),
                auto_validators=False,
            ),
        )
        second = service.poll()
        assert {o.source_id: o.result for o in second.outcomes} == {
            "a": "not_modified",
            "b": "not_modified",
            "c": "updated",
            "missing": "error",
        }
        service.cluster()
        yield service, base
    finally:
        service.close()


def test_metrics_after_polls(history: tuple[Service, datetime], store: Store) -> None:
    service, base = history
    # Scrape "two days later": every active source is then overdue by a known amount.
    later = base + timedelta(days=2)
    service.metrics.clock = lambda: later
    outputs = make_outputs(service.settings, store, service.catalog, metrics=service.metrics)
    outputs.refresh()  # renders each category's 3 feeds and page, once
    app = create_app(store=store, outputs=outputs, metrics=service.metrics)
    with serve_app(app) as url:
        for path in ("/feeds/news.atom", "/feeds/news.atom", "/feeds.opml"):
            assert requests.get(url + path, timeout=10).status_code == 200
        samples = scrape(url)

    fetches = "aggregator_fetches_total"
    assert value(samples, fetches, outcome="ok") == 4  # a, b, c, then c again
    assert value(samples, fetches, outcome="not_modified") == 2
    assert value(samples, fetches, outcome="http") == 2  # the 404, twice
    assert value(samples, fetches, outcome="gone") == 1
    # Latency of the six exchanges that got a feed answer (200 or 304).
    assert value(samples, "aggregator_fetch_duration_seconds_count") == 6
    assert 0 < value(samples, "aggregator_fetch_duration_seconds_sum") < 6 * 5
    assert value(samples, "aggregator_fetch_duration_seconds_bucket", le="+Inf") == 6
    assert value(samples, "aggregator_fetch_not_modified_ratio") == pytest.approx(2 / 6)

    assert value(samples, "aggregator_entries_created_total") == 7
    assert value(samples, "aggregator_stories_created_total") == 6
    assert value(samples, "aggregator_dedup_merges_total", signal="url") == 1

    news_age = (later - (base - timedelta(hours=1))).total_seconds()
    science_age = (later - (base - timedelta(hours=5))).total_seconds()
    age = "aggregator_category_newest_item_age_seconds"
    assert value(samples, age, category="news") == news_age
    assert value(samples, age, category="science") == science_age
    assert not any(
        name == age and dict(labels).get("category") == "quiet" for name, labels in samples
    )  # nothing in it yet: no age to report

    by_state = {
        state: value(samples, "aggregator_sources", state=state)
        for state in ("active", "paused", "gone", "removed")
    }
    assert by_state == {"active": 4, "paused": 1, "gone": 1, "removed": 0}
    active_due = [
        s.next_check_at
        for s in store.sources()
        if s.state == "active" and s.next_check_at is not None
    ]
    assert len(active_due) == 4
    expected_lag = (later - min(active_due)).total_seconds()
    assert value(samples, "aggregator_scheduler_lag_seconds") == pytest.approx(expected_lag)

    renders = "aggregator_output_renders_total"
    assert value(samples, renders, kind="feed") == 3 * 3
    assert value(samples, renders, kind="page") == 3
    assert value(samples, renders, kind="opml") == 1
    # Both news.atom requests came from memory; the OPML list was rendered for its request.
    assert value(samples, "aggregator_output_cache_hits_total") == 2


def test_no_source_is_overdue_right_after_a_poll(history: tuple[Service, datetime]) -> None:
    service, _ = history
    assert service.metrics.registry.get_sample_value("aggregator_scheduler_lag_seconds") == 0


def test_each_app_has_its_own_registry(store: Store) -> None:
    catalog = Catalog(sources=(), categories=(CategoryConfig(id="news", title="News"),))
    # No watcher: only requests render, so one app's work shows in its own scrape only.
    settings = replace(Settings.from_env({}), feed_recheck_seconds=0)
    apps = [
        create_app(store=store, outputs=make_outputs(settings, store, catalog)) for _ in range(2)
    ]
    with serve_app(apps[0]) as first, serve_app(apps[1]) as second:
        requests.get(f"{first}/feeds/news.atom", timeout=10)
        one, other = scrape(first), scrape(second)
    assert value(one, "aggregator_output_renders_total", kind="feed") >= 1
    assert ("aggregator_output_renders_total", (("kind", "feed"),)) not in other

"""A pass over the due sources in batches (``polling.due``): every due source is polled once,
in the store's due order, a URL shared by several sources is fetched once even where a batch
would have split them, and a source paused since the pass began is left out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from functools import partial

import pytest

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.polling import due
from aggregator.polling.due import poll_due, url_batches
from aggregator.polling.fetch.configured import fetcher_from_settings
from aggregator.polling.poller import Refresher
from aggregator.runtime.service import make_fetcher
from aggregator.store import Store
from aggregator.types import SourceStatus
from tests.integration.test_poll_health import _settings
from tests.support.builders import NOW
from tests.support.feeds import rss

ITEMS = [
    {"guid": f"g{i}", "title": f"Item {i}", "link": f"https://n.example/{i}"} for i in range(2)
]


def test_batches_keep_a_urls_sources_together_and_the_order() -> None:
    pairs = [("a", "u1"), ("b", "u2"), ("c", "u1"), ("d", "u3"), ("e", "u4"), ("f", "u3")]
    assert list(url_batches(pairs, 2)) == [["a", "c"], ["b", "d", "f"], ["e"]]
    assert list(url_batches(pairs, 100)) == [["a", "c", "b", "d", "f", "e"]]
    assert list(url_batches([], 2)) == []


@pytest.fixture
def refresher(store: Store, feed_server: FeedServer) -> Iterator[Refresher]:
    for name in ("one", "two", "three", "shared"):
        feed_server.set(f"/{name}.xml", Resource(body=rss(name, ITEMS)))
    urls = {
        "s1": "/one.xml",
        "s2": "/shared.xml",
        "s3": "/two.xml",
        "s4": "/three.xml",
        "s5": "/shared.xml",
    }
    catalog = Catalog(
        sources=tuple(
            SourceConfig(id=source_id, url=feed_server.url(path), categories=("all",))
            for source_id, path in urls.items()
        ),
        categories=(CategoryConfig(id="all", title="All"),),
    )
    store.sync_sources(catalog, NOW)
    refresher = Refresher(
        store=store,
        fetcher=make_fetcher(_settings(), now=lambda: NOW),
        catalog=catalog,
        workers=2,
        fetcher_factory=partial(fetcher_from_settings, _settings()),
        clock=lambda: NOW,
    )
    try:
        yield refresher
    finally:
        refresher.close()
        refresher.fetcher.close()


def test_a_pass_in_batches_polls_every_source_once_and_a_shared_url_once(
    store: Store, feed_server: FeedServer, refresher: Refresher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(due, "DUE_BATCH", 2)
    order = [s.id for s in store.due_sources(NOW, everything=True)]
    assert [source_id for source_id, _url in store.due_urls(NOW, everything=True)] == order
    batches: list[list[str]] = []
    real = store.active_sources

    def noted(ids: list[str]) -> list[SourceStatus]:
        batches.append(list(ids))
        return real(ids)

    monkeypatch.setattr(store, "active_sources", noted)
    heard: list[str] = []
    summary = poll_due(refresher, everything=True, on_outcome=lambda o: heard.append(o.source_id))
    assert len(batches) > 1
    assert sorted(o.source_id for o in summary.outcomes) == ["s1", "s2", "s3", "s4", "s5"]
    assert sorted(heard) == ["s1", "s2", "s3", "s4", "s5"]
    assert {o.result for o in summary.outcomes} == {"updated"}
    assert feed_server.count("/shared.xml") == 1
    assert any({"s2", "s5"} <= set(batch) for batch in batches)
    # Nothing is due an hour later: every source got its next check.
    assert store.due_urls(NOW + timedelta(minutes=1)) == []


def test_a_source_paused_after_the_pass_began_is_left(
    store: Store, refresher: Refresher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(due, "DUE_BATCH", 1)
    real = store.due_urls

    def due_then_pause(*args: object, **kwargs: object) -> list[tuple[str, str]]:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        catalog = refresher.catalog
        store.sync_sources(
            replace(
                catalog, sources=tuple(replace(s, enabled=s.id != "s4") for s in catalog.sources)
            ),
            NOW,
        )
        return found

    monkeypatch.setattr(store, "due_urls", due_then_pause)
    summary = poll_due(refresher, everything=True)
    assert sorted(o.source_id for o in summary.outcomes) == ["s1", "s2", "s3", "s5"]
    assert [s.id for s in store.active_sources(["s4", "s3", "s1"])] == ["s3", "s1"]

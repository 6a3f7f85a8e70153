"""A poll's HTTP semantics end to end against a loopback server and a real store.

301 becomes the source's URL only when seen twice in a row, 302 never; 410 retires a source;
429/503 Retry-After defers every source of that host; repeated 404 triggers autodiscovery; a
URL shared by two sources is fetched once; an unchanged body without validators is not parsed
again; worker processes give the same results as fetching and parsing inline, and a worker
that dies costs only its in-flight sources.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.polling import poller
from aggregator.polling.fetch import Fetcher
from aggregator.polling.fetch.configured import fetcher_from_settings
from aggregator.polling.poller import Refresher
from aggregator.polling.workers import Fetched
from aggregator.runtime.service import make_fetcher
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import FetchResult, PollOutcome, SourceStatus
from tests.support.builders import NOW
from tests.support.feeds import rss

ITEMS = [
    {"guid": f"g{i}", "title": f"Item {i}", "link": f"https://n.example/{i}"} for i in range(3)
]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def settings(**changes: object) -> Settings:
    base = Settings.from_env({})
    return replace(
        base,
        host_delay=0.0,
        host_concurrency=4,
        connect_timeout=2,
        read_timeout=2,
        fetch_deadline=5,
        **changes,  # type: ignore[arg-type]
    )


def make_refresher(
    store: Store, server: FeedServer, clock: Clock, *paths: str, processes: int = 0
) -> Iterator[Refresher]:
    sources = tuple(
        SourceConfig(id=f"s{i}", url=server.url(path), categories=("all",))
        for i, path in enumerate(paths)
    )
    catalog = Catalog(sources=sources, categories=(CategoryConfig(id="all", title="All"),))
    store.sync_sources(catalog, clock.now)
    refresher = Refresher(
        store=store,
        fetcher=make_fetcher(settings(), now=clock),
        catalog=catalog,
        workers=4,
        processes=processes,
        fetcher_factory=partial(fetcher_from_settings, settings()),
        process_min_urls=1,
        clock=clock,
    )
    try:
        yield refresher
    finally:
        refresher.close()
        refresher.fetcher.close()


def status(store: Store, source_id: str) -> SourceStatus:
    return next(s for s in store.sources() if s.id == source_id)


def poll_all(refresher: Refresher, clock: Clock) -> dict[str, str]:
    due = refresher.store.due_sources(clock.now, everything=True)
    return {o.source_id: o.result for o in refresher.poll(due).outcomes}


def test_permanent_redirect_is_adopted_after_two_polls(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/new.xml", Resource(body=rss("Moved", ITEMS)))
    feed_server.set("/old.xml", Resource(status=301, redirect_to="/new.xml"))
    for refresher in make_refresher(store, feed_server, clock, "/old.xml"):
        poll_all(refresher, clock)
        first = status(store, "s0")
        assert first.url.endswith("/old.xml")
        clock.now += timedelta(hours=1)
        poll_all(refresher, clock)
        moved = status(store, "s0")
        assert moved.url == feed_server.url("/new.xml")
        assert moved.configured_url == feed_server.url("/old.xml")
        feed_server.reset_log()
        clock.now += timedelta(hours=1)
        poll_all(refresher, clock)
        assert feed_server.count("/old.xml") == 0
        assert feed_server.count("/new.xml") == 1


def test_temporary_redirect_is_followed_not_saved(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/new.xml", Resource(body=rss("Temp", ITEMS)))
    feed_server.set("/old.xml", Resource(status=302, redirect_to="/new.xml"))
    for refresher in make_refresher(store, feed_server, clock, "/old.xml"):
        for _ in range(3):
            assert poll_all(refresher, clock)["s0"] in {"updated", "not_modified"}
            clock.now += timedelta(hours=1)
        assert status(store, "s0").url.endswith("/old.xml")
        assert store.counts()["entries"] == 3


def test_gone_retires_the_source(store: Store, feed_server: FeedServer, clock: Clock) -> None:
    feed_server.set("/gone.xml", Resource(status=410, body=b"gone"))
    for refresher in make_refresher(store, feed_server, clock, "/gone.xml"):
        assert poll_all(refresher, clock) == {"s0": "error"}
        gone = status(store, "s0")
        assert (gone.state, gone.last_status, gone.last_error_kind) == ("gone", 410, "gone")
        assert store.due_sources(clock.now + timedelta(days=30), everything=True) == []


def test_retry_after_defers_the_whole_host(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set(
        "/busy.xml", Resource(status=429, headers={"Retry-After": "3600"}, body=b"slow down")
    )
    feed_server.set("/other.xml", Resource(body=rss("Other", ITEMS)))
    for refresher in make_refresher(store, feed_server, clock, "/busy.xml", "/other.xml"):
        busy = [s for s in store.sources() if s.id == "s0"]
        assert refresher.poll(busy).outcomes[0].result == "error"
        first = status(store, "s0")
        assert first.last_status == 429
        assert first.next_check_at is not None
        assert first.next_check_at >= clock.now + timedelta(seconds=3600)
        other = [s for s in store.sources() if s.id == "s1"]
        assert refresher.poll(other).outcomes[0].result == "deferred"
        assert feed_server.count("/other.xml") == 0
        deferred = status(store, "s1")
        assert deferred.error_count == 0
        assert deferred.next_check_at is not None
        assert deferred.next_check_at >= clock.now + timedelta(seconds=3500)


def test_repeated_404_discovers_the_feed_on_the_home_page(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/feed.xml", Resource(status=404, body=b"not here"))
    feed_server.set(
        "/",
        Resource(
            content_type="text/html; charset=utf-8",
            body=b'<html><head><title>Site</title><link rel="alternate" '
            b'type="application/rss+xml" href="/rss/new.xml"></head><body></body></html>',
        ),
    )
    feed_server.set("/rss/new.xml", Resource(body=rss("Found", ITEMS)))
    for refresher in make_refresher(store, feed_server, clock, "/feed.xml"):
        for _ in range(3):
            assert poll_all(refresher, clock) == {"s0": "error"}
            clock.now += timedelta(days=1)
        found = status(store, "s0")
        assert found.url == feed_server.url("/rss/new.xml")
        assert "autodiscovery" in (found.last_error or "")
        assert poll_all(refresher, clock) == {"s0": "updated"}
        assert store.counts()["entries"] == 3


def test_a_shared_url_is_fetched_once(store: Store, feed_server: FeedServer, clock: Clock) -> None:
    feed_server.set("/shared.xml", Resource(body=rss("Shared", ITEMS)))
    for refresher in make_refresher(store, feed_server, clock, "/shared.xml", "/shared.xml"):
        assert poll_all(refresher, clock) == {"s0": "updated", "s1": "updated"}
        assert feed_server.count("/shared.xml") == 1
        assert store.counts()["entries"] == 6


def test_unchanged_body_without_validators_is_not_parsed(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/plain.xml", Resource(body=rss("Plain", ITEMS), auto_validators=False))
    for refresher in make_refresher(store, feed_server, clock, "/plain.xml"):
        assert poll_all(refresher, clock) == {"s0": "updated"}
        clock.now += timedelta(hours=1)
        assert poll_all(refresher, clock) == {"s0": "unchanged"}
        health = status(store, "s0")
        assert (health.last_status, health.last_new_entries) == (200, 0)


def test_worker_processes_match_inline(store: Store, feed_server: FeedServer, clock: Clock) -> None:
    for n in range(6):
        items = [
            {
                "guid": f"p{n}-{i}",
                "title": f"Feed {n} item {i}",
                "link": f"https://p{n}.example/{i}",
            }
            for i in range(5)
        ]
        feed_server.set(f"/p{n}.xml", Resource(body=rss(f"P{n}", items)))
    feed_server.set("/same.xml", Resource(body=rss("Same", ITEMS), auto_validators=False))
    feed_server.set("/broken.xml", Resource(body=b"neither XML nor JSON {"))
    paths = [f"/p{n}.xml" for n in range(6)] + ["/missing.xml", "/same.xml", "/broken.xml"]
    for refresher in make_refresher(store, feed_server, clock, *paths, processes=2):
        results = poll_all(refresher, clock)
        assert results == {
            **{f"s{n}": "updated" for n in range(6)},
            "s6": "error",
            "s7": "updated",
            "s8": "error",
        }
        assert len(refresher.worker_pids()) == 2
        assert store.counts()["entries"] == 33
        health = status(store, "s0")
        assert (health.last_new_entries, health.last_bytes is not None) == (5, True)
        assert status(store, "s6").last_status == 404
        assert status(store, "s8").last_error_kind == "parse"
        clock.now += timedelta(hours=1)
        # Validators round-trip through the workers; the body without them is skipped by hash.
        assert poll_all(refresher, clock) == {
            **{f"s{n}": "not_modified" for n in range(6)},
            "s6": "error",
            "s7": "unchanged",
            "s8": "error",
        }
        assert store.counts()["entries"] == 33


def test_a_worker_sends_the_body_size_and_digest_not_the_body(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    body = rss("Plain", ITEMS)
    feed_server.set("/plain.xml", Resource(body=body, auto_validators=False))
    for refresher in make_refresher(store, feed_server, clock, "/plain.xml", processes=1):
        answers: list[Fetched] = []
        workers = refresher._processes_for(1)
        assert workers is not None
        workers.run([(status(store, "s0"),)], answers.append)
        (answer,) = answers
        assert isinstance(answer.result, FetchResult)
        assert answer.result.content is None
        assert (answer.result.body_size, answer.result.body_sha256) == (
            len(body),
            hashlib.sha256(body).hexdigest(),
        )
        # What the store keeps of the body is what it kept when the body itself came back.
        assert poll_all(refresher, clock) == {"s0": "updated"}
        saved = status(store, "s0")
        assert (saved.last_bytes, saved.body_hash) == (len(body), hashlib.sha256(body).hexdigest())
        clock.now += timedelta(hours=1)
        assert poll_all(refresher, clock) == {"s0": "unchanged"}
        assert status(store, "s0").last_bytes == len(body)


def test_a_dead_worker_costs_only_its_sources(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/fast.xml", Resource(body=rss("Fast", ITEMS)))
    feed_server.set("/slow.xml", Resource(body=rss("Slow", ITEMS), delay=1.5))
    for refresher in make_refresher(
        store, feed_server, clock, "/fast.xml", "/slow.xml", processes=1
    ):

        def kill_mid_fetch(target: Refresher) -> None:
            # The slow request has reached the server: its worker is mid-fetch.
            deadline = time.monotonic() + 30
            while feed_server.count("/slow.xml") == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            # Mid-way through the slow answer; the fast feed, asked at the same time, is done.
            time.sleep(0.6)
            for pid in target.worker_pids():
                os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_mid_fetch, args=(refresher,))
        killer.start()
        results = poll_all(refresher, clock)
        killer.join()
        assert results["s1"] == "error"
        assert "poll worker process" in (status(store, "s1").last_error or "")
        # The fast feed was answered before the kill.
        assert results["s0"] == "updated"
        clock.now += timedelta(hours=1)
        feed_server.set("/slow.xml", Resource(body=rss("Slow", ITEMS)))
        # A replacement worker serves the next poll.
        assert poll_all(refresher, clock) == {"s0": "not_modified", "s1": "updated"}


def unusable_fetcher() -> Fetcher:
    """A fetcher factory for worker processes that cannot start."""
    raise RuntimeError("this worker cannot build a fetcher")


def test_workers_that_cannot_start_leave_the_poll_to_the_main_process(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    paths = [f"/w{n}.xml" for n in range(10)]
    for path in paths:
        feed_server.set(path, Resource(body=rss(path, ITEMS)))
    for refresher in make_refresher(store, feed_server, clock, *paths, processes=2):
        refresher.fetcher_factory = unusable_fetcher
        # Workers die before answering anything: their sources go back in the queue, and
        # after a few deaths the main process fetches everything itself.
        assert poll_all(refresher, clock) == {f"s{n}": "updated" for n in range(10)}
        assert refresher.worker_pids() == []


def test_a_worker_that_died_between_polls_is_replaced_quietly(
    store: Store, feed_server: FeedServer, clock: Clock
) -> None:
    feed_server.set("/a.xml", Resource(body=rss("A", ITEMS)))
    for refresher in make_refresher(store, feed_server, clock, "/a.xml", processes=1):
        assert poll_all(refresher, clock) == {"s0": "updated"}
        (pid,) = refresher.worker_pids()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while refresher.worker_pids() and time.monotonic() < deadline:
            time.sleep(0.02)
        clock.now += timedelta(hours=1)
        # Nothing was in flight: the next poll gets a new worker and loses nothing.
        assert poll_all(refresher, clock) == {"s0": "not_modified"}
        assert refresher.worker_pids() not in ([], [pid])


def test_once_started_the_workers_take_every_poll_small_ones_too(
    store: Store, feed_server: FeedServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service keeps its workers; its main process then never parses (nor loads the
    parser), however few sources a tick finds due."""
    for path in ("/a.xml", "/b.xml", "/c.xml"):
        feed_server.set(path, Resource(body=rss(path, ITEMS)))
    for refresher in make_refresher(
        store, feed_server, clock, "/a.xml", "/b.xml", "/c.xml", processes=1
    ):
        refresher.process_min_urls = 3
        # Below the threshold and no worker yet: in this process.
        assert {o.source_id: o.result for o in refresher.poll([status(store, "s0")]).outcomes} == {
            "s0": "updated"
        }
        assert refresher.worker_pids() == []
        clock.now += timedelta(hours=1)
        assert poll_all(refresher, clock) == {
            "s0": "not_modified",
            "s1": "updated",
            "s2": "updated",
        }
        assert len(refresher.worker_pids()) == 1

        def not_here(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("prepared in the main process")

        monkeypatch.setattr(poller, "prepare_for", not_here)
        more = [*ITEMS, {"guid": "g9", "title": "Item 9", "link": "https://n.example/9"}]
        feed_server.set("/b.xml", Resource(body=rss("/b.xml", more)))
        clock.now += timedelta(hours=1)
        (outcome,) = refresher.poll([status(store, "s1")]).outcomes
        assert (outcome.result, outcome.new_entries) == ("updated", 1)


@pytest.mark.parametrize("processes", [0, 1])
def test_a_public_only_source_never_reaches_a_private_address(
    store: Store, feed_server: FeedServer, clock: Clock, processes: int
) -> None:
    """Sources added through the API or admin pages carry ``public_only``: the fetch path
    refuses their loopback URL before any request, in the main process and in a worker."""
    feed_server.set("/inside.xml", Resource(body=rss("Inside", ITEMS)))
    feed_server.set("/reviewed.xml", Resource(body=rss("Reviewed", ITEMS)))
    catalog = Catalog(
        sources=(
            SourceConfig(
                id="web", url=feed_server.url("/inside.xml"), categories=("all",), public_only=True
            ),
            SourceConfig(id="file", url=feed_server.url("/reviewed.xml"), categories=("all",)),
        ),
        categories=(CategoryConfig(id="all", title="All"),),
    )
    store.sync_sources(catalog, clock.now)
    assert status(store, "web").public_only
    refresher = Refresher(
        store=store,
        fetcher=make_fetcher(settings(), now=clock),
        catalog=catalog,
        workers=4,
        processes=processes,
        fetcher_factory=partial(fetcher_from_settings, settings()),
        process_min_urls=1,
        clock=clock,
    )
    try:
        assert poll_all(refresher, clock) == {"web": "error", "file": "updated"}
    finally:
        refresher.close()
        refresher.fetcher.close()
    assert status(store, "web").last_error_kind == "blocked_address"
    assert feed_server.count("/inside.xml") == 0
    assert feed_server.count("/reviewed.xml") == 1


def test_fetched_feeds_are_saved_in_batches_and_reported_once_stored(
    store: Store, feed_server: FeedServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poller, "SAVE_BATCH", 2)
    for n in range(5):
        items = [
            {
                "guid": f"b{n}-{i}",
                "title": f"Feed {n} item {i}",
                "link": f"https://b{n}.example/{i}",
            }
            for i in range(3)
        ]
        feed_server.set(f"/b{n}.xml", Resource(body=rss(f"B{n}", items)))
    batches: list[list[str]] = []
    stored_when_heard: dict[str, int | None] = {}
    save_polls = store.save_polls

    def recording(saves, **kwargs):  # type: ignore[no-untyped-def]
        batches.append([s.source_id for s in saves])
        return save_polls(saves, **kwargs)

    def heard(outcome: PollOutcome) -> None:
        stored_when_heard[outcome.source_id] = status(store, outcome.source_id).last_new_entries

    monkeypatch.setattr(store, "save_polls", recording)
    for refresher in make_refresher(store, feed_server, clock, *[f"/b{n}.xml" for n in range(5)]):
        due = store.due_sources(clock.now, everything=True)
        summary = refresher.poll(due, on_outcome=heard)
        assert {o.source_id: o.result for o in summary.outcomes} == {
            f"s{n}": "updated" for n in range(5)
        }
    assert sorted(s for batch in batches for s in batch) == [f"s{n}" for n in range(5)]
    assert max(len(batch) for batch in batches) == 2
    # Each source is heard of only once its batch is committed.
    assert stored_when_heard == {f"s{n}": 3 for n in range(5)}
    assert store.counts()["entries"] == 15


TRACKER_PROBE = """
import sys
from functools import partial
from pathlib import Path

from aggregator.polling.fetch.configured import fetcher_from_settings
from aggregator.polling.workers import PollWorkers
from aggregator.settings import Settings

if __name__ == "__main__":
    workers = PollWorkers(1, partial(fetcher_from_settings, Settings.from_env({})), {}, threads=1)
    workers.run([], lambda fetched: None)
    assert workers.pids()
    me = Path("/proc/self").resolve().name
    for process in Path("/proc").glob("[0-9]*"):
        try:
            parent = (process / "stat").read_text().rsplit(")", 1)[1].split()[1]
            command = (process / "cmdline").read_bytes().replace(b"\\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if parent == me:
            print(command)
    workers.close()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_poll_workers_start_no_resource_tracker(tmp_path: Path) -> None:
    """The fork server is the service's one extra process besides the workers: no
    multiprocessing resource tracker, which would have nothing to clean up."""
    script = tmp_path / "probe.py"
    script.write_text(TRACKER_PROBE)
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "forkserver" in out
    assert "resource_tracker" not in out

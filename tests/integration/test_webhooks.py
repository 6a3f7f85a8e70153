"""Webhooks on a real store (SQLite and PostgreSQL) to a real receiver on 127.0.0.1: which
changes become events, filters, signatures, retries with back-off, the delivery log, and the
address rules for targets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.catalog import load_catalog
from aggregator.clock import utc_now
from aggregator.clustering import ClusteringStage
from aggregator.delivery.detect import Detector
from aggregator.delivery.dispatcher import Dispatcher
from aggregator.delivery.sender import Sender
from aggregator.polling.fetch.poster import Poster
from aggregator.runtime.service import Service
from aggregator.store import Store
from aggregator.store.webhooks import NewEvent, StoryFacts
from aggregator.types import DeliveryState, EventKind, SourceHealth, Subscriber
from tests.support.browser import service_settings
from tests.support.builders import catalog, entry, fetched, match, source
from tests.support.feeds import write_config
from tests.support.receiver import FAIL, OK, SLOW, Receiver

SECRET = "s3cret-for-tests-0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(secret=SECRET)
    hook.start()
    yield hook
    hook.stop()


def _save(
    store: Store,
    source_id: str,
    *entries: tuple[str, str],
    category: str = "news",
    now: datetime | None = None,
) -> None:
    when = now or utc_now()
    store.save_poll(
        source_id,
        fetched(url=f"https://feeds.example/{source_id}.xml"),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[
            (entry(key, title=title, published_at=when, updated_at=when), [match(category)])
            for key, title in entries
        ],
        next_check_at=when + timedelta(minutes=30),
        now=when,
    )


def _sender(store: Store, clock: list[datetime], **options: float) -> Sender:
    poster = Poster(user_agent="test", timeout=options.pop("timeout", 1.0), allow_private=True)
    return Sender(
        store.webhooks,
        poster,
        now=lambda: clock[0],
        retry_seconds=options.pop("retry", 10.0),
        retry_max_seconds=options.pop("cap", 40.0),
        max_attempts=int(options.pop("attempts", 25)),
    )


def _subscribe(
    store: Store,
    url: str,
    ident: str = "site",
    *,
    categories: tuple[str, ...] = (),
    languages: tuple[str, ...] = (),
    events: tuple[str, ...] = (),
) -> None:
    assert store.webhooks.add_subscriber(
        Subscriber(
            id=ident,
            url=url,
            secret=SECRET,
            categories=categories,
            languages=languages,
            events=events,
        ),
        utc_now(),
    )


def _queue_one_story(store: Store, url: str) -> None:
    """One subscriber at ``url`` and one story published since the detector's first look:
    one delivery queued."""
    store.sync_sources(catalog(source("a")), utc_now())
    _subscribe(store, url)
    detector = Detector(store.webhooks)
    detector.run(utc_now())
    _save(store, "a", ("one", "Only story"))
    ClusteringStage(store, semantic=False).run()
    detector.run(utc_now())


def test_published_version_source_and_health_events_reach_a_signed_receiver(
    store: Store, receiver: Receiver
) -> None:
    store.sync_sources(catalog(source("a"), source("b"), categories=("news", "tech")), utc_now())
    _subscribe(store, receiver.url)
    detector = Detector(store.webhooks, health_every=timedelta(0))
    detector.run(utc_now())  # the first look starts the cursor: nothing older is replayed
    _save(store, "a", ("one", "Rates rise again"), ("two", "A quiet Tuesday"))
    ClusteringStage(store, semantic=False).run()
    assert detector.run(utc_now()) == 2
    assert detector.run(utc_now()) == 0  # looking again finds nothing new

    # The same story from another source (same link), and a new version of entry two.
    story_b = entry("one", title="Rates rise again", published_at=utc_now())
    store.save_poll(
        "b",
        fetched(url="https://feeds.example/b.xml"),
        body_hash=None,
        feed_title="B",
        feed_link=None,
        entries=[(story_b, [match("news")])],
        next_check_at=utc_now() + timedelta(hours=1),
        now=utc_now(),
    )
    edited = entry(
        "two",
        title="A quiet Tuesday",
        text="Rewritten body.",
        published_at=utc_now(),
        updated_at=utc_now() + timedelta(minutes=1),
    )
    store.save_poll(
        "a",
        fetched(url="https://feeds.example/a.xml", etag='"v2"'),
        body_hash=None,
        feed_title="Feed",
        feed_link=None,
        entries=[(edited, [match("news")])],
        next_check_at=utc_now() + timedelta(hours=1),
        now=utc_now(),
    )
    ClusteringStage(store, semantic=False).run()
    for _ in range(3):
        store.save_error(
            "b",
            message="HTTP 500",
            kind="http",
            status=500,
            now=utc_now(),
            next_check_at=utc_now() + timedelta(minutes=5),
        )
    detector.run(utc_now())

    clock = [utc_now()]
    assert _sender(store, clock).run() == 5
    kinds = sorted(r.kind for r in receiver.requests)
    assert kinds == sorted(
        [EventKind.STORY_PUBLISHED] * 2
        + [EventKind.STORY_SOURCE, EventKind.STORY_VERSION, EventKind.SOURCE_HEALTH]
    )
    assert all(r.signed for r in receiver.requests)
    health = next(r.body for r in receiver.requests if r.kind == EventKind.SOURCE_HEALTH)
    assert health["schema_version"] == 1
    assert health["data"]["health"] == SourceHealth.FAILING
    assert health["data"]["source"]["id"] == "b"
    published = [r.body for r in receiver.requests if r.kind == EventKind.STORY_PUBLISHED]
    assert {p["data"]["story"]["title"] for p in published} == {
        "Rates rise again",
        "A quiet Tuesday",
    }
    assert {p["data"]["category"] for p in published} == {"news"}
    log = store.webhooks.deliveries()
    assert {d.state for d in log} == {DeliveryState.DELIVERED}
    assert {d.event_key for d in log} == set(receiver.accepted())


def test_filters_choose_which_subscribers_get_an_event(store: Store, receiver: Receiver) -> None:
    store.sync_sources(
        catalog(source("a", categories=("news", "tech")), categories=("news", "tech")), utc_now()
    )
    _subscribe(store, receiver.url, "tech-only", categories=("tech",))
    _subscribe(store, receiver.url, "french", languages=("fr",))
    _subscribe(store, receiver.url, "health-only", events=(EventKind.SOURCE_HEALTH,))
    detector = Detector(store.webhooks)
    detector.run(utc_now())
    _save(store, "a", ("one", "Chips and more chips"), category="tech")
    ClusteringStage(store, semantic=False).run()
    detector.run(utc_now())
    assert {d.subscriber_id for d in store.webhooks.deliveries()} == {"tech-only"}


def test_failures_and_timeouts_retry_with_capped_backoff_until_delivered(
    store: Store, receiver: Receiver
) -> None:
    answers = [FAIL, SLOW, FAIL, FAIL, OK]
    receiver.script = lambda n: answers[n] if n < len(answers) else OK
    _queue_one_story(store, receiver.url)
    clock = [utc_now()]
    sender = _sender(store, clock, timeout=0.5, retry=10.0, cap=40.0)
    waits = []
    for _ in range(len(answers)):
        assert sender.run() == 1
        assert sender.run() == 0  # not due again before its back-off ends
        [row] = store.webhooks.deliveries()
        if row.state == DeliveryState.DELIVERED:
            break
        assert row.next_attempt_at is not None
        waits.append((row.next_attempt_at - clock[0]).total_seconds())
        clock[0] = row.next_attempt_at
    assert [round(w) for w in waits] == [10, 20, 40, 40]
    [row] = store.webhooks.deliveries()
    assert (row.state, row.attempts, row.last_status) == (DeliveryState.DELIVERED, 5, 200)
    # The slow answer was work done on the receiver's side: the repeat has the same key.
    assert receiver.accepted() == {row.event_key: 2}


def test_a_delivery_out_of_attempts_is_failed_and_can_be_sent_again(
    store: Store, receiver: Receiver
) -> None:
    receiver.script = lambda n: FAIL if n < 2 else OK
    _queue_one_story(store, receiver.url)
    clock = [utc_now()]
    sender = _sender(store, clock, attempts=2)
    sender.run()
    clock[0] += timedelta(hours=1)
    sender.run()
    [row] = store.webhooks.deliveries()
    assert (row.state, row.attempts, row.last_status) == (DeliveryState.FAILED, 2, 500)
    assert store.webhooks.retry(row.id, clock[0])
    assert sender.run() == 1
    assert store.webhooks.deliveries()[0].state == DeliveryState.DELIVERED


def test_a_target_on_a_private_address_is_refused_when_private_addresses_are_not_allowed(
    store: Store, receiver: Receiver
) -> None:
    _queue_one_story(store, receiver.url)
    poster = Poster(user_agent="test", timeout=1.0, allow_private=False)
    Sender(store.webhooks, poster).run()
    [row] = store.webhooks.deliveries()
    assert row.state == DeliveryState.PENDING
    assert row.last_status is None
    assert "loopback" in (row.last_error or "")
    assert receiver.requests == []


def test_editors_merge_split_and_hide_become_events_that_pass_category_filters(
    store: Store,
) -> None:
    store.sync_sources(catalog(source("a")), utc_now())
    _subscribe(store, "https://hooks.example/in", categories=("news",))
    detector = Detector(store.webhooks)
    detector.run(utc_now())
    _save(
        store,
        "a",
        ("one", "Harbour strike ends"),
        ("two", "Strike over at the harbour"),
        ("three", "Weather turns"),
    )
    ClusteringStage(store, semantic=False).run()
    detector.run(utc_now())
    ids = {s.representative.title: s.story_id for s in store.category_stories("news", 10)}
    kept = store.merge_stories(
        ids["Harbour strike ends"], ids["Strike over at the harbour"], by="mia", now=utc_now()
    )
    assert kept
    detail = store.story_detail(ids["Harbour strike ends"])
    assert detail is not None
    holder = detail.merged_into_id or detail.story_id
    moved = store.story_detail(holder)
    assert moved is not None
    store.split_entry(moved.entries[-1].entry_id, by="mia", now=utc_now(), note="not the same")
    store.hide_story(ids["Weather turns"], "news", by="mia", now=utc_now())
    detector.run(utc_now())
    kinds = [d.event_kind for d in store.webhooks.deliveries()]
    for kind in (EventKind.STORY_MERGED, EventKind.STORY_SPLIT, EventKind.STORY_HIDDEN):
        assert kinds.count(kind) == 1, kinds
    detector.run(utc_now())
    assert [d.event_kind for d in store.webhooks.deliveries()] == kinds


def test_a_broken_webhooks_file_on_reload_keeps_the_running_subscribers(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_SECRET", SECRET)
    config = write_config(
        tmp_path / "config",
        '[[source]]\nid = "a"\nurl = "https://a.example/f.xml"\ncategories = ["news"]\n',
        '[[category]]\nid = "news"\ntitle = "News"\n',
    )
    hooks = config / "webhooks.toml"
    hooks.write_text(
        '[[subscriber]]\nid = "partner"\nurl = "https://hooks.example/in"\n'
        'secret_env = "PARTNER_SECRET"\n',
        encoding="utf-8",
    )
    service = Service(service_settings("sqlite://"), sqlite_store, load_catalog(config))
    try:
        [before] = sqlite_store.webhooks.subscribers()
        hooks.write_text(
            hooks.read_text(encoding="utf-8").replace("https://", "gopher://"), encoding="utf-8"
        )
        service.reload_now()  # the catalog itself is fine: it is applied
        assert sqlite_store.webhooks.subscribers() == [before]
        hooks.write_text(
            hooks.read_text(encoding="utf-8").replace(
                "gopher://hooks.example/in", "https://hooks.example/v2"
            ),
            encoding="utf-8",
        )
        service.reload_now()
        [after] = sqlite_store.webhooks.subscribers()
        assert after.url == "https://hooks.example/v2"
    finally:
        service.close()


def test_the_delivery_log_forgets_finished_deliveries_past_its_age_and_keeps_pending_ones(
    store: Store,
) -> None:
    now = utc_now()
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    _subscribe(store, "https://hooks.example/one", "one")
    _subscribe(store, "https://hooks.example/two", "two")
    hooks = store.webhooks

    def event(key: str, at: datetime) -> None:
        assert (
            hooks.record([NewEvent(key=key, kind=EventKind.STORY_PUBLISHED, payload={})], {}, at)
            == 1
        )

    for key, at in (
        ("delivered", old),
        ("failed", old),
        ("pending", old),
        ("recent", recent),
        ("half", old),
    ):
        event(key, at)
    rows = {(row.event_key, row.subscriber_id): row.id for row in hooks.deliveries()}
    for (key, subscriber), delivery in rows.items():
        if key in ("delivered", "recent") or (key == "half" and subscriber == "one"):
            hooks.finish(delivery, now=now, delivered=True, status=200, error=None, retry_at=None)
        elif key == "failed":
            hooks.finish(
                delivery, now=now, delivered=False, status=500, error="boom", retry_at=None
            )

    assert hooks.forget(now - timedelta(days=30), limit=3) == 3
    assert hooks.forget(now - timedelta(days=30)) == 2
    assert hooks.forget(now - timedelta(days=30)) == 0
    left = sorted((row.event_key, row.subscriber_id, row.state) for row in hooks.deliveries())
    assert left == [
        ("half", "two", DeliveryState.PENDING),
        ("pending", "one", DeliveryState.PENDING),
        ("pending", "two", DeliveryState.PENDING),
        ("recent", "one", DeliveryState.DELIVERED),
        ("recent", "two", DeliveryState.DELIVERED),
    ]
    # The events left without deliveries are gone; those still owed or recent stay.
    kept = {row.event_key for row in hooks.deliveries()}
    event("delivered", now)  # its key is free again: the old event was forgotten
    assert not hooks.record(
        [NewEvent(key="pending", kind=EventKind.STORY_PUBLISHED, payload={})], {}, now
    )
    assert kept == {"half", "pending", "recent"}


def test_the_webhook_loop_trims_its_log_at_most_once_an_hour(store: Store) -> None:
    _subscribe(store, "https://hooks.example/one", "one")
    long_ago = utc_now() - timedelta(days=60)
    for n in range(3):
        store.webhooks.record(
            [NewEvent(key=f"k{n}", kind=EventKind.STORY_PUBLISHED, payload={})], {}, long_ago
        )
    for row in store.webhooks.deliveries():
        store.webhooks.finish(
            row.id, now=long_ago, delivered=True, status=200, error=None, retry_at=None
        )
    clock = [utc_now()]
    dispatcher = Dispatcher(
        Detector(store.webhooks), _sender(store, clock), interval=60, log_days=30
    )
    store.webhooks.record(
        [NewEvent(key="k9", kind=EventKind.STORY_PUBLISHED, payload={})], {}, long_ago
    )
    assert dispatcher.forget(clock[0]) == 3
    [row] = store.webhooks.deliveries()
    store.webhooks.finish(
        row.id, now=long_ago, delivered=True, status=200, error=None, retry_at=None
    )
    assert dispatcher.forget(clock[0] + timedelta(minutes=30)) == 0
    assert dispatcher.forget(clock[0] + timedelta(minutes=61)) == 1
    assert (
        Dispatcher(Detector(store.webhooks), _sender(store, clock), interval=60, log_days=0).forget(
            clock[0] + timedelta(days=9)
        )
        == 0
    )


def test_changed_stories_are_read_and_recorded_a_chunk_at_a_time(
    store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aggregator.delivery.detect.STORY_CHUNK", 2)
    store.sync_sources(catalog(source("a")), utc_now())
    _subscribe(store, receiver.url)
    detector = Detector(store.webhooks)
    detector.run(utc_now())
    _save(store, "a", *((f"k{i}", f"Story number {i} of five") for i in range(5)))
    ClusteringStage(store, semantic=False).run()
    read: list[int] = []
    real = detector.hooks.story_facts

    def noted(ids: Sequence[int]) -> dict[int, StoryFacts]:
        read.append(len(ids))
        return real(ids)

    monkeypatch.setattr(detector.hooks, "story_facts", noted)
    # Five stories in chunks of two: every one published once, the count over all chunks.
    assert detector.run(utc_now()) == 5
    assert max(read) <= 2
    assert detector.run(utc_now()) == 0
    assert len(store.webhooks.deliveries()) == 5


def test_a_change_committed_minutes_after_its_own_time_is_found_by_the_next_full_look(
    store: Store, receiver: Receiver
) -> None:
    store.sync_sources(catalog(source("a")), utc_now())
    _subscribe(store, receiver.url)
    detector = Detector(store.webhooks)
    start = utc_now()
    detector.run(start)
    # A full look (two minutes on) moves the cursor past what is committed next, whose
    # entries carry times three minutes before it: a late commit, as from another worker.
    assert detector.run(start + timedelta(minutes=3)) == 0
    _save(store, "a", ("late", "Committed after the cursor passed its time"))
    ClusteringStage(store, semantic=False).run()
    # A look between full ones reads back 30 seconds only; the next full one finds it.
    assert detector.run(start + timedelta(minutes=3, seconds=5)) == 0
    assert detector.run(start + timedelta(minutes=4)) == 0
    assert detector.run(start + timedelta(minutes=5, seconds=5)) == 1
    assert [d.event_kind for d in store.webhooks.deliveries()] == [EventKind.STORY_PUBLISHED]
    assert detector.run(start + timedelta(minutes=7, seconds=10)) == 0


def test_the_look_at_merges_reads_only_merged_stories_through_their_index(
    sqlite_store: Store,
) -> None:
    """``merged_since`` runs at every look: it must not read every story (issue 19)."""
    statements: list[tuple[str, object]] = []

    def noted(
        _conn: object,
        _cursor: object,
        statement: str,
        parameters: object,
        _context: object,
        _many: bool,
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    engine = sqlite_store.webhooks.engine
    sa.event.listen(engine, "before_cursor_execute", noted)
    try:
        assert sqlite_store.webhooks.merged_since(utc_now() - timedelta(minutes=10)) == []
    finally:
        sa.event.remove(engine, "before_cursor_execute", noted)
    [(statement, parameters)] = statements
    with engine.connect() as connection:
        plan = " / ".join(
            row[-1]
            for row in connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement,
                parameters,  # type: ignore[arg-type]
            )
        )
    assert "ix_stories_merged_at" in plan, plan
    assert "SCAN stories" not in plan, plan


def test_source_health_is_read_a_page_at_a_time_and_finds_every_failing_source(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"s{n:02d}" for n in range(7)]
    store.sync_sources(catalog(*(source(i) for i in ids)), utc_now())
    store.sync_sources(catalog(*(source(i) for i in ids if i != "s03")), utc_now())  # removed
    for source_id in ("s00", "s02", "s06"):
        _save(store, source_id, ("one", f"News from {source_id}"), ("two", "More"))
    whole = store.webhooks.source_facts()
    assert [s.id for s in whole] == [i for i in ids if i != "s03"]
    pages, after = [], ""
    while page := store.webhooks.source_facts(after, 2):
        pages.append(page)
        after = page[-1].id
    assert [len(p) for p in pages] == [2, 2, 2]
    assert [s for p in pages for s in p] == whole
    assert {s.id: s.entries for s in whole} == {
        "s00": 2,
        "s01": 0,
        "s02": 2,
        "s04": 0,
        "s05": 0,
        "s06": 2,
    }

    _subscribe(store, "https://hooks.example/in", events=(EventKind.SOURCE_HEALTH,))
    monkeypatch.setattr("aggregator.delivery.detect.SOURCE_CHUNK", 2)
    detector = Detector(store.webhooks, health_every=timedelta(0))
    detector.run(utc_now())
    for source_id in ("s01", "s05", "s06"):  # on the first, third and last page
        for _ in range(3):
            store.save_error(
                source_id,
                message="HTTP 500",
                kind="http",
                status=500,
                now=utc_now(),
                next_check_at=utc_now() + timedelta(minutes=5),
            )
    assert detector.run(utc_now()) == 3
    assert detector.run(utc_now()) == 0
    assert sorted(h.source_id for h in store.webhooks.health_alerts()) == ["s01", "s05", "s06"]

"""What workers sharing one PostgreSQL database coordinate through it: source claims and leases,
one host per worker at a time, Retry-After holds, write-time story locks, one clustering stage
at a time with no entry decided twice, and outputs announced once per change with the same
bytes whichever worker renders them.

Each "worker" here is a ``Store`` of its own (its own engine, its own connections), as a process
would have; SQLite keeps the single-process path and refuses to claim.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aggregator.catalog import Catalog, CategoryConfig
from aggregator.clustering import ClusteringStage, Models
from aggregator.errors import StoreError
from aggregator.publishing.outputs import Outputs
from aggregator.store import Store, open_store
from aggregator.store.entries import write_entries
from aggregator.store.leases import lock_story_keys
from aggregator.types import NormalizedEntry
from tests.support import databases
from tests.support.builders import NOW, catalog, entry, fetched, match, settle, source
from tests.support.stories import (
    AI_ACT_DE,
    AI_ACT_EN,
    AI_ACT_FR,
    DAY0,
    FERRY_EN,
    FERRY_FR,
    KOREA_EN,
    RAIL_EN,
    STAGE_NOW,
)

pytestmark = pytest.mark.postgres
LEASE = 60.0


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    with databases.fresh_postgres(template=pg_template) as url:
        yield url


@pytest.fixture
def workers(pg_url: str) -> Iterator[list[Store]]:
    """Three stores on one database: three workers."""
    stores = [open_store(pg_url) for _ in range(3)]
    yield stores
    for store in stores:
        store.close()


def _sources(store: Store, hosts: dict[str, int]) -> None:
    """``hosts``: host → how many sources it serves (ids host-n)."""
    configs = [
        source(f"{host}-{n}", url=f"https://{host}.example/{n}.xml")
        for host, count in hosts.items()
        for n in range(count)
    ]
    store.sync_sources(catalog(*configs), NOW)


def _claim(
    store: Store, owner: str, *, limit: int = 100, per_host: int = 100, now: Any = NOW
) -> list[str]:
    claimed, _ = store.claim_sources(
        owner, now, lease_seconds=LEASE, limit=limit, per_host=per_host
    )
    return [s.id for s in claimed]


def _save(store: Store, source_id: str, owner: str | None, *keys: str, now: Any = NOW) -> str:
    outcome = store.save_poll(
        source_id,
        fetched(),
        body_hash=None,
        feed_title="F",
        feed_link=None,
        entries=[(entry(f"{source_id}-{k}"), [match("news")]) for k in keys],
        next_check_at=now + timedelta(minutes=30),
        now=now,
        owner=owner,
    )
    return outcome.result


def _rows(store: Store, query: str, **params: Any) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.text(query), params))


def test_claims_are_disjoint_and_a_lease_blocks_others_until_it_ends(workers: list[Store]) -> None:
    a, b, _ = workers
    _sources(a, {"h1": 3, "h2": 3})
    first = _claim(a, "A", limit=3)
    assert first == ["h1-0", "h1-1", "h1-2"]  # a host whole, in due order
    second = _claim(b, "B")
    assert second == ["h2-0", "h2-1", "h2-2"]
    assert _claim(b, "B") == []
    assert _claim(workers[2], "C") == []
    # Saving ends the lease and moves the source on; the rest stay leased to A.
    assert _save(a, "h1-0", "A", "x") == "updated"
    for source_id in second:
        assert _save(b, source_id, "B", "x") == "updated"
    assert dict(_rows(a, "SELECT id, lease_owner FROM sources WHERE id LIKE 'h1-%'")) == {
        "h1-0": None,
        "h1-1": "A",
        "h1-2": "A",
    }
    # A's lease ends (A died): B takes what A did not save, and A's late save is dropped.
    later = NOW + timedelta(seconds=LEASE + 1)
    assert _claim(b, "B", now=later) == ["h1-1", "h1-2"]
    assert _save(b, "h1-1", "B", "fresh", now=later) == "updated"
    assert _save(a, "h1-1", "A", "stale") == "lease_lost"
    assert _save(a, "h1-2", "A", "stale") == "lease_lost"
    keys = {k for (k,) in _rows(a, "SELECT identity_key FROM entries WHERE source_id='h1-1'")}
    assert keys == {"guid:h1-1-fresh"}
    assert _rows(a, "SELECT lease_owner FROM sources WHERE id = 'h1-2'") == [("B",)]


def test_a_host_is_one_workers_at_a_time(workers: list[Store]) -> None:
    a, b, c = workers
    _sources(a, {"big": 6, "small": 2})
    # A takes part of the big host: the rest waits for A, whoever asks.
    assert _claim(a, "A", limit=2) == ["big-0", "big-1"]
    claimed, waiting = b.claim_sources("B", NOW, lease_seconds=LEASE, limit=100, per_host=100)
    assert [s.id for s in claimed] == ["small-0", "small-1"]
    assert waiting == 4
    assert c.claim_sources("C", NOW, lease_seconds=LEASE, limit=100, per_host=100) == ([], 4)
    # A may take more of its own host; once A let go of it, another worker may.
    assert _claim(a, "A", limit=1) == ["big-2"]
    assert a.release_leases("A") == 3
    assert _claim(c, "C", per_host=2) == ["big-0", "big-1"]


def test_concurrent_claims_split_every_source_once_and_never_share_a_host(
    workers: list[Store], pg_url: str
) -> None:
    more = [open_store(pg_url) for _ in range(3)]
    stores = [*workers, *more]
    try:
        _sources(stores[0], {f"h{n}": 20 for n in range(30)})
        taken: dict[str, list[str]] = {}
        start = threading.Barrier(len(stores))

        def work(index: int) -> None:
            owner = f"W{index}"
            mine: list[str] = []
            start.wait()
            while True:
                ids = _claim(stores[index], owner, limit=25, per_host=10)
                if not ids:
                    break
                mine += ids
                # Keep what was claimed leased: every claim must avoid it.
            taken[owner] = mine

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        every = [s for ids in taken.values() for s in ids]
        assert sorted(every) == sorted(f"h{n}-{i}" for n in range(30) for i in range(20))
        owners_of_host: dict[str, set[str]] = {}
        for owner, ids in taken.items():
            for source_id in ids:
                owners_of_host.setdefault(source_id.split("-")[0], set()).add(owner)
        assert all(len(owners) == 1 for owners in owners_of_host.values()), owners_of_host
        assert len(taken) == len(stores)
    finally:
        for store in more:
            store.close()


def test_renewal_keeps_a_lease_and_release_gives_it_back(workers: list[Store]) -> None:
    a, b, _ = workers
    _sources(a, {"h1": 2})
    assert _claim(a, "A") == ["h1-0", "h1-1"]
    assert a.renew_leases("A", NOW + timedelta(seconds=LEASE - 1), LEASE) == 2
    # Past the first lease's end, the renewed one still holds.
    assert _claim(b, "B", now=NOW + timedelta(seconds=LEASE + 1)) == []
    assert a.release_leases("A", ["h1-1"]) == 1
    assert _claim(b, "B", now=NOW + timedelta(seconds=LEASE + 1)) == []  # host still A's
    assert a.release_leases("A") == 1
    assert _claim(b, "B", now=NOW + timedelta(seconds=LEASE + 1)) == ["h1-0", "h1-1"]
    assert a.live_leases(NOW + timedelta(seconds=LEASE + 1)) == {"B": 2}


def test_a_retry_after_holds_the_host_for_every_worker(workers: list[Store]) -> None:
    a, b, _ = workers
    _sources(a, {"slowdown": 2, "fine": 1})
    a.hold_host("slowdown.example", NOW + timedelta(minutes=15), "HTTP 429")
    assert _claim(b, "B") == ["fine-0"]
    assert b.claim_sources("B", NOW, lease_seconds=LEASE, limit=10, per_host=10) == ([], 0)
    _save(b, "fine-0", "B", "x")
    later = NOW + timedelta(minutes=16)  # fine-0 is due again at 30 minutes
    assert _claim(b, "B", now=later) == ["slowdown-0", "slowdown-1"]


def test_not_modified_batch_saves_only_the_sources_still_leased(workers: list[Store]) -> None:
    a, b, _ = workers
    _sources(a, {"h1": 2})
    assert _claim(a, "A") == ["h1-0", "h1-1"]
    # A stalled past its lease on h1-1 only (as if it had renewed the other) and B took it.
    with b.engine.begin() as connection:
        connection.execute(sa.text("UPDATE sources SET lease_owner = 'B' WHERE id = 'h1-1'"))
    due = NOW + timedelta(hours=1)
    a.save_not_modified_many(
        [(i, fetched(status=304, content=None), due, NOW) for i in ("h1-0", "h1-1")], owner="A"
    )
    rows = dict(_rows(a, "SELECT id, lease_owner FROM sources"))
    assert rows == {"h1-0": None, "h1-1": "B"}
    checked = dict(_rows(a, "SELECT id, last_checked_at IS NOT NULL FROM sources"))
    assert checked == {"h1-0": True, "h1-1": False}


def test_sqlite_keeps_the_single_process_path(tmp_path: Path) -> None:
    from aggregator.store import upgrade

    store = open_store(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        upgrade(store.engine)
        assert not store.supports_leases
        with pytest.raises(StoreError, match="PostgreSQL"):
            store.claim_sources("A", NOW, lease_seconds=LEASE, limit=1, per_host=1)
    finally:
        store.close()


def test_two_workers_storing_copies_of_one_story_at_once_make_one_story(
    workers: list[Store],
) -> None:
    a, b, _ = workers
    a.sync_sources(catalog(source("wire"), source("paper")), NOW)
    shared_url = "https://news.example/the-story"
    blocked = threading.Event()
    with a.engine.connect() as connection:
        # Worker A is half-way through storing its copy: locks taken, rows written, not
        # committed.
        lock_story_keys(connection, [shared_url], [])
        write_entries(connection, "wire", [(entry("w1", url=shared_url), [match("news")])], NOW)

        def other() -> None:
            _save_one(b, "paper", entry("p1", url=shared_url, text="Another telling."))
            blocked.set()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "B did not wait for A's transaction"
        connection.commit()
    thread.join(10)
    assert blocked.is_set()
    stories = _rows(a, "SELECT source_id, story_id, story_signal FROM entries ORDER BY id")
    assert len({story for _, story, _ in stories}) == 1, stories
    assert [signal for _, _, signal in stories] == ["new", "url"]


def _save_one(store: Store, source_id: str, item: NormalizedEntry) -> None:
    store.save_poll(
        source_id,
        fetched(),
        body_hash=None,
        feed_title="F",
        feed_link=None,
        entries=[(item, [match("news")])],
        next_check_at=NOW,
        now=NOW,
    )


# -- clustering: one stage at a time, every entry decided once ----------------------------------


def _news(item: dict[str, str]) -> NormalizedEntry:
    from email.utils import parsedate_to_datetime

    published = parsedate_to_datetime(item["date"])
    return entry(
        item["guid"],
        title=item["title"],
        text=item["body"],
        url=item["link"],
        link=item["link"],
        language=None,
        published_at=published,
        updated_at=published,
    )


EVENTS = {
    "ai": (AI_ACT_EN, AI_ACT_FR, AI_ACT_DE),
    "ferry": (FERRY_EN, FERRY_FR),
    "rail": (RAIL_EN,),
    "korea": (KOREA_EN,),
}


class RecordingStage(ClusteringStage):
    def __init__(self, *args: Any, decided: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decided = decided

    def on_decided(self, entry_id: int) -> None:
        self.decided.append(entry_id)


def test_two_clustering_stages_at_once_never_split_a_story_nor_decide_an_entry_twice(
    workers: list[Store], models: Models
) -> None:
    a, b, _ = workers
    items = [item for group in EVENTS.values() for item in group]
    a.sync_sources(catalog(*(source(i["guid"]) for i in items)), NOW)
    for item in items:
        _save_one(a, item["guid"], _news(item))
    decided: dict[str, list[int]] = {"a": [], "b": []}
    stages = {
        name: RecordingStage(
            store,
            models=models,
            clock=lambda: STAGE_NOW,
            max_age=timedelta(days=7),
            batch_size=2,
            decided=decided[name],
        )
        for name, store in (("a", a), ("b", b))
    }
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(stage: ClusteringStage) -> None:
        # Batch by batch, side by side: the batches, not the turn, must keep this right.
        start.wait()
        try:
            while stage.run_batch() is not None:
                pass
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stages.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    both = decided["a"] + decided["b"]
    assert len(both) == len(set(both)) == len(items)
    story_of = dict(_rows(a, "SELECT guid, story_id FROM entries"))
    partition = {frozenset(i["guid"] for i in group) for group in EVENTS.values()}
    found: dict[int, set[str]] = {}
    for guid, story in story_of.items():
        found.setdefault(story, set()).add(guid)
    assert {frozenset(g) for g in found.values()} == partition
    assert _rows(a, "SELECT count(*) FROM entries WHERE clustered_at IS NULL") == [(0,)]


def test_the_stage_skips_while_another_worker_has_the_turn(
    workers: list[Store], models: Models
) -> None:
    a, b, _ = workers
    a.sync_sources(catalog(source("wire")), NOW)
    _save_one(a, "wire", _news(RAIL_EN))
    with a.clustering_turn() as mine:
        assert mine
        summary = ClusteringStage(b, models=models, semantic=False).run()
        assert summary.skipped
        assert summary.entries == 0
    summary = ClusteringStage(b, models=models, semantic=False).run()
    assert (summary.skipped, summary.entries) == (False, 1)


# -- outputs: any worker renders the same bytes, one of them announces a change ---------------


def test_outputs_from_two_workers_are_byte_identical_and_a_change_is_announced_once(
    workers: list[Store], tmp_path: Path
) -> None:
    a, b, _ = workers
    categories = Catalog(
        sources=(), categories=(CategoryConfig(id="news", title="News", languages=("en",)),)
    )
    a.sync_sources(catalog(source("wire")), NOW)
    announced: list[tuple[str, list[str]]] = []

    def outputs(name: str, store: Store) -> Outputs:
        return Outputs(
            store=store,
            catalog=categories,
            base_url="https://agg.example",
            tag_authority="agg.example",
            feed_size=3,
            archive_dir=tmp_path / "archives",
            on_change=lambda urls: announced.append((name, urls)),
        )

    first, second = outputs("a", a), outputs("b", b)
    for n in range(4):
        _save_one(a, "wire", _dated(n))
    settle(a)
    assert (first.refresh(), second.refresh()) == ([], [])  # first looks: nothing to compare
    for n in range(4, 10):
        _save_one(a, "wire", _dated(n))
        settle(a)
        # The workers take turns seeing the change first; the other sees it too, later.
        early, late = (first, second) if n % 2 else (second, first)
        assert early.refresh(), f"change {n} went unnoticed"
        assert late.refresh() == [], f"change {n} was announced twice"
    assert [name for name, _ in announced] == ["b", "a", "b", "a", "b", "a"]
    documents = dict(first.all_documents())
    others = dict(second.all_documents())
    assert documents.keys() == others.keys()
    assert any("/archive/" in path for path in documents)
    for path, document in documents.items():
        assert others[path].body == document.body, path


def _dated(n: int) -> NormalizedEntry:
    moment = DAY0 + timedelta(hours=n)
    return entry(f"e{n}", published_at=moment, updated_at=moment)


def test_a_dead_workers_claims_on_this_machine_are_released_at_once(workers: list[Store]) -> None:
    import os
    import subprocess

    a, b, _ = workers
    _sources(a, {"h1": 2, "h2": 2})
    finished = subprocess.Popen(["true"])
    finished.wait()
    here, elsewhere = f"box:{finished.pid}:aa", f"other:{finished.pid}:bb"
    assert _claim(a, here, per_host=2, limit=2) == ["h1-0", "h1-1"]
    assert _claim(a, elsewhere, per_host=2, limit=2) == ["h2-0", "h2-1"]
    # A live worker of the same machine frees the dead one's claims; the other machine's
    # wait for their end.
    assert _claim(b, f"box:{os.getpid()}:cc") == ["h1-0", "h1-1"]
    assert _rows(a, "SELECT DISTINCT lease_owner FROM sources WHERE id LIKE 'h2-%'") == [
        (elsewhere,)
    ]


def test_sources_sharing_a_url_are_claimed_together(workers: list[Store]) -> None:
    a, b, _ = workers
    shared = "https://one.example/feed.xml"
    configs = [source(f"copy-{n}", url=shared) for n in range(4)]
    configs.append(source("other", url="https://one.example/other.xml"))
    a.sync_sources(catalog(*configs), NOW)
    # per_host counts URLs (fetches), not sources: all four copies come with one claim.
    assert _claim(a, "A", per_host=1, limit=2) == [f"copy-{n}" for n in range(4)]
    assert _claim(b, "B") == []  # the host is A's while it holds the copies
    assert _claim(a, "A", per_host=1) == ["other"]

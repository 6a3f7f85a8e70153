"""The scheduler's side of many workers: a failed tick backs off (1, 2, 4… s, at most a
minute) and a working one starts afresh; retention runs as a daily job only when it is on; a
claim takes whole hosts within their politeness budget; a lease must outlast a fetch; the
full-text stage gets a job of its own, and so does handing the heap's freed pages back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.catalog import Catalog
from aggregator.errors import ConfigError
from aggregator.polling.claiming import CLAIM_BATCH, HOST_BATCH_SECONDS, per_host_limit
from aggregator.polling.fetch import Fetcher
from aggregator.polling.fulltext import FullTextStage
from aggregator.polling.hosts import HostGate
from aggregator.polling.poller import Refresher
from aggregator.runtime import heap
from aggregator.runtime.scheduler import (
    FULL_TEXT_JOB_ID,
    FULL_TEXT_SECONDS,
    HEAP_JOB_ID,
    HEAP_SECONDS,
    PRUNE_JOB_ID,
    PRUNE_SECONDS,
    Backoff,
    build_scheduler,
)
from aggregator.runtime.service import make_lease
from aggregator.settings import Settings
from aggregator.store import open_store


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_its_ceiling_and_resets_on_success() -> None:
    clock = Clock()
    backoff = Backoff(first=1, most=5, clock=clock)
    assert backoff.ready()
    delays = []
    for _ in range(5):
        delays.append(backoff.failed())
        assert not backoff.ready()
        clock.now += delays[-1]
        assert backoff.ready()
    assert delays == [1, 2, 4, 5, 5]
    backoff.succeeded()
    assert backoff.failed() == 1


def test_retention_is_a_daily_job_only_when_it_is_on(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    fetcher = Fetcher(user_agent="test")
    refresher = Refresher(store=store, fetcher=fetcher, catalog=Catalog((), ()), workers=1)
    try:
        off = build_scheduler(lambda: refresher, 60)
        assert off.get_job(PRUNE_JOB_ID) is None
        on = build_scheduler(lambda: refresher, 60, retention_days=30)
        job = on.get_job(PRUNE_JOB_ID)
        assert job is not None
        assert job.trigger.interval == timedelta(seconds=PRUNE_SECONDS) == timedelta(days=1)
        assert job.args[1] == 30
    finally:
        refresher.close()
        fetcher.close()
        store.close()


def test_the_service_hands_freed_heap_pages_back_every_few_seconds(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    fetcher = Fetcher(user_agent="test")
    refresher = Refresher(store=store, fetcher=fetcher, catalog=Catalog((), ()), workers=1)
    try:
        job = build_scheduler(lambda: refresher, 60).get_job(HEAP_JOB_ID)
        assert job is not None
        assert job.func is heap.give_back
        assert job.trigger.interval == timedelta(seconds=HEAP_SECONDS)
        assert job.max_instances == 1
    finally:
        refresher.close()
        fetcher.close()
        store.close()


def test_full_text_is_a_job_of_its_own_when_the_service_has_the_stage(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    fetcher = Fetcher(user_agent="test")
    catalog = Catalog((), ())
    refresher = Refresher(store=store, fetcher=fetcher, catalog=catalog, workers=1)
    try:
        assert build_scheduler(lambda: refresher, 60).get_job(FULL_TEXT_JOB_ID) is None
        stage = FullTextStage(store, fetcher, catalog)
        job = build_scheduler(lambda: refresher, 60, full_text_stage=stage).get_job(
            FULL_TEXT_JOB_ID
        )
        assert job is not None
        assert job.trigger.interval == timedelta(seconds=FULL_TEXT_SECONDS)
        assert job.args == (stage,)
        assert job.max_instances == 1
    finally:
        refresher.close()
        fetcher.close()
        store.close()


def test_a_claim_takes_of_one_host_what_its_politeness_allows_in_a_while() -> None:
    def limit(delay: float, concurrency: int = 2) -> int:
        fetcher = Fetcher(user_agent="test", gate=HostGate(concurrency, delay))
        try:
            return per_host_limit(fetcher)
        finally:
            fetcher.close()

    assert limit(0) == CLAIM_BATCH
    assert limit(0.25) == int(HOST_BATCH_SECONDS / 0.25)
    assert limit(60, concurrency=3) == 3


def test_a_lease_must_outlast_a_fetch() -> None:
    settings = Settings.from_env(
        {"AGGREGATOR_LEASE_SECONDS": "30", "AGGREGATOR_FETCH_DEADLINE": "60"}
    )
    with pytest.raises(ConfigError, match="AGGREGATOR_LEASE_SECONDS"):
        make_lease(settings)
    lease = make_lease(settings.with_overrides(lease_seconds=61.0, worker_name="box-a"))
    machine, pid, token = lease.owner.split(":")
    assert (machine, pid.isdigit(), len(token), lease.seconds) == ("box-a", True, 8, 61.0)

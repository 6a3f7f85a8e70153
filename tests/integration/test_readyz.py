"""/readyz (issue 8, acceptance 3): unready while PostgreSQL is down, ready again when it is
back; unready when sources are overdue past the limit or the scheduler stopped ticking; the
answer names the failed check. The PostgreSQL here is a throwaway cluster of the test's own:
the shared server on 5432 is never stopped."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.metrics import Metrics
from aggregator.runtime.service import make_outputs
from aggregator.settings import Settings
from aggregator.store import Store, open_store, upgrade
from aggregator.web import create_app
from aggregator.web.health import TICK_GRACE, Readiness, lag_check, scheduler_check
from tests.support.pgcluster import throwaway_cluster
from tests.support.webserver import serve_app

CATALOG = Catalog(
    sources=(SourceConfig(id="s", url="https://feeds.example/s.xml", categories=("news",)),),
    categories=(CategoryConfig(id="news", title="News"),),
)
# No output watcher: it would only log the outage in the background.
SETTINGS = replace(Settings.from_env({}), feed_recheck_seconds=0)


def ready(base: str) -> tuple[int, dict[str, Any]]:
    response = requests.get(f"{base}/readyz", timeout=30)
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, response.json()


def serve(store: Store, readiness: Readiness) -> Any:
    app = create_app(
        store=store, outputs=make_outputs(SETTINGS, store, CATALOG), readiness=readiness
    )
    return serve_app(app)


@pytest.mark.postgres
def test_unready_while_postgresql_is_down_and_ready_when_it_returns() -> None:
    with throwaway_cluster() as cluster:
        store = open_store(cluster.url)
        upgrade(store.engine)
        store.sync_sources(CATALOG, datetime.now(UTC) + timedelta(hours=1))
        readiness = Readiness(store, max_lag_seconds=3600)
        try:
            with serve(store, readiness) as base:
                assert ready(base) == (
                    200,
                    {
                        "status": "ready",
                        "failed": [],
                        "checks": {
                            "database": {"ok": True, "detail": "answered"},
                            "lag": {"ok": True, "detail": "the most overdue source is 0 s late"},
                        },
                    },
                )
                cluster.stop()
                status, body = ready(base)
                assert status == 503
                assert body["status"] == "unready"
                assert body["failed"] == ["database", "lag"]
                assert "database unreachable" in body["checks"]["database"]["detail"]
                # Liveness does not depend on the database.
                assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
                cluster.start()
                status, body = ready(base)
                assert (status, body["failed"]) == (200, [])
        finally:
            readiness.close()
            store.close()


def test_unready_when_sources_are_overdue_past_the_limit(sqlite_store: Store) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    sqlite_store.sync_sources(CATALOG, now - timedelta(hours=2))  # due two hours ago
    strict = Readiness(sqlite_store, max_lag_seconds=3600, clock=lambda: now)
    lenient = Readiness(sqlite_store, max_lag_seconds=3 * 3600, clock=lambda: now)
    try:
        with serve(sqlite_store, strict) as base:
            status, body = ready(base)
        assert (status, body["failed"]) == (503, ["lag"])
        assert body["checks"]["lag"]["detail"] == (
            "the most overdue source is 7200 s late (limit 3600 s)"
        )
        assert lenient.check().ready
    finally:
        strict.close()
        lenient.close()


def test_the_scheduler_heartbeat(sqlite_store: Store) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    metrics = Metrics()
    clock = [now]
    readiness = Readiness(sqlite_store, metrics=metrics, tick_seconds=60, clock=lambda: clock[0])
    try:
        report = readiness.check()
        assert report.as_json()["failed"] == ["scheduler"]
        assert report.checks["scheduler"].detail == "no tick has started yet"
        metrics.tick_started(now)
        clock[0] = now + timedelta(hours=1)  # a long poll: still running, still ticking
        assert readiness.check().ready
        metrics.tick_finished()
        report = readiness.check()
        assert report.as_json()["failed"] == ["scheduler"]
        assert report.checks["scheduler"].detail == "last tick started 3600 s ago (limit 180 s)"
    finally:
        readiness.close()


def test_scheduler_and_lag_checks_take_now() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    limit = TICK_GRACE * 60
    assert scheduler_check(now - timedelta(seconds=limit), False, now, 60).ok
    assert not scheduler_check(now - timedelta(seconds=limit + 1), False, now, 60).ok
    assert scheduler_check(None, True, now, 60).ok
    assert lag_check(None, now, 10).ok
    assert lag_check(now - timedelta(seconds=10), now, 10).ok
    assert not lag_check(now - timedelta(seconds=11), now, 10).ok
    assert lag_check(now - timedelta(days=9), now, 0).ok  # 0: lag never makes it unready


def test_a_tick_beats_the_heartbeat(sqlite_store: Store) -> None:
    from aggregator.polling.poller import Refresher
    from aggregator.runtime.scheduler import tick
    from aggregator.runtime.service import make_fetcher

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    sqlite_store.sync_sources(CATALOG, now + timedelta(hours=1))  # nothing due: no fetch
    metrics = Metrics()
    fetcher = make_fetcher(SETTINGS, now=lambda: now)
    refresher = Refresher(
        store=sqlite_store, fetcher=fetcher, catalog=CATALOG, workers=1, clock=lambda: now
    )
    try:
        assert metrics.heartbeat() == (None, False)
        assert tick(refresher, metrics) is None
        assert metrics.heartbeat() == (now, False)
        assert (
            metrics.registry.get_sample_value("aggregator_scheduler_last_tick_timestamp_seconds")
            == now.timestamp()
        )
    finally:
        refresher.close()
        fetcher.close()

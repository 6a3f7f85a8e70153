"""Issue 7, acceptance 3: PostgreSQL restarts while two workers poll.

The database is a throwaway cluster of the test's own (``pgcluster``: initdb and pg_ctl on a
free port; the shared server on 5432 is never touched). The workers log the outage, retry with
back-off and carry on; in the end the store holds exactly what a run without the restart
stores (compared with a single ``aggregator poll`` of the same feeds into another database).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregator.store import open_store, upgrade
from tests.support.feedfarm import FeedFarm, feed_farm, sources_toml
from tests.support.feeds import aggregator, write_config
from tests.support.pgcluster import Cluster, throwaway_cluster
from tests.support.workers import SharedStore, running_workers, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SOURCES = 300
ITEMS = 3
HOSTS = 10
OUTAGE_SECONDS = 2.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as started:
        yield started


def _database(cluster: Cluster, name: str) -> str:
    admin = SharedStore(cluster.url)
    try:
        with admin.store.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    url = cluster.url.rsplit("/", 1)[0] + f"/{name}"
    store = open_store(url)
    try:
        upgrade(store.engine)
    finally:
        store.close()
    return url


def _snapshot(database: str) -> dict[str, Any]:
    """The store, without what differs from run to run (ids, times)."""
    db = SharedStore(database)
    try:
        sources = db.rows(
            "SELECT id, url, state, etag, body_hash, error_count, last_status, "
            "last_new_entries, lease_owner FROM sources ORDER BY id"
        )
        # Not the story signal: which copy of a shared story founded it depends on which
        # worker saved first, in any run; the stories themselves are compared below.
        entries = db.rows(
            "SELECT source_id, identity_key, title, url, content_hash "
            "FROM entries ORDER BY source_id, identity_key"
        )
        stories: dict[int, set[str]] = {}
        for story, source_id, key in db.rows(
            "SELECT story_id, source_id, identity_key FROM entries"
        ):
            stories.setdefault(story, set()).add(f"{source_id}/{key}")
        categories = db.value("SELECT count(*) FROM entry_categories")
        live = db.value("SELECT count(*) FROM stories WHERE merged_into_id IS NULL")
    finally:
        db.close()
    return {
        "sources": sources,
        "entries": entries,
        "categories": categories,
        "stories": sorted(sorted(members) for members in stories.values()),
        "live_stories": live,
    }


def _done(database: str) -> bool:
    db = SharedStore(database)
    try:
        return bool(
            db.value("SELECT count(*) FROM sources WHERE last_success_at IS NOT NULL") == SOURCES
            and db.value("SELECT count(*) FROM entries WHERE clustered_at IS NULL") == 0
        )
    except Exception:  # the server is down or coming back: not done
        return False
    finally:
        db.close()


def test_workers_ride_out_a_postgres_restart(cluster: Cluster, tmp_path: Path) -> None:
    with feed_farm(HOSTS) as farm:
        _run(cluster, farm, tmp_path)


def _run(cluster: Cluster, farm: FeedFarm, tmp_path: Path) -> None:
    sources = farm.add_sources(SOURCES, ITEMS, delay=0.03, share=5)
    config = write_config(
        tmp_path / "config", sources_toml(sources), '[[category]]\nid = "all"\ntitle = "All"\n'
    )
    restarted = _database(cluster, "restarted")
    reference = _database(cluster, "reference")
    env = worker_env(
        AGGREGATOR_FETCH_WORKERS="4",
        AGGREGATOR_LEASE_SECONDS="5",
        AGGREGATOR_FETCH_DEADLINE="3",
        AGGREGATOR_READ_TIMEOUT="3",
    )
    with running_workers(2, config, restarted, tmp_path, env) as workers:
        wait_for(lambda: farm.total() >= SOURCES // 4, 120, "the poll to get going", workers)
        cluster.stop()
        time.sleep(OUTAGE_SECONDS)
        cluster.start()
        wait_for(lambda: _done(restarted), 180, "the workers to finish after the restart", workers)
        codes = [worker.terminate() for worker in workers]
    logs = [worker.output() for worker in workers]
    assert codes == [0, 0], [log[-2000:] for log in logs]
    # They saw the outage, said so, and backed off before trying again.
    assert any("retry_in=" in log for log in logs), [log[-2000:] for log in logs]
    aggregator(
        "poll",
        "--config",
        str(config),
        "--database",
        reference,
        env=worker_env(AGGREGATOR_LOG_LEVEL="WARNING"),
    )
    after, expected = _snapshot(restarted), _snapshot(reference)
    for key in expected:
        assert after[key] == expected[key], key

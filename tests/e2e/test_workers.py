"""Issue 7, acceptance 1 and 2: three ``aggregator run`` workers share one PostgreSQL database
and 2,000 loopback sources spread over 20 hosts.

Every source is fetched exactly once per due cycle (the feed hosts count requests per source),
and the store holds no duplicate entry or story, including stories that several sources, on
different hosts and so in different workers, tell at once. A worker killed with SIGKILL in the
middle of a cycle loses nothing: once its leases run out, the others fetch its sources.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import databases
from tests.support.feedfarm import FeedFarm, feed_farm, sources_toml
from tests.support.feeds import write_config
from tests.support.workers import SharedStore, running_workers, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

HOSTS = 20
ITEMS = 3
# Sources per shared story (their first entries link to one URL).
SHARE = 10
CYCLE_SECONDS = 120


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    with databases.fresh_postgres(template=pg_template) as url:
        yield url


@pytest.fixture
def farm() -> Iterator[FeedFarm]:
    with feed_farm(HOSTS) as hosts:
        yield hosts


def _config(folder: Path, farm: FeedFarm, count: int, **options: float) -> Path:
    sources = farm.add_sources(count, ITEMS, share=SHARE, **options)  # type: ignore[arg-type]
    return write_config(folder, sources_toml(sources), '[[category]]\nid = "all"\ntitle = "All"\n')


def _all_saved_since(
    db: SharedStore, total: int, column: str = "last_success_at", since: object = None
) -> bool:
    if since is None:
        done = db.value(f"SELECT count(*) FROM sources WHERE {column} IS NOT NULL")
    else:
        done = db.value(f"SELECT count(*) FROM sources WHERE {column} > :since", since=since)
    pending = db.value("SELECT count(*) FROM entries WHERE clustered_at IS NULL")
    return bool(done == total and pending == 0)


def _check_store(db: SharedStore, sources: int) -> None:
    """Every entry once, every story once: one per own entry, one per shared URL."""
    assert db.value("SELECT count(*) FROM entries") == sources * ITEMS
    assert (
        db.rows(
            "SELECT source_id, count(*) FROM entries GROUP BY source_id HAVING count(*) <> :n",
            n=ITEMS,
        )
        == []
    )
    shared = sources // SHARE
    assert db.value("SELECT count(*) FROM stories WHERE merged_into_id IS NULL") == (
        sources * (ITEMS - 1) + shared
    )
    assert (
        db.rows(
            "SELECT url, count(DISTINCT story_id) FROM entries GROUP BY url "
            "HAVING count(DISTINCT story_id) > 1"
        )
        == []
    )
    assert (
        db.rows(
            "SELECT id FROM stories s WHERE entry_count <> "
            "(SELECT count(*) FROM entries e WHERE e.story_id = s.id)"
        )
        == []
    )
    assert db.value("SELECT count(*) FROM sources WHERE lease_owner IS NOT NULL") == 0


def test_three_workers_fetch_every_source_once_per_cycle(
    farm: FeedFarm, pg_url: str, tmp_path: Path
) -> None:
    total = 2000
    config = _config(tmp_path / "config", farm, total)
    db = SharedStore(pg_url)
    try:
        with running_workers(3, config, pg_url, tmp_path, worker_env()) as workers:
            wait_for(lambda: _all_saved_since(db, total), CYCLE_SECONDS, "the first cycle", workers)
            counts = farm.counts()
            assert len(counts) == total
            assert set(counts.values()) == {1}, counts.most_common(3)
            _check_store(db, total)
            # The work was shared: each worker polled some of the sources.
            polled = [w.output().count("action=poll outcome=") for w in workers]
            assert all(polled), polled
            assert sum(polled) == total

            # A second cycle: everything due again; the feeds have not changed (all 304).
            cycle = db.value("SELECT now()")
            db.execute("UPDATE sources SET next_check_at = now()")
            wait_for(
                lambda: _all_saved_since(db, total, "last_checked_at", cycle),
                CYCLE_SECONDS,
                "the second cycle",
                workers,
            )
            counts = farm.counts()
            assert set(counts.values()) == {2}, counts.most_common(3)
            _check_store(db, total)
            codes = [worker.terminate() for worker in workers]
        assert codes == [0, 0, 0], [w.output()[-2000:] for w in workers]
    finally:
        db.close()


def test_a_killed_workers_sources_go_to_the_others_when_its_lease_runs_out(
    farm: FeedFarm, pg_url: str, tmp_path: Path
) -> None:
    total = 600
    # Slow answers, so the kill lands while the worker holds a batch.
    config = _config(tmp_path / "config", farm, total, delay=0.05)
    db = SharedStore(pg_url)
    env = worker_env(
        AGGREGATOR_LEASE_SECONDS="4",
        AGGREGATOR_FETCH_DEADLINE="2",
        AGGREGATOR_READ_TIMEOUT="2",
        AGGREGATOR_FETCH_WORKERS="4",
    )
    try:
        # As on three machines: a worker on the victim's machine would release its claims
        # as soon as it saw the process gone; here they must run out.
        with running_workers(3, config, pg_url, tmp_path, env, machines=True) as workers:
            victim = workers[0]
            mine = f"machine0:{victim.pid}:%"
            wait_for(
                lambda: (
                    db.value("SELECT count(*) FROM sources WHERE lease_owner LIKE :o", o=mine) >= 20
                ),
                CYCLE_SECONDS,
                "the victim's claims",
                workers,
            )
            os.kill(victim.pid, signal.SIGKILL)
            victim.process.wait(10)
            killed_at = db.value("SELECT now()")
            orphaned = {
                row[0]
                for row in db.rows("SELECT id FROM sources WHERE lease_owner LIKE :o", o=mine)
            }
            assert orphaned
            wait_for(
                lambda: _all_saved_since(db, total),
                CYCLE_SECONDS,
                "the survivors to finish",
                workers[1:],
            )
            _check_store(db, total)
            # Its sources were fetched again, after the kill, by the others.
            again = db.rows(
                "SELECT id FROM sources WHERE last_success_at < :at AND id = ANY(:ids)",
                at=killed_at,
                ids=sorted(orphaned),
            )
            assert again == []
            counts = farm.counts()
            paths = {f"/{source_id}.xml" for source_id in orphaned}
            assert all(counts[path] in (1, 2) for path in paths), counts
            others = {path: n for path, n in counts.items() if path not in paths}
            assert len(others) == total - len(paths)
            assert set(others.values()) == {1}, [p for p, n in others.items() if n != 1][:5]
            codes = [worker.terminate() for worker in workers[1:]]
        assert codes == [0, 0]
    finally:
        db.close()

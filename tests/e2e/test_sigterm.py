"""Graceful shutdown of a worker sharing PostgreSQL: SIGTERM in the middle of a poll against a
slow loopback host.

On fetch threads, the fetches in flight finish and are saved, and none starts after the signal;
with worker processes, what they hold is dropped unsaved. Either way the worker exits 0, no
source stays leased to it (the others may take them at once), and the store is consistent:
every saved source has all its entries, every other one has none and is still due.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.demo.feedserver import FeedServer, Resource
from tests.support import databases
from tests.support.feeds import rss, write_config
from tests.support.workers import SharedStore, running_workers, wait_for, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ITEMS = 3
DELAY_SECONDS = 2.0


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    with databases.fresh_postgres(template=pg_template) as url:
        yield url


@pytest.mark.parametrize(
    ("sources", "processes"), [(40, "0"), (80, "2")], ids=["threads", "processes"]
)
def test_sigterm_mid_poll_releases_what_it_did_not_save(
    feed_server: FeedServer, pg_url: str, tmp_path: Path, sources: int, processes: str
) -> None:
    lines = []
    for n in range(sources):
        items = [
            {"guid": f"s{n}-{i}", "title": f"S{n} story {i}", "link": f"https://s{n}.example/{i}"}
            for i in range(ITEMS)
        ]
        feed_server.set(f"/s{n}.xml", Resource(body=rss(f"S{n}", items), delay=DELAY_SECONDS))
        lines.append(
            f'[[source]]\nid = "s{n}"\nurl = "{feed_server.url(f"/s{n}.xml")}"\n'
            'categories = ["all"]\n'
        )
    config = write_config(
        tmp_path / "config", "\n".join(lines), '[[category]]\nid = "all"\ntitle = "All"\n'
    )
    env = worker_env(
        AGGREGATOR_FETCH_WORKERS="4",
        AGGREGATOR_HOST_CONCURRENCY="4",
        AGGREGATOR_POLL_PROCESSES=processes,
    )
    db = SharedStore(pg_url)
    try:
        with running_workers(1, config, pg_url, tmp_path, env) as [worker]:
            wait_for(lambda: len(feed_server.requests) >= 4, 60, "fetches in flight", [worker])
            asked = {r.path for r in feed_server.requests}
            worker.process.send_signal(signal.SIGTERM)
            code = worker.process.wait(60)
        output = worker.output()
        assert code == 0, output[-3000:]
        assert "action=shutdown outcome=done" in output
        requested = {r.path for r in feed_server.requests}
        saved = {
            f"/{source_id}.xml"
            for (source_id,) in db.rows("SELECT id FROM sources WHERE last_checked_at IS NOT NULL")
        }
        assert saved <= requested
        if processes == "0":
            # In flight when the signal came: finished and saved; nothing started after it.
            assert saved == asked == requested
        assert len(saved) < sources
        assert db.value("SELECT count(*) FROM sources WHERE lease_owner IS NOT NULL") == 0
        per_source = dict(db.rows("SELECT source_id, count(*) FROM entries GROUP BY source_id"))
        assert {f"/{s}.xml" for s in per_source} == saved
        assert set(per_source.values()) <= {ITEMS}
        assert (
            db.value(
                "SELECT count(*) FROM sources WHERE last_checked_at IS NULL "
                "AND next_check_at > now()"
            )
            == 0
        )
        assert db.value("SELECT count(*) FROM stories") == len(saved) * ITEMS
    finally:
        db.close()

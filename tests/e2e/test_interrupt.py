"""SIGKILL in the middle of ``aggregator poll``, then poll again: nothing lost, nothing twice.

Each source's entries, stories and HTTP validators are saved in one transaction, so a killed
poll leaves every source either fully saved or untouched, and the rerun completes the rest.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.store import open_store
from tests.support.feeds import aggregator, cli_env, rss, write_config

SOURCES = 24
ITEMS = 40
KILL_AFTER_REQUESTS = 6
DEADLINE_SECONDS = 60


def test_sigkill_mid_poll_loses_and_duplicates_nothing(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    lines = []
    for n in range(SOURCES):
        items = [
            {
                "guid": f"s{n}-i{i}",
                "title": f"Source {n} item {i}",
                "link": f"https://s{n}.example/{i}",
                "body": f"Body {n}/{i} " * 20,
            }
            for i in range(ITEMS)
        ]
        # The delay keeps the poll running long enough to be killed halfway through.
        feed_server.set(f"/s{n}.xml", Resource(body=rss(f"Source {n}", items), delay=0.15))
        lines.append(
            f'[[source]]\nid = "s{n}"\nurl = "{feed_server.url(f"/s{n}.xml")}"\n'
            'categories = ["all"]\n'
        )
    config = write_config(
        tmp_path / "config", "\n".join(lines), '[[category]]\nid = "all"\ntitle = "All"\n'
    )
    options = ["--config", str(config), "--database", database_url]
    # Durability, not grouping: the synthetic titles ("Source 3 item 7") are near-identical
    # across sources, so the model would rightly join them; exact clustering keeps one story
    # per entry to count.
    env = cli_env(AGGREGATOR_FETCH_WORKERS="2", AGGREGATOR_CLUSTERING="exact")

    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "poll", *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(feed_server.requests) < KILL_AFTER_REQUESTS and time.monotonic() < deadline:
        assert process.poll() is None, "poll finished before it could be interrupted"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL

    store = open_store(database_url)
    try:
        partial = store.counts()["entries"]
    finally:
        store.close()
    assert partial < SOURCES * ITEMS, "the kill came too late to interrupt anything"

    aggregator("poll", "--all", *options, env=env)

    store = open_store(database_url)
    try:
        counts = store.counts()
        assert counts["entries"] == SOURCES * ITEMS
        assert counts["stories"] == SOURCES * ITEMS
        with store.engine.connect() as connection:
            guids = connection.execute(sa.text("SELECT guid FROM entries")).scalars().all()
            categorized = connection.execute(
                sa.text("SELECT count(*) FROM entry_categories")
            ).scalar_one()
        expected = {f"s{n}-i{i}" for n in range(SOURCES) for i in range(ITEMS)}
        assert sorted(guids) == sorted(expected)
        assert categorized == SOURCES * ITEMS
        assert all(s.error_count == 0 and s.etag for s in store.sources())
    finally:
        store.close()

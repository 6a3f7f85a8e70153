"""2,000 sources, 10% slow, 10% erroring, 5% huge: the poll ends, nothing healthy is skipped.

Runs the real ``aggregator poll`` against one loopback server. Slow sources drip their body
and must be cut by the fetch deadline, huge ones by the size cap while streaming; every
source's health row must say what happened to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.store import open_store
from tests.support.feeds import aggregator, cli_env, rss, write_config

TOTAL = 2000
SLOW = range(0, 200)
ERRORING = range(200, 400)
HUGE = range(400, 500)
ITEMS = 3
DEADLINE_SECONDS = 1
# Small enough that reading past it never races the 1 s deadline on a loaded machine.
MAX_BYTES = 256_000
ERRORS = (
    Resource(status=500, body=b"oops"),
    Resource(status=404, body=b"no"),
    Resource(body=b"<html><head><title>Shop</title></head></html>", content_type="text/html"),
    Resource(body=b"\x00\x01 not xml at all"),
)


def _items(n: int) -> list[dict[str, str]]:
    return [
        {"guid": f"s{n}-{i}", "title": f"Source {n} story {i}", "link": f"https://s{n}.example/{i}"}
        for i in range(ITEMS)
    ]


@pytest.mark.slow
def test_poll_of_2000_mixed_sources(feed_server: FeedServer, tmp_path: Path) -> None:
    lines = []
    for n in range(TOTAL):
        if n in SLOW:
            resource = Resource(body=rss(f"S{n}", _items(n)) * 20, drip=0.2, chunk_size=256)
        elif n in ERRORING:
            resource = ERRORS[n % len(ERRORS)]
        elif n in HUGE:
            resource = Resource(body=b"<rss>" + b"x" * (MAX_BYTES * 3), chunked=True)
        else:
            resource = Resource(body=rss(f"S{n}", _items(n)))
        feed_server.set(f"/s{n}.xml", resource)
        lines.append(
            f'[[source]]\nid = "s{n}"\nurl = "{feed_server.url(f"/s{n}.xml")}"\n'
            'categories = ["all"]\n'
        )
    config = write_config(
        tmp_path / "config", "\n".join(lines), '[[category]]\nid = "all"\ntitle = "All"\n'
    )
    database = f"sqlite:///{tmp_path / 'store.db'}"
    env = cli_env(
        AGGREGATOR_FETCH_WORKERS="16",
        AGGREGATOR_HOST_CONCURRENCY="16",
        AGGREGATOR_HOST_DELAY="0",
        AGGREGATOR_FETCH_DEADLINE=str(DEADLINE_SECONDS),
        AGGREGATOR_READ_TIMEOUT="1",
        AGGREGATOR_MAX_FEED_BYTES=str(MAX_BYTES),
        AGGREGATOR_LOG_LEVEL="WARNING",
        # The poll at scale, not the model over every stored entry (issue 14's
        # throughput goal; bench/cluster_bench.py measures that).
        AGGREGATOR_CLUSTERING="exact",
    )
    options = ["--config", str(config), "--database", database]
    result = aggregator("poll", *options, env=env, check=False)
    assert result.returncode == 1, result.stderr  # the erroring tenth failed, not all
    assert f"polled {TOTAL} sources" in result.stdout

    listing = aggregator("sources", "list", "--json", *options, env=env).stdout.splitlines()
    health = {row["id"]: row for row in map(json.loads, listing)}
    assert len(health) == TOTAL
    for n in range(TOTAL):
        row = health[f"s{n}"]
        assert row["last_checked_at"] is not None, row
        if n in SLOW:
            assert row["last_error_kind"] == "timeout", row
        elif n in ERRORING:
            assert row["error_count"] == 1, row
            assert row["last_error"], row
        elif n in HUGE:
            assert row["last_error_kind"] == "too_large", row
        else:
            assert (row["last_status"], row["error_count"], row["last_new_entries"]) == (
                200,
                0,
                ITEMS,
            ), row
    store = open_store(database)
    try:
        assert store.counts()["entries"] == (TOTAL - 500) * ITEMS
    finally:
        store.close()

"""A poll logs exactly one line per source and outcome, and every line about a source says
which source, what was done and how it went (issue 8: structured logs)."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from aggregator.catalog import Catalog, CategoryConfig, SourceConfig
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.polling.fetch.configured import fetcher_from_settings
from aggregator.polling.poller import Refresher
from aggregator.runtime.service import make_fetcher
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.types import PollResult
from tests.support.builders import NOW
from tests.support.feeds import aggregator, cli_env, rss, write_config

ITEMS = [
    {"guid": f"g{i}", "title": f"Item {i}", "link": f"https://n.example/{i}"} for i in range(2)
]
SOURCE_RE = re.compile(r"(?:^|\s)source=(\S+)")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


class BrokenCategories(dict[str, CategoryConfig]):
    def get(self, *_args: object, **_kwargs: object) -> None:  # type: ignore[override]
        raise RuntimeError("bug in classification")


def lines_by_source(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    """Source id → lines about it; each such line must also say action= and outcome=."""
    counts: Counter[str] = Counter()
    for record in caplog.records:
        message = record.getMessage()
        match = SOURCE_RE.search(message)
        if match is None:
            continue
        assert " action=" in message, message
        assert " outcome=" in message, message
        counts[match[1]] += 1
    return counts


def test_one_line_per_source_per_poll(
    sqlite_store: Store, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    feed_server.set("/ok.xml", Resource(body=rss("OK", ITEMS)))
    feed_server.set("/plain.xml", Resource(body=rss("Plain", ITEMS), auto_validators=False))
    feed_server.set("/broken.xml", Resource(body=b"neither XML nor JSON {"))
    feed_server.set(
        "/busy.xml", Resource(status=429, headers={"Retry-After": "3600"}, body=b"slow down")
    )
    names = {
        "ok": "/ok.xml",
        "plain": "/plain.xml",
        "broken": "/broken.xml",
        "missing": "/missing.xml",
        "busy": "/busy.xml",
    }
    catalog = Catalog(
        sources=tuple(
            SourceConfig(id=name, url=feed_server.url(path), categories=("all",))
            for name, path in names.items()
        ),
        categories=(CategoryConfig(id="all", title="All"),),
    )
    clock = Clock()
    sqlite_store.sync_sources(catalog, clock.now)
    settings = replace(
        Settings.from_env({}), host_delay=0.0, connect_timeout=2, read_timeout=2, fetch_deadline=5
    )
    refresher = Refresher(
        store=sqlite_store,
        fetcher=make_fetcher(settings, now=clock),
        catalog=catalog,
        workers=4,
        fetcher_factory=partial(fetcher_from_settings, settings),
        clock=clock,
    )

    def poll(*ids: str) -> dict[str, PollResult]:
        caplog.clear()
        due = [s for s in sqlite_store.sources() if s.id in ids]
        with caplog.at_level(logging.INFO, logger="aggregator"):
            results = {o.source_id: o.result for o in refresher.poll(due).outcomes}
        assert lines_by_source(caplog) == dict.fromkeys(ids, 1), results
        return results

    try:
        assert poll("ok", "plain", "broken", "missing") == {
            "ok": "updated",
            "plain": "updated",
            "broken": "error",
            "missing": "error",
        }
        clock.now += timedelta(hours=1)
        assert poll("ok", "plain", "broken", "missing") == {
            "ok": "not_modified",
            "plain": "unchanged",
            "broken": "error",
            "missing": "error",
        }
        # A bug while preparing one source (here: a category table that breaks on lookup)
        # is still one line, its traceback attached.
        feed_server.set(
            "/ok.xml",
            Resource(
                body=rss(
                    "OK", [*ITEMS, {"guid": "g9", "title": "Item 9", "link": "https://n.example/9"}]
                )
            ),
        )
        working, refresher.categories = refresher.categories, BrokenCategories()
        assert poll("ok") == {"ok": "error"}
        assert [r.exc_info is not None for r in caplog.records] == [True]
        refresher.categories = working
        assert poll("busy") == {"busy": "error"}
        # The host asked for an hour's rest: the next source of that host is not even tried.
        assert poll("ok") == {"ok": "deferred"}
    finally:
        refresher.close()
        refresher.fetcher.close()


def test_the_command_line_writes_json_lines_when_asked(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.set("/ok.xml", Resource(body=rss("OK", ITEMS)))
    config = write_config(
        tmp_path / "config",
        f'[[source]]\nid = "ok"\nurl = "{feed_server.url("/ok.xml")}"\ncategories = ["all"]\n'
        f'[[source]]\nid = "missing"\nurl = "{feed_server.url("/missing.xml")}"\n'
        'categories = ["all"]\n',
        '[[category]]\nid = "all"\ntitle = "All"\n',
    )
    env = cli_env(AGGREGATOR_LOG_FORMAT="json", AGGREGATOR_CLUSTERING="exact")
    result = aggregator(
        "poll",
        "--all",
        "--config",
        str(config),
        "--database",
        f"sqlite:///{tmp_path / 'store.db'}",
        env=env,
        check=False,
    )
    assert result.returncode == 1  # some sources failed
    records = [json.loads(line) for line in result.stderr.splitlines()]
    polled = {r["source"]: r for r in records if r.get("action") == "poll"}
    assert sorted(polled) == ["missing", "ok"]
    assert (polled["ok"]["outcome"], polled["ok"]["new"]) == ("updated", 2)
    assert (polled["missing"]["outcome"], polled["missing"]["kind"]) == ("error", "http")
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)

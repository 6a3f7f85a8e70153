"""``aggregator poll`` runs the full-text stage between polling and clustering, and ``sources
list`` tells editors how it went: the real command line in a subprocess, against a loopback
feed whose article links point at the loopback address, which the stage (unlike the feed's own
fetch) refuses as it would any private address a feed links to."""

from __future__ import annotations

import json
from email.utils import formatdate
from pathlib import Path

from aggregator.demo.feedserver import FeedServer, Resource
from tests.support.feeds import aggregator, rss, write_config

CATEGORIES = '[[category]]\nid = "all"\ntitle = "All"\n'
PAGE = b"<!doctype html><html><body><article><p>Text</p></article></body></html>"


def test_poll_fetches_pages_and_sources_list_counts_them(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    items = [
        {
            "guid": f"g{i}",
            "title": f"Story {i}",
            "link": feed_server.url(f"/a/{i}"),
            # Published now: the stage looks at the last week's entries, by the real clock.
            "date": formatdate(usegmt=True),
        }
        for i in range(3)
    ]
    feed_server.set("/feed.xml", Resource(body=rss("News", items)))
    for i in range(3):
        feed_server.set(f"/a/{i}", Resource(body=PAGE, content_type="text/html"))
    config = write_config(
        tmp_path / "config",
        f'[[source]]\nid = "news"\nurl = "{feed_server.url("/feed.xml")}"\n'
        'categories = ["all"]\nfull_text = true\nfull_text_selector = "article"\n',
        CATEGORIES,
    )
    database = f"sqlite:///{tmp_path / 'agg.db'}"
    result = aggregator("poll", "--json", "--config", str(config), "--database", database)
    summary = json.loads(result.stdout)
    assert summary["new_entries"] == 3
    assert summary["full_text"] == {"extracted": 0, "empty": 0, "failed": 3, "unchanged": 0}
    # The feed was fetched; no article page was: the address guard refused the connection.
    assert feed_server.count("/feed.xml") == 1
    assert sum(feed_server.count(f"/a/{i}") for i in range(3)) == 0

    listed = aggregator("sources", "list", "--config", str(config), "--database", database)
    assert "full text: 0 of 3 pages extracted (0%); 3 failed" in listed.stdout
    (news,) = [
        json.loads(line)
        for line in aggregator(
            "sources", "list", "--json", "--config", str(config), "--database", database
        ).stdout.splitlines()
    ]
    assert news["full_text"] is True
    assert news["full_text_outcomes"] == {"failed": 3}

"""``aggregator run``: the scheduler's first tick polls, the clustering job clusters, the web
server serves, SIGTERM stops it.

The service process must exit 0 after SIGTERM, with the scheduler shut down (no half-written
poll), and an empty database is migrated on start.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import requests

from aggregator.demo.feedserver import FeedServer, Resource
from tests.support.feeds import cli_env, rss, write_config

DEADLINE_SECONDS = 60
# A loopback answer can take seconds while the service starts on a loaded two-core machine.
READ_SECONDS = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_polls_serves_and_stops_cleanly(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    items = [
        {"guid": f"g{i}", "title": f"Story {i}", "link": f"https://n.example/{i}"} for i in range(3)
    ]
    feed_server.set("/news.xml", Resource(body=rss("News", items)))
    config = write_config(
        tmp_path / "config",
        f'[[source]]\nid = "news"\nurl = "{feed_server.url("/news.xml")}"\ncategories = ["all"]\n',
        '[[category]]\nid = "all"\ntitle = "All"\n',
    )
    port = _free_port()
    env = cli_env(AGGREGATOR_PORT=str(port), AGGREGATOR_TICK_SECONDS="1")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregator",
            "run",
            "--config",
            str(config),
            "--database",
            database_url,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        titles: list[str] = []
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline and len(titles) < 3:
            assert process.poll() is None, process.communicate()[0]
            try:
                response = requests.get(f"{base}/feeds/all.atom", timeout=READ_SECONDS)
                titles = [e.title for e in feedparser.parse(response.content).entries]
            except (requests.ConnectionError, requests.Timeout):
                # Not serving yet, or too slow to answer on a loaded machine: ask again.
                pass
            time.sleep(0.2)
        assert sorted(titles) == ["Story 0", "Story 1", "Story 2"]
        assert requests.get(f"{base}/healthz", timeout=READ_SECONDS).json() == {"status": "ok"}
        # The clustering job handles what the tick stored, on its own schedule (these items
        # are older than the horizon: the cheap path, three different stories).
        stories = requests.get(f"{base}/api/categories/all/stories", timeout=READ_SECONDS).json()
        decisions: list[str | None] = []
        while time.monotonic() < deadline and decisions != ["new"] * 3:
            decisions = [
                row["decision"]
                for story in stories
                for row in requests.get(
                    f"{base}/api/stories/{story['id']}/evidence", timeout=READ_SECONDS
                ).json()
            ]
            time.sleep(0.2)
        assert decisions == ["new"] * 3
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert "action=shutdown outcome=done" in output
    assert "source=news action=poll outcome=updated" in output
    assert "action=cluster outcome=done entries=3" in output

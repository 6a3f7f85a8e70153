"""Issue 6, acceptance 5: ``aggregator run`` picks up changed config files without a restart,
and a broken file leaves it on its previous configuration, logged with file and key."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
import requests

from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.editorial.configedit import NewCategory, NewSource, add_sources
from tests.support.feeds import aggregator, cli_env, rss, write_config

DEADLINE_SECONDS = 60
CATEGORIES = '# Categories.\n\n[[category]]\nid = "all"\ntitle = "All"\n'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Running:
    """``aggregator run`` in a subprocess, its log lines collected as they come."""

    def __init__(self, config: Path, database_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = cli_env(
            AGGREGATOR_PORT=str(self.port),
            AGGREGATOR_TICK_SECONDS="1",
            AGGREGATOR_CONFIG_RELOAD_SECONDS="0.2",
            AGGREGATOR_CLUSTERING="exact",
            AGGREGATOR_POLL_PROCESSES="0",
            AGGREGATOR_FEED_RECHECK_SECONDS="0.2",
        )
        self.process = subprocess.Popen(
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
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def get(self, path: str) -> Any:
        response = requests.get(self.base + path, timeout=5)
        response.raise_for_status()
        return (
            response.json()
            if "json" in response.headers.get("content-type", "")
            else response.content
        )

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "".join(self.lines)
            try:
                if condition():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gave up waiting for {what}; log:\n{''.join(self.lines)}")

    def logged(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def categories(running: Running) -> list[tuple[str, str]]:
    return [(c["id"], c["title"]) for c in running.get("/api/categories")]


def test_broken_config_is_refused_and_a_fixed_one_applied(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.set(
        "/news.xml",
        Resource(
            body=rss("News", [{"guid": "n1", "title": "Local news", "link": "https://n.example/1"}])
        ),
    )
    feed_server.set(
        "/world.xml",
        Resource(
            body=rss(
                "World", [{"guid": "w1", "title": "World news", "link": "https://w.example/1"}]
            )
        ),
    )
    config = write_config(
        tmp_path / "config",
        f'[[source]]\nid = "news"\nurl = "{feed_server.url("/news.xml")}"\ncategories = ["all"]\n',
        CATEGORIES,
    )
    running = Running(config, f"sqlite:///{tmp_path / 'store.db'}")
    try:
        running.wait_for("the service", lambda: categories(running) == [("all", "All")])

        # A bad regex: refused, logged once with file and key, the old categories served.
        (config / "categories.toml").write_text(
            CATEGORIES.replace('"All"', '"All, broken"') + "include = ['/(unclosed/']\n",
            encoding="utf-8",
        )
        running.wait_for("the refusal", lambda: bool(running.logged("outcome=refused")))
        refused = running.logged("action=config-reload outcome=refused")
        assert f"file={config / 'categories.toml'} item=all key=include" in refused[0]
        assert "unterminated subpattern" in refused[0]
        assert categories(running) == [("all", "All")]
        assert b"<title>All</title>" in running.get("/feeds/all.atom")

        # Fixed: the new title shows. Then a category and its source added in one edit (the
        # reload never sees one file without the other): the new source is polled and its
        # entries land in the new category.
        (config / "categories.toml").write_text(
            CATEGORIES.replace('"All"', '"Everything"'), encoding="utf-8"
        )
        running.wait_for("the fixed title", lambda: categories(running) == [("all", "Everything")])
        running.wait_for(
            "the feed's new title",
            lambda: b"<title>Everything</title>" in running.get("/feeds/all.atom"),
        )
        add_sources(
            config,
            [
                NewSource(
                    id="world",
                    url=feed_server.url("/world.xml"),
                    title="World",
                    categories=("world",),
                )
            ],
            categories=[NewCategory(id="world", title="World")],
        )
        running.wait_for("the new category", lambda: ("world", "World") in categories(running))
        running.wait_for(
            "the new source's entries",
            lambda: (
                [e.title for e in feedparser.parse(running.get("/feeds/world.atom")).entries]
                == ["World news"]
            ),
        )

        aggregator("sources", "pause", "news", "--config", str(config))
        running.wait_for(
            "the paused source",
            lambda: (
                {s["id"]: s["state"] for s in running.get("/api/sources")}
                == {"news": "paused", "world": "active"}
            ),
        )
        assert len(running.logged("outcome=refused")) == 1
    finally:
        code = running.stop()
    assert code == 0, "".join(running.lines)
    assert len(running.logged("action=config-reload outcome=applied")) >= 3

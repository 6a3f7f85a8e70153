"""WebSub: live feeds advertise the hub; a change pings it once per changed feed URL, no
change pings nothing, and a failing hub is logged, never fatal. The hub is a real HTTP server
on 127.0.0.1 that records what it is sent."""

from __future__ import annotations

import json
import logging
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aggregator.publishing.websub import HubNotifier, ping_hub
from aggregator.store import Store
from aggregator.web import create_app
from tests.integration.test_outputs import BASE, CATEGORIES, Newsroom, news_catalog, outputs_for
from tests.support.feeds import aggregator, cli_env, write_config
from tests.support.hub import recording_hub
from tests.support.webserver import serve_app

ATOM = "{http://www.w3.org/2005/Atom}"
UA = "aggregator-test"


def test_feeds_advertise_the_hub_and_a_change_pings_it(store: Store) -> None:
    room = Newsroom(store)
    room.story("one")
    with recording_hub() as hub:
        notifier = HubNotifier(hub.url, user_agent=UA)
        outputs = outputs_for(store, hub_url=hub.url, on_change=notifier.notify)
        atom = ET.fromstring(outputs.document("feeds/news.atom").body)  # type: ignore[union-attr]
        assert [
            link.get("href") for link in atom.findall(f"{ATOM}link") if link.get("rel") == "hub"
        ] == [hub.url]
        rss = ET.fromstring(outputs.document("feeds/news.fr.rss").body)  # type: ignore[union-attr]
        assert [
            link.get("href")
            for link in rss.findall(f"channel/{ATOM}link")
            if link.get("rel") == "hub"
        ] == [hub.url]
        document = json.loads(outputs.document("feeds/news.json").body)  # type: ignore[union-attr]
        assert document["hubs"] == [{"type": "WebSub", "url": hub.url}]

        # Nothing changed since this process rendered them: no ping.
        assert outputs.refresh() == []
        room.story("two")
        changed = outputs.refresh()
        assert notifier.flush(10)
        # The English story changes the all-language and English feeds, not the French ones.
        expected = [
            f"{BASE}/feeds/news{lang}.{fmt}"
            for lang in ("", ".en")
            for fmt in ("atom", "rss", "json")
        ]
        assert sorted(changed) == sorted(expected)
        assert sorted(hub.published()) == sorted(expected)
        assert all(ping["hub.mode"] == ["publish"] for ping in hub.pings)
        assert all(h["user-agent"] == UA for h in hub.headers)
        assert all(h["content-type"] == "application/x-www-form-urlencoded" for h in hub.headers)
        assert outputs.refresh() == []
        assert notifier.flush(10)
        assert len(hub.pings) == len(expected)
        notifier.close()


def test_a_failing_hub_is_logged_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aggregator.publishing.websub")
    with recording_hub() as hub:
        hub.status = 500
        assert ping_hub(hub.url, ["https://agg.example/feeds/a.atom"], user_agent=UA) == 0
        assert hub.published() == ["https://agg.example/feeds/a.atom"]
    # Nothing listens on a port we just closed: a connection error, also only logged.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/hub"
    notifier = HubNotifier(closed, user_agent=UA, timeout=5)
    notifier.notify(["https://agg.example/feeds/b.atom"])
    notifier.close()
    assert notifier.failed == 1
    assert notifier.sent == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("outcome=refused" in m and "status=500" in m for m in messages)
    assert any("outcome=error" in m and "feeds/b.atom" in m for m in messages)


def test_the_running_app_pings_on_its_own(store: Store, tmp_path: Path) -> None:
    room = Newsroom(store)
    room.story("one")
    with recording_hub() as hub:
        notifier = HubNotifier(hub.url, user_agent=UA)
        # The app's watcher checks every 50 ms, requests or not.
        outputs = outputs_for(
            store, hub_url=hub.url, on_change=notifier.notify, recheck_seconds=0.05
        )
        with serve_app(create_app(store=store, outputs=outputs)):
            outputs.refresh()
            room.story("two")
            assert hub.wait_for(6), hub.published()
        notifier.close()
        assert f"{BASE}/feeds/news.atom" in hub.published()


@pytest.mark.slow
def test_publish_out_pings_for_the_feeds_it_wrote(store: Store, tmp_path: Path) -> None:
    room = Newsroom(store)
    room.story("one")
    sources = "".join(
        f'[[source]]\nid = "{s.id}"\nurl = "{s.url}"\ncategories = ["news"]\n'
        for s in news_catalog().sources
    )
    config = write_config(tmp_path / "config", sources, CATEGORIES)
    url = store.engine.url.render_as_string(hide_password=False)
    options = ["--config", str(config), "--database", url, "--out", str(tmp_path / "site")]
    with recording_hub() as hub:
        env = cli_env(
            AGGREGATOR_WEBSUB_HUB=hub.url,
            AGGREGATOR_BASE_URL=BASE,
            AGGREGATOR_ARCHIVE_DIR=str(tmp_path / "archives"),
        )
        first = aggregator("publish", *options, env=env)
        assert "pinged" in first.stdout
        assert sorted(hub.published()) == sorted(
            f"{BASE}/feeds/news{lang}.{fmt}"
            for lang in ("", ".en", ".fr")
            for fmt in ("atom", "rss", "json")
        )
        second = aggregator("publish", *options, env=env)
        assert "pinged" not in second.stdout
        assert len(hub.pings) == 9

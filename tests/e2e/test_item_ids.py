"""Item ids do not depend on the order polls stored the entries, nor on rebuilding the store.

The demo's six sources are polled into empty databases twice, once with the first three feeds
answering late and once with the last three: the entries reach the store in a different order
(checked, so the test cannot pass for want of a difference), clustering runs, ``publish``
writes every output, and each output lists the same item ids. ``cluster --redo`` on the first
database, published again, gives the same ids too.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import feedparser

from aggregator.demo import FEEDS_DIR, write_demo_config
from aggregator.demo.feedserver import FeedServer, Resource, content_type_for
from tests.support.feeds import aggregator, cli_env

# Long enough that a delayed feed is stored after every prompt one, even on a loaded machine.
LATE_SECONDS = 1.5
FEEDS = sorted(p.name for p in FEEDS_DIR.iterdir() if p.is_file())


def _env() -> dict[str, str]:
    # Every feed is fetched at once (one loopback host), so the late ones are stored last; the
    # sample feeds are dated November 2026, so the stage's age limit is off, as in the demo.
    return cli_env(
        AGGREGATOR_BASE_URL="http://demo.example",
        AGGREGATOR_LOG_LEVEL="WARNING",
        AGGREGATOR_FETCH_WORKERS="8",
        AGGREGATOR_HOST_CONCURRENCY="8",
        AGGREGATOR_HOST_DELAY="0",
        AGGREGATOR_CLUSTERING_MAX_AGE_HOURS="0",
    )


def _item_ids(out: Path) -> dict[str, list[str]]:
    """Every output document's item ids, in document order."""
    found: dict[str, list[str]] = {}
    for path in sorted(out.rglob("*")):
        name = str(path.relative_to(out))
        if path.suffix == ".json" and path.parent.name == "feeds":
            found[name] = [item["id"] for item in json.loads(path.read_bytes())["items"]]
        elif path.suffix in (".atom", ".rss"):
            found[name] = [e.id for e in feedparser.parse(path.read_bytes()).entries]
    return found


def _storage_order(database: Path) -> list[str]:
    """Sources in the order their first entry was stored."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT source_id FROM entries ORDER BY id").fetchall()
    return list(dict.fromkeys(source for (source,) in rows))


def _poll_and_publish(folder: Path, late: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    database = folder / "demo.db"
    with FeedServer() as feeds:
        for name in FEEDS:
            path = FEEDS_DIR / name
            feeds.set(
                f"/{name}",
                Resource(
                    body=path.read_bytes(),
                    content_type=content_type_for(path),
                    delay=LATE_SECONDS if name in late else 0.0,
                ),
            )
        config = write_demo_config(folder / "config", feeds.base_url)
        common = ("--config", str(config), "--database", f"sqlite:///{database}")
        aggregator("poll", "--all", *common, env=_env())
    aggregator("publish", "--out", str(folder / "out"), *common, env=_env())
    return _item_ids(folder / "out"), _storage_order(database)


def test_item_ids_do_not_depend_on_polling_order_or_a_rebuild(tmp_path: Path) -> None:
    first, first_order = _poll_and_publish(tmp_path / "a", set(FEEDS[:3]))
    second, second_order = _poll_and_publish(tmp_path / "b", set(FEEDS[3:]))
    assert first_order != second_order, "the two runs stored the entries in the same order"
    assert sum(len(ids) for ids in first.values()) > 20
    assert any(name.endswith(".fr.atom") for name in first)
    assert second == first

    config = (
        "--config",
        str(tmp_path / "a" / "config"),
        "--database",
        f"sqlite:///{tmp_path / 'a' / 'demo.db'}",
    )
    aggregator("cluster", "--redo", *config, env=_env())
    aggregator("publish", "--out", str(tmp_path / "redone"), *config, env=_env())
    assert _item_ids(tmp_path / "redone") == first

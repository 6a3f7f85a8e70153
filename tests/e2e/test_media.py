"""Media end to end on real feeds: every ``../shared/data/feeds`` document with enclosures or
Media RSS is served on a loopback server, polled by the service, stored, and published; the
enclosures and pictures feedparser sees in each source come out of every format (Atom: all of
an item's enclosures, RSS: one, JSON Feed: attachments), and the published podcast feeds pass
the W3C validator and the JSON Feed schema, reader sees every episode's audio in each format,
and newsboat stores every episode's audio and puts it in podboat's download queue (newsboat's
podcast view).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest
from reader import make_reader

from aggregator.catalog import Catalog, load_catalog
from aggregator.demo.feedserver import FeedServer, Resource
from aggregator.publishing.formats import MEDIA_TYPES
from aggregator.publishing.outputs import FeedName, Outputs
from aggregator.runtime.service import Service
from aggregator.settings import Settings
from aggregator.store import Store
from aggregator.store.entries import GrowthLimits
from aggregator.web import create_app
from tests.support import feedvalidator
from tests.support.builders import settle
from tests.support.feeds import toml_tables, write_config
from tests.support.outputchecks import json_feed
from tests.support.shared import require_shared
from tests.support.webserver import serve_app

pytestmark = pytest.mark.shared

BASE = "https://news.example.org"
FEED_DIRS = (
    "fastfeedparser-realworld",
    "feed-rs-fixtures",
    "miniflux-testdata",
    "node-feedparser-feeds",
    "rss-parser-inputs",
)
_MEDIA_MARKERS = re.compile(rb"<enclosure\b|<media:(?:content|thumbnail|group)\b|<itunes:image\b")
# Real podcast feeds (RSS enclosures with audio): each must keep every episode's audio.
PODCASTS = (
    "feed-rs-fixtures/rss2/rss_2.0_bbc.xml",
    "feed-rs-fixtures/rss2/rss_2.0_anchorfm.xml",
    "feed-rs-fixtures/rss2/rss_2.0_nightvale.xml",
    "feed-rs-fixtures/rss2/rss_2.0_spreaker.xml",
    "rss-parser-inputs/narro.rss",
    "rss-parser-inputs/item-itunes-episodeType.rss",
)
NEWSBOAT = shutil.which("newsboat")
TIMEOUT_SECONDS = 120


def media_files() -> list[Path]:
    root = require_shared("data/feeds")
    found = []
    for directory in FEED_DIRS:
        for path in sorted((root / directory).rglob("*")):
            if path.is_file() and _MEDIA_MARKERS.search(path.read_bytes()):
                found.append(path)
    return found


@dataclass
class Counts:
    """Per source: items with an enclosure, enclosure URLs, items with a picture."""

    items: int = 0
    with_enclosure: int = 0
    enclosure_urls: set[str] = field(default_factory=set)
    with_picture: int = 0


def _http(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme in ("http", "https")


def counts_in(document: feedparser.FeedParserDict, served: str) -> Counts:
    """What feedparser, a reader independent of our parser, sees of one source's media;
    relative URLs resolve against where the source was served."""
    counts = Counts()
    for entry in document.entries:
        counts.items += 1
        hrefs = [urljoin(served, e.get("href") or "") for e in entry.get("enclosures", [])]
        urls = {href for href in hrefs if _http(href)}
        urls |= {
            m.get("url")
            for m in entry.get("media_content", []) or []
            if _http(m.get("url"))
            and str(m.get("type") or m.get("medium") or "").startswith(("audio", "video"))
        }
        counts.with_enclosure += bool(urls)
        counts.enclosure_urls |= {u for u in urls if u}
        pictures = [t.get("url") for t in entry.get("media_thumbnail", []) or []]
        pictures += [
            m.get("url")
            for m in entry.get("media_content", []) or []
            if str(m.get("type") or m.get("medium") or "").startswith("image")
        ]
        pictures.append((entry.get("image") or {}).get("href"))
        pictures += [
            e.get("href")
            for e in entry.get("enclosures", [])
            if str(e.get("type") or "").startswith("image/")
        ]
        counts.with_picture += any(_http(p) for p in pictures)
    return counts


def counts_out(fmt: str, body: bytes) -> Counts:
    counts = Counts()
    if fmt == "json":
        for item in json.loads(body)["items"]:
            urls = {a["url"] for a in item.get("attachments", [])}
            counts.items += 1
            counts.with_enclosure += bool(urls)
            counts.enclosure_urls |= urls
            counts.with_picture += "image" in item
        return counts
    document = feedparser.parse(body)
    assert not document.bozo, document.bozo_exception
    for entry in document.entries:
        urls = {e["href"] for e in entry.get("enclosures", [])}
        counts.items += 1
        counts.with_enclosure += bool(urls)
        counts.enclosure_urls |= urls
        counts.with_picture += bool(entry.get("media_thumbnail"))
    return counts


@dataclass
class Published:
    catalog: Catalog
    outputs: Outputs
    sources: dict[str, Path]
    server: FeedServer


def _source_id(n: int) -> str:
    return f"m{n:03d}"


def _publish(store: Store, files: list[Path], config_dir: Path) -> Iterator[Published]:
    with FeedServer() as server:
        sources: dict[str, Path] = {}
        for n, path in enumerate(files):
            sources[_source_id(n)] = path
            server.set(f"/{_source_id(n)}.xml", Resource(body=path.read_bytes()))
        # One category per source, so each source's entries represent their own stories.
        config = write_config(
            config_dir,
            toml_tables(
                "source",
                *(
                    {"id": sid, "url": server.url(f"/{sid}.xml"), "categories": [sid]}
                    for sid in sources
                ),
            ),
            toml_tables("category", *({"id": sid, "title": f"Feed {sid}"} for sid in sources)),
        )
        catalog = load_catalog(config)
        # The largest podcast (730 episodes) in one poll: no per-poll cap.
        store.limits = GrowthLimits(new_per_poll=0)
        service = Service(Settings.from_env({}), store, catalog)
        try:
            summary = service.poll()
        finally:
            service.close()
        settle(store)
        assert summary.errors == 0
        outputs = Outputs(
            store=store,
            catalog=catalog,
            base_url=BASE,
            tag_authority="news.example.org",
            feed_size=5000,
        )
        yield Published(catalog, outputs, sources, server)


@pytest.fixture
def published(sqlite_store: Store, tmp_path: Path) -> Iterator[Published]:
    """Every media file of ../shared/data/feeds, polled and published. On SQLite only: the
    podcast tests below run on both engines, and this one's 85 feeds cost a minute on each."""
    yield from _publish(sqlite_store, media_files(), tmp_path / "config")


@pytest.fixture
def podcasts(store: Store, tmp_path: Path) -> Iterator[Published]:
    """The real podcast feeds only, polled and published."""
    root = require_shared("data/feeds")
    yield from _publish(store, [root / name for name in PODCASTS], tmp_path / "config")


def test_every_media_file_keeps_its_media_in_every_format(published: Published) -> None:
    assert len(published.sources) >= 80
    lines, problems = [], []
    totals = {"in": [0, 0], "atom": [0, 0], "rss": [0, 0], "json": [0, 0]}
    for sid, path in published.sources.items():
        served = published.server.url(f"/{sid}.xml")
        expected = counts_in(feedparser.parse(path.read_bytes()), served)
        out = {}
        for fmt in ("atom", "rss", "json"):
            document = published.outputs.feed(FeedName(sid, None, fmt))
            out[fmt] = counts_out(fmt, document.body) if document is not None else Counts()
        name = path.relative_to(require_shared("data/feeds"))
        line = (
            f"{name}: items {expected.items}/{out['atom'].items}, with enclosure/picture "
            f"in {expected.with_enclosure}/{expected.with_picture} "
            + " ".join(f"{fmt} {c.with_enclosure}/{c.with_picture}" for fmt, c in out.items())
        )
        lines.append(line)
        totals["in"][0] += expected.with_enclosure
        totals["in"][1] += expected.with_picture
        # Items the store keeps apart from media (a repeated guid) may be fewer; none of the
        # items that come out may lose its media.
        dropped = expected.items - out["atom"].items
        for fmt, counted in out.items():
            totals[fmt][0] += counted.with_enclosure
            totals[fmt][1] += counted.with_picture
            if (
                counted.items != expected.items - dropped
                or not 0 <= expected.with_enclosure - counted.with_enclosure <= dropped
                or not 0 <= expected.with_picture - counted.with_picture <= dropped
            ):
                problems.append(f"{fmt}: {line}")
        # Atom and JSON Feed carry all of an item's enclosures: no URL is lost.
        for fmt in ("atom", "json"):
            lost = expected.enclosure_urls - out[fmt].enclosure_urls
            if lost and not dropped:
                problems.append(f"{fmt} lost {sorted(lost)[:2]}: {line}")
    report = "\n".join([*lines, f"total (items with enclosure, with picture): {totals}"])
    print(report)
    assert problems == [], "\n".join(problems)


def test_podcast_outputs_validate(podcasts: Published) -> None:
    feedvalidator.require_validator()
    for sid in sorted(podcasts.sources):
        for fmt in ("atom", "rss"):
            document = podcasts.outputs.feed(FeedName(sid, None, fmt))
            assert document is not None
            url = f"{BASE}/feeds/{sid}.{fmt}"
            events = feedvalidator.validate(document.body, base=url, content_type=MEDIA_TYPES[fmt])
            assert feedvalidator.errors(events) == [], f"{url}:\n" + "\n".join(events)
        document = podcasts.outputs.feed(FeedName(sid, None, "json"))
        assert document is not None
        assert any("attachments" in item for item in json_feed(document.body)["items"])


def test_reader_sees_every_episode(podcasts: Published, store: Store, tmp_path: Path) -> None:
    with serve_app(create_app(store=store, outputs=podcasts.outputs)) as base:
        for sid, path in sorted(podcasts.sources.items()):
            episodes = _podcast_episodes(path)
            for fmt in ("atom", "rss", "json"):
                url = f"{base}/feeds/{sid}.{fmt}"
                reader = make_reader(str(tmp_path / f"{sid}-{fmt}.sqlite"))
                try:
                    reader.add_feed(url)
                    reader.update_feeds()
                    assert reader.get_feed(url).last_exception is None
                    got = {
                        e.href
                        for entry in reader.get_entries()
                        for e in entry.enclosures
                        if (e.type or "").startswith("audio/")
                    }
                finally:
                    reader.close()
                assert got == episodes, (path, fmt)


def _podcast_episodes(path: Path) -> set[str]:
    return {
        e["href"]
        for entry in feedparser.parse(path.read_bytes()).entries
        for e in entry.get("enclosures", [])
        if e.get("type", "").startswith("audio/")
    }


@pytest.mark.skipif(
    NEWSBOAT is None and os.environ.get("CI") != "true",
    reason="newsboat is not installed (apt-get install -y newsboat)",
)
def test_newsboat_stores_and_queues_every_episode(
    podcasts: Published, store: Store, tmp_path: Path
) -> None:
    assert NEWSBOAT is not None
    with serve_app(create_app(store=store, outputs=podcasts.outputs)) as base:
        for sid, path in sorted(podcasts.sources.items()):
            episodes = _podcast_episodes(path)
            assert episodes, path
            for fmt in ("rss", "atom"):
                home = tmp_path / f"{sid}-{fmt}"
                url = f"{base}/feeds/{sid}.{fmt}"
                stored, queued = _newsboat(url, home)
                assert stored == episodes, (path, fmt)
                assert queued == episodes, (path, fmt)


def _newsboat(url: str, home: Path) -> tuple[set[str], set[str]]:
    """Run newsboat's scripted reload with podcast auto-enqueue: the enclosure URLs it stored
    and those it put in podboat's queue."""
    # newsboat keeps podboat's queue in ~/.newsboat when that directory exists.
    (home / ".newsboat").mkdir(parents=True)
    (home / "urls").write_text(url + "\n", encoding="utf-8")
    queue = home / ".newsboat" / "queue"
    (home / "config").write_text(
        f'podcast-auto-enqueue yes\ndownload-path "{home / "downloads"}"\n', encoding="utf-8"
    )
    assert NEWSBOAT is not None
    result = subprocess.run(
        [
            NEWSBOAT,
            "-x",
            "reload",
            "-u",
            str(home / "urls"),
            "-c",
            str(home / "cache.db"),
            "-C",
            str(home / "config"),
            "-d",
            str(home / "log"),
            "-l",
            "4",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(home / "cache.db") as db:
        stored = {
            row[0]
            for row in db.execute(
                "SELECT enclosure_url FROM rss_item WHERE feedurl = ? AND enclosure_url != ''",
                (url,),
            )
        }
    queued = set()
    if queue.exists():
        queued = {line.split(" ", 1)[0] for line in queue.read_text().splitlines() if line}
    return stored, queued

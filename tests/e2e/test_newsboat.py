"""newsboat, a real terminal feed reader (Debian's package), loads our served Atom and RSS feeds
in a scripted run (``newsboat -x reload``) and stores every item with the right title, link,
date and id, the representative's article also for stories with English, French and German
versions, in every Atom and RSS variant; a second reload is answered from its stored validators.

.ci/run installs Debian's newsboat package; elsewhere the test skips when the binary is absent
(``apt-get install newsboat``), and fails in CI. newsboat 2.21 (Debian 12) reads XML feeds
only, not JSON Feed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.publishing.outputs import Outputs
from aggregator.store import Store
from aggregator.web import create_app
from tests.e2e.test_clients import add_multilingual_stories
from tests.integration.test_outputs import Newsroom, outputs_for
from tests.support.builders import NOW, entry
from tests.support.webserver import serve_app

NEWSBOAT = shutil.which("newsboat")
TIMEOUT_SECONDS = 60

pytestmark = pytest.mark.skipif(
    NEWSBOAT is None and os.environ.get("CI") != "true",
    reason="newsboat is not installed (apt-get install -y newsboat)",
)


@dataclass
class Served:
    base: str
    outputs: Outputs


@pytest.fixture
def served(store: Store, tmp_path: Path) -> Iterator[Served]:
    room = Newsroom(store)
    for n in range(3):
        room.story(f"s{n}")
    room.poll(
        "fr-a",
        entry(
            "fr",
            title="Grève générale",
            language="fr",
            published_at=NOW + timedelta(hours=9),
            url="https://fr.example/greve",
        ),
    )
    add_multilingual_stories(room)
    outputs = outputs_for(store, tmp_path / "archives", feed_size=50)
    with serve_app(create_app(store=store, outputs=outputs)) as base:
        yield Served(base, outputs)


def reload(url: str, home: Path) -> list[tuple[str, str, int, str]]:
    """Run newsboat once over ``url``; the items it stored (title, url, date, guid)."""
    home.mkdir(exist_ok=True)
    (home / "urls").write_text(url + "\n", encoding="utf-8")
    cache = home / "cache.db"
    env = {**os.environ, "HOME": str(home)}
    assert NEWSBOAT is not None
    result = subprocess.run(
        [
            NEWSBOAT,
            "-x",
            "reload",
            "-u",
            str(home / "urls"),
            "-c",
            str(cache),
            "-d",
            str(home / "log"),
            "-l",
            "4",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    log = (home / "log").read_text(encoding="utf-8", errors="replace")
    assert "USERERROR" not in log, log
    with sqlite3.connect(cache) as db:
        return sorted(
            db.execute(
                "SELECT title, url, pubDate, guid FROM rss_item WHERE feedurl = ?", (url,)
            ).fetchall()
        )


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/news.atom",
        "/feeds/news.rss",
        "/feeds/news.fr.atom",
        "/feeds/news.fr.rss",
        "/feeds/news.en.atom",
    ],
)
def test_newsboat_loads_every_item(served: Served, path: str, tmp_path: Path) -> None:
    items = reload(served.base + path, tmp_path / "home")
    document = served.outputs.document(path.removeprefix("/"))
    assert document is not None
    name = path.rsplit("/", 1)[-1]
    lang = name.split(".")[1] if name.count(".") == 2 else None
    feed = served.outputs.output_feed(served.outputs.catalog.category("news"), lang)
    expected = sorted(
        (
            s.representative.title,
            s.representative.url or "",
            int(s.representative.published_at.timestamp()),
            guid,
        )
        for s, guid in zip(feed.stories, _guids(document.body), strict=True)
    )
    assert items == expected
    assert len(items) == {None: 6, "fr": 3, "en": 5}[lang]
    # The stories of three versions open the article in the feed's language.
    links = {url for _title, url, _date, _guid in items}
    wanted = (
        {"https://fr.example/traite", "https://fr.example/crue"}
        if lang == "fr"
        else {"https://en.example/treaty", "https://en.example/floods"}
    )
    assert wanted <= links
    assert not links & {"https://de.example/vertrag", "https://de.example/hochwasser"}
    # Later runs keep the same items; newsboat stores our ETag (of the gzip coding it asked
    # for) from the second run on and sends it back.
    assert reload(served.base + path, tmp_path / "home") == items
    with sqlite3.connect(tmp_path / "home" / "cache.db") as db:
        (etag,) = db.execute("SELECT etag FROM rss_feed").fetchone()
    assert etag == document.etag_for("gzip")
    assert reload(served.base + path, tmp_path / "home") == items


def _guids(body: bytes) -> list[str]:
    """Item ids in document order, from Atom <id> inside entries or RSS <guid>."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(body)
    atom = "{http://www.w3.org/2005/Atom}"
    ids = [e.findtext(f"{atom}id") for e in root.iter(f"{atom}entry")]
    ids += [i.findtext("guid") for i in root.iter("item")]
    return [i for i in ids if i]

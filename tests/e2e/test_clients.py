"""Real client libraries read our served outputs correctly: feedparser (Atom, RSS) and
lemon24/reader (Atom, RSS, JSON Feed) get each item's title, link, date and language; every
JSON document passes the JSON Feed 1.1 schema. feedparser 6.0 has no JSON Feed support, so
JSON items are checked through reader and the schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from reader import EntrySort, make_reader

from aggregator.store import Store
from aggregator.web import create_app
from tests.integration.test_outputs import Newsroom, outputs_for
from tests.support.builders import NOW, entry
from tests.support.outputchecks import json_feed
from tests.support.webserver import serve_app


@dataclass(frozen=True)
class Expected:
    title: str
    link: str
    published: datetime
    language: str


@dataclass
class Site:
    base: str
    live: list[Expected]
    french: list[Expected]


def _when(hours: int) -> datetime:
    return NOW + timedelta(hours=hours)


@pytest.fixture
def site(store: Store, tmp_path: Path) -> Iterator[Site]:
    room = Newsroom(store)
    room.poll(
        "en-a",
        entry(
            "en-only", title="Markets rally", published_at=_when(1), url="https://en.example/rally"
        ),
    )
    room.poll(
        "fr-a",
        entry(
            "fr-only",
            title="Grève des cheminots",
            language="fr",
            published_at=_when(2),
            url="https://fr.example/greve",
        ),
    )
    room.poll(
        "en-a",
        entry(
            "both-en", title="Summit ends", published_at=_when(3), url="https://en.example/summit"
        ),
    )
    room.poll(
        "fr-a",
        entry(
            "both-fr",
            title="Fin du sommet",
            language="fr",
            published_at=_when(4),
            url="https://en.example/summit",
        ),
    )
    add_multilingual_stories(room)
    # The story of both languages is an English item in the main feed, a French one in .fr;
    # each story of three versions opens its English, or French, article.
    live = [
        Expected("Floods close the Rhine", "https://en.example/floods", _when(10), "en"),
        Expected("Treaty signed", "https://en.example/treaty", _when(5), "en"),
        Expected("Summit ends", "https://en.example/summit", _when(3), "en"),
        Expected("Grève des cheminots", "https://fr.example/greve", _when(2), "fr"),
        Expected("Markets rally", "https://en.example/rally", _when(1), "en"),
    ]
    french = [
        Expected("Crue : le Rhin fermé", "https://fr.example/crue", _when(9), "fr"),
        Expected("Traité signé", "https://fr.example/traite", _when(6), "fr"),
        Expected("Fin du sommet", "https://en.example/summit", _when(4), "fr"),
        Expected("Grève des cheminots", "https://fr.example/greve", _when(2), "fr"),
    ]
    outputs = outputs_for(store, tmp_path / "archives", feed_size=50)
    with serve_app(create_app(store=store, outputs=outputs)) as base:
        yield Site(base, live, french)


def add_multilingual_stories(room: Newsroom) -> None:
    """Two stories with an English, a French and a German version, each at its own URL (one
    story because they share their text's hash): the treaty first seen in English, the floods
    in German, so the representative is neither always the first nor the last version."""
    treaty = {"content_hash": "treaty-hash"}
    room.poll(
        "en-a",
        entry(
            "treaty-en",
            title="Treaty signed",
            published_at=_when(5),
            updated_at=_when(5),
            url="https://en.example/treaty",
            **treaty,
        ),
    )
    room.poll(
        "fr-a",
        entry(
            "treaty-fr",
            title="Traité signé",
            language="fr",
            published_at=_when(6),
            updated_at=_when(6),
            url="https://fr.example/traite",
            **treaty,
        ),
    )
    room.poll(
        "de-a",
        entry(
            "treaty-de",
            title="Vertrag unterzeichnet",
            language="de",
            published_at=_when(7),
            updated_at=_when(7),
            url="https://de.example/vertrag",
            **treaty,
        ),
    )
    floods = {"content_hash": "floods-hash"}
    room.poll(
        "de-a",
        entry(
            "floods-de",
            title="Hochwasser: Rhein gesperrt",
            language="de",
            published_at=_when(8),
            updated_at=_when(8),
            url="https://de.example/hochwasser",
            **floods,
        ),
    )
    room.poll(
        "fr-a",
        entry(
            "floods-fr",
            title="Crue : le Rhin fermé",
            language="fr",
            published_at=_when(9),
            updated_at=_when(9),
            url="https://fr.example/crue",
            **floods,
        ),
    )
    room.poll(
        "en-a",
        entry(
            "floods-en",
            title="Floods close the Rhine",
            published_at=_when(10),
            updated_at=_when(10),
            url="https://en.example/floods",
            **floods,
        ),
    )


def _sorted(items: list[Expected]) -> list[Expected]:
    return sorted(items, key=lambda e: e.published, reverse=True)


@pytest.mark.parametrize("fmt", ["atom", "rss"])
@pytest.mark.parametrize("variant", ["", ".fr"])
def test_feedparser_reads_every_item(site: Site, fmt: str, variant: str) -> None:
    parsed = feedparser.parse(f"{site.base}/feeds/news{variant}.{fmt}")
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.status == 200
    feed_language = "fr" if variant else "en"
    assert parsed.feed.language == feed_language
    got = []
    for item in parsed.entries:
        # The item's own language: Atom's xml:lang (inherited from the feed when the same),
        # RSS's dc:language (only where it differs from the channel's <language>).
        if fmt == "atom":
            language = item.summary_detail.language
        else:
            language = item.get("language", feed_language)
        link = item.link  # what a reader opens: the representative's article
        published = datetime(*item.published_parsed[:6]).replace(tzinfo=UTC)
        got.append(Expected(item.title, link, published, language))
    expected = site.french if variant else site.live
    assert got == _sorted(expected)
    if fmt == "atom":
        # The other versions stay discoverable: related links with their language and title.
        treaty = next(i for i in parsed.entries if "treaty" in i.link or "traite" in i.link)
        related = {
            (link.hreflang, link.href, link.title) for link in treaty.links if link.rel == "related"
        }
        others = {
            ("en", "https://en.example/treaty", "Treaty signed"),
            ("fr", "https://fr.example/traite", "Traité signé"),
            ("de", "https://de.example/vertrag", "Vertrag unterzeichnet"),
        }
        assert related == {o for o in others if o[1] != treaty.link}
        assert [link.rel for link in treaty.links].count("alternate") == 1
        assert 'hreflang="de">Deutsch' in treaty.summary


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
@pytest.mark.parametrize("variant", ["", ".fr"])
def test_reader_reads_every_item(site: Site, fmt: str, variant: str, tmp_path: Path) -> None:
    url = f"{site.base}/feeds/news{variant}.{fmt}"
    reader = make_reader(str(tmp_path / "reader.sqlite"))
    try:
        reader.add_feed(url)
        reader.update_feeds()
        feed = reader.get_feed(url)
        assert feed.last_exception is None, feed.last_exception
        got = []
        for item in reader.get_entries(sort=EntrySort.RECENT):
            assert item.published is not None
            got.append(
                (
                    item.title,
                    item.link,
                    item.published.astimezone(UTC),
                    [c.language for c in item.content],
                )
            )
    finally:
        reader.close()
    expected = _sorted(site.french if variant else site.live)
    assert sorted(g[:3] for g in got) == sorted((e.title, e.link, e.published) for e in expected)
    if fmt == "json":
        # reader keeps JSON Feed's per-item language with the content.
        languages = {g[0]: g[3] for g in got}
        assert languages == {e.title: [e.language] for e in expected}


def test_every_json_document_passes_the_json_feed_schema(site: Site) -> None:
    import requests

    for path in ("/feeds/news.json", "/feeds/news.en.json", "/feeds/news.fr.json"):
        response = requests.get(site.base + path, timeout=10)
        document = json_feed(response.content)
        assert document["feed_url"] == f"https://agg.example{path}"
    items = json.loads(requests.get(site.base + "/feeds/news.json", timeout=10).content)["items"]
    assert [(i["title"], i["language"]) for i in items] == [
        (e.title, e.language) for e in site.live
    ]


@pytest.mark.slow
def test_demo_items_open_the_representatives_article(store: Store, tmp_path: Path) -> None:
    """The demo's real pipeline (English, French and German sources clustered into stories of
    several versions): feedparser opens each item's representative in every Atom and RSS
    variant of every category."""
    from aggregator.catalog import load_catalog
    from aggregator.demo import FEEDS_DIR, write_demo_config
    from aggregator.demo.feedserver import FeedServer
    from aggregator.publishing.outputs import Outputs
    from aggregator.runtime.service import Service
    from aggregator.settings import Settings

    with FeedServer() as server:
        server.serve_directory(FEEDS_DIR)
        catalog = load_catalog(write_demo_config(tmp_path / "config", server.base_url))
        # As the demo runs: its sample entries are older than the model's default age limit.
        settings = Settings.from_env({"AGGREGATOR_CLUSTERING_MAX_AGE_HOURS": "0"})
        service = Service(settings, store, catalog)
        try:
            assert service.poll().errors == 0
            service.cluster()  # across languages: the multilingual model
        finally:
            service.close()
    outputs = Outputs(
        store=store,
        catalog=catalog,
        base_url="https://news.example.org",
        tag_authority="news.example.org",
        feed_size=50,
    )
    multilingual = 0
    for category in catalog.categories:
        for lang in (None, *category.languages):
            feed = outputs.output_feed(category, lang)
            wanted = [s.representative.url for s in feed.stories]
            multilingual += sum(len({e.language for e in s.entries}) > 1 for s in feed.stories)
            for fmt in ("atom", "rss"):
                suffix = f".{lang}" if lang else ""
                document = outputs.document(f"feeds/{category.id}{suffix}.{fmt}")
                assert document is not None
                links = [e.link for e in feedparser.parse(document.body).entries]
                assert links == wanted, f"{category.id}{suffix}.{fmt}"
    assert multilingual > 0  # stories with several language versions were checked

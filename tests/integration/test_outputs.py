"""Outputs over a real store: rendered once per change, archives that never change, item ids
that survive new language versions, per-language variants and ``publish --out``."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest

from aggregator.catalog import Catalog, CategoryConfig, CategoryText
from aggregator.publishing.outputs import Outputs
from aggregator.store import Store
from aggregator.types import NormalizedEntry
from tests.support.builders import NOW, entry, fetched, match, settle, source
from tests.support.feeds import aggregator, cli_env, write_config
from tests.support.outputchecks import json_feed

BASE = "https://agg.example"
ATOM = "{http://www.w3.org/2005/Atom}"
LANGS = (None, "en", "fr")
FORMATS = ("atom", "rss", "json")
CATEGORIES = """
[[category]]
id = "news"
title = "News"
languages = ["en", "fr"]
"""


def news_catalog() -> Catalog:
    sources = (
        source("en-a"),
        source("en-b"),
        source("fr-a", language="fr"),
        source("de-a", language="de"),
    )
    category = CategoryConfig(
        id="news", title="News", description="All the news", languages=("en", "fr")
    )
    return Catalog(sources=sources, categories=(category,))


class Newsroom:
    """Writes polls into the store, each an hour after the last (first-seen order)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.clock = NOW
        store.sync_sources(news_catalog(), NOW)

    def poll(self, source_id: str, *entries: NormalizedEntry) -> None:
        self.clock += timedelta(hours=1)
        self.store.save_poll(
            source_id,
            fetched(),
            body_hash=None,
            feed_title=None,
            feed_link=None,
            entries=[(e, [match("news")]) for e in entries],
            next_check_at=self.clock,
            now=self.clock,
        )
        settle(self.store)

    def story(self, key: str) -> None:
        when = self.clock + timedelta(hours=1)
        self.poll("en-a", entry(key, published_at=when, updated_at=when))


def outputs_for(
    store: Store, archive_dir: Path | None = None, *, feed_size: int = 3, **options: object
) -> Outputs:
    return Outputs(
        store=store,
        catalog=news_catalog(),
        base_url=BASE,
        tag_authority="agg.example",
        feed_size=feed_size,
        archive_dir=archive_dir,
        **options,  # type: ignore[arg-type]
    )


def test_a_request_renders_nothing_when_nothing_changed(store: Store) -> None:
    room = Newsroom(store)
    room.story("one")
    outputs = outputs_for(store)
    first = outputs.document("feeds/news.atom")
    assert first is not None
    # The same object: the check read the store, found it unchanged, rendered nothing.
    assert outputs.document("feeds/news.atom") is first
    assert outputs.document("categories/news.html") is outputs.document("categories/news.html")
    room.story("two")
    second = outputs.document("feeds/news.atom")
    assert second is not None
    assert second is not first
    assert second.etag != first.etag


def test_between_checks_requests_are_answered_from_memory(store: Store) -> None:
    room = Newsroom(store)
    room.story("one")
    now = [0.0]
    outputs = outputs_for(store, recheck_seconds=30, clock=lambda: now[0])
    assert outputs.cached("feeds/news.rss") is None  # nothing rendered yet
    first = outputs.document("feeds/news.rss")
    assert first is not None
    assert outputs.cached("feeds/news.rss") is first
    room.story("two")
    # Within the interval the store is not asked again, so the change is not seen yet.
    now[0] = 29.0
    assert outputs.cached("feeds/news.rss") is first
    assert outputs.document("feeds/news.rss") is first
    now[0] = 30.0
    assert outputs.cached("feeds/news.rss") is None
    second = outputs.document("feeds/news.rss")
    assert second is not None
    assert second.etag != first.etag
    assert b"Title two" in second.body


def _archives(outputs: Outputs, pages: int) -> dict[str, bytes]:
    found = {}
    for page in range(pages):
        for lang in LANGS:
            for fmt in FORMATS:
                suffix = f".{lang}" if lang else ""
                path = f"feeds/news/archive/{page}{suffix}.{fmt}"
                document = outputs.document(path)
                assert document is not None, path
                assert document.cache_control == "public, max-age=31536000, immutable"
                found[path] = document.body
    return found


def test_archives_stay_byte_identical_after_new_stories_and_new_versions(
    store: Store, tmp_path: Path
) -> None:
    room = Newsroom(store)
    for n in range(7):
        room.story(f"s{n}")
    outputs = outputs_for(store, tmp_path / "archives")
    live = feedparser.parse(outputs.document("feeds/news.atom").body)  # type: ignore[union-attr]
    assert [e.title for e in live.entries] == ["Title s6", "Title s5", "Title s4"]
    links = {link.rel: link.href for link in live.feed.links}
    assert links["prev-archive"] == f"{BASE}/feeds/news/archive/1.atom"
    assert links["next"] == f"{BASE}/feeds/news/archive/1.atom"
    before = _archives(outputs, 2)
    page0 = feedparser.parse(before["feeds/news/archive/0.atom"])
    assert [e.title for e in page0.entries] == ["Title s2", "Title s1", "Title s0"]
    assert outputs.document("feeds/news/archive/2.atom") is None

    # A French version joins a story of page 0, its English text is edited, and six more
    # stories arrive: the live feed moves on, the complete pages do not.
    room.poll(
        "fr-a", entry("s0-fr", url="https://news.example/s0", language="fr", title="Titre s0")
    )
    room.poll(
        "en-a", entry("s0", title="Title s0, edited", updated_at=room.clock + timedelta(minutes=5))
    )
    for n in range(7, 13):
        room.story(f"s{n}")
    assert _archives(outputs, 2) == before
    after = _archives(outputs, 4)
    assert {k: v for k, v in after.items() if "/archive/0" in k or "/archive/1" in k} == before
    # A new process on the same folder serves the same pages, byte for byte.
    restarted = outputs_for(store, tmp_path / "archives")
    assert _archives(restarted, 4) == after
    live = feedparser.parse(restarted.document("feeds/news.atom").body)  # type: ignore[union-attr]
    assert {link.rel: link.href for link in live.feed.links}["prev-archive"] == (
        f"{BASE}/feeds/news/archive/3.atom"
    )
    # Every story is in the live feed or an archive, each archive page once.
    ids = {e.id for e in live.entries}
    for page in range(4):
        ids |= {e.id for e in feedparser.parse(after[f"feeds/news/archive/{page}.atom"]).entries}
    assert len(ids) == 13


def test_archive_pages_link_back_and_forward_and_validate_as_json_feed(store: Store) -> None:
    room = Newsroom(store)
    for n in range(7):
        room.story(f"s{n}")
    outputs = outputs_for(store)
    root = ET.fromstring(outputs.document("feeds/news/archive/1.atom").body)  # type: ignore[union-attr]
    rels = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert rels["self"] == f"{BASE}/feeds/news/archive/1.atom"
    assert rels["current"] == f"{BASE}/feeds/news.atom"
    assert rels["prev-archive"] == f"{BASE}/feeds/news/archive/0.atom"
    assert rels["next-archive"] == f"{BASE}/feeds/news/archive/2.atom"
    for path in (
        "feeds/news.json",
        "feeds/news.fr.json",
        "feeds/news/archive/0.json",
        "feeds/news/archive/1.fr.json",
    ):
        json_feed(outputs.document(path).body)  # type: ignore[union-attr]
    live = json_feed(outputs.document("feeds/news.json").body)  # type: ignore[union-attr]
    assert live["next_url"] == f"{BASE}/feeds/news/archive/1.json"


def test_item_id_stays_while_french_then_german_versions_join(store: Store) -> None:
    room = Newsroom(store)
    url = "https://news.example/ai-plan"
    room.poll("en-a", entry("plan", url=url, title="Korea unveils AI plan"))
    outputs = outputs_for(store, feed_size=50)

    def atom(path: str) -> feedparser.FeedParserDict:
        return feedparser.parse(outputs.document(path).body)  # type: ignore[union-attr]

    first = atom("feeds/news.atom").entries[0]
    assert atom("feeds/news.fr.atom").entries == []

    # The French version was published two hours later: the story's news is that recent.
    later = NOW + timedelta(hours=2)
    room.poll(
        "fr-a",
        entry(
            "plan-fr",
            url=url,
            language="fr",
            title="La Corée dévoile son plan IA",
            published_at=later,
            updated_at=later,
        ),
    )
    with_fr = atom("feeds/news.atom").entries[0]
    assert with_fr.id == first.id
    assert with_fr.title == "Korea unveils AI plan"
    assert with_fr.updated_parsed > first.updated_parsed
    assert with_fr.updated_parsed[:6] == later.timetuple()[:6]
    assert [(link.rel, link.get("hreflang")) for link in with_fr.links] == [
        ("alternate", "en"),
        ("related", "fr"),
    ]
    assert with_fr.link == with_fr.links[0].href
    french = atom("feeds/news.fr.atom").entries
    assert [(e.id, e.title) for e in french] == [(first.id, "La Corée dévoile son plan IA")]
    assert french[0].links[0].href == url

    latest = NOW + timedelta(hours=3)
    room.poll(
        "de-a",
        entry(
            "plan-de",
            url=url,
            language="de",
            title="Korea stellt KI-Plan vor",
            published_at=latest,
            updated_at=latest,
        ),
    )
    for path in ("feeds/news.atom", "feeds/news.rss", "feeds/news.fr.atom"):
        assert [e.id for e in atom(path).entries] == [first.id], path
    with_de = atom("feeds/news.atom").entries[0]
    assert [(link.rel, link.get("hreflang")) for link in with_de.links] == [
        ("alternate", "en"),
        ("related", "fr"),
        ("related", "de"),
    ]
    assert with_de.updated_parsed > with_fr.updated_parsed
    assert "Deutsch (de-a)" in with_de.summary
    assert atom("feeds/news.fr.atom").entries[0].title == "La Corée dévoile son plan IA"
    items = json_feed(outputs.document("feeds/news.json").body)["items"]  # type: ignore[union-attr]
    assert [i["id"] for i in items] == [first.id]
    assert [v["language"] for v in items[0]["_aggregator"]["versions"]] == ["fr", "de"]


def test_language_variant_omits_or_falls_back_as_configured(store: Store) -> None:
    room = Newsroom(store)
    room.poll("en-a", entry("only-en", url="https://news.example/only-en", title="Only in English"))
    room.poll(
        "fr-a",
        entry("fr", url="https://news.example/fr", language="fr", title="Seulement en français"),
    )
    omit = outputs_for(store, feed_size=50)
    fallback = outputs_for(store, feed_size=50, variant_fallback=True)

    def entries(outputs: Outputs, path: str) -> list[tuple[str, str | None]]:
        document = outputs.document(path)
        assert document is not None
        parsed = feedparser.parse(document.body)
        return [(e.title, e.get("language")) for e in parsed.entries]

    assert [t for t, _ in entries(omit, "feeds/news.fr.atom")] == ["Seulement en français"]
    shown = entries(fallback, "feeds/news.fr.atom")
    assert [t for t, _ in shown] == ["Seulement en français", "Only in English"]
    # The fallback item says which language it is in, unlike the feed around it.
    document = fallback.document("feeds/news.fr.atom")
    assert document is not None
    assert b'xml:lang="en"' in document.body
    assert b'xml:lang="fr"' in document.body

    # A category's own ``variants`` wins over the service-wide setting, either way.
    def with_variants(mode: str) -> Catalog:
        catalog = news_catalog()
        [category] = catalog.categories
        return dataclasses.replace(
            catalog, categories=(dataclasses.replace(category, variants=mode),)
        )

    own_fallback = outputs_for(store, feed_size=50)
    own_fallback.use_catalog(with_variants("fallback"))
    assert len(entries(own_fallback, "feeds/news.fr.atom")) == 2
    own_omit = outputs_for(store, feed_size=50, variant_fallback=True)
    own_omit.use_catalog(with_variants("omit"))
    assert len(entries(own_omit, "feeds/news.fr.atom")) == 1


@pytest.mark.slow
def test_publish_out_writes_archives_pages_and_only_what_changed(
    store: Store, tmp_path: Path
) -> None:
    room = Newsroom(store)
    for n in range(4):
        room.story(f"s{n}")
    sources = "".join(
        f'[[source]]\nid = "{s.id}"\nurl = "{s.url}"\ncategories = ["news"]\n'
        for s in news_catalog().sources
    )
    config = write_config(tmp_path / "config", sources, CATEGORIES)
    url = str(store.engine.url.render_as_string(hide_password=False))
    env_dir = tmp_path / "archives"
    options = ["--config", str(config), "--database", url]
    out = tmp_path / "site"
    env = cli_env(
        AGGREGATOR_FEED_SIZE="3", AGGREGATOR_ARCHIVE_DIR=str(env_dir), AGGREGATOR_BASE_URL=BASE
    )
    first = aggregator("publish", "--out", str(out), *options, env=env)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert "index.html" in written
    assert "categories/news.html" in written
    assert "feeds.opml" in written
    for lang in ("", ".en", ".fr"):
        for fmt in FORMATS:
            assert f"feeds/news{lang}.{fmt}" in written
            assert f"feeds/news/archive/0{lang}.{fmt}" in written
    assert f"{len(written)} written, 0 unchanged" in first.stdout
    archive = (out / "feeds/news/archive/0.atom").read_bytes()
    assert b"<fh:archive/>" in archive
    again = aggregator("publish", "--out", str(out), *options, env=env)
    assert f"0 written, {len(written)} unchanged" in again.stdout

    room.story("s4")
    third = aggregator("publish", "--out", str(out), *options, env=env)
    # The live feeds and pages changed; the archive page did not.
    assert (out / "feeds/news/archive/0.atom").read_bytes() == archive
    # ": " before the count: "10 written" is not "0 written".
    assert ": 0 written" not in third.stdout
    assert b"Title s4" in (out / "feeds/news.atom").read_bytes()


def test_updated_is_the_news_time_not_the_processing_time(store: Store) -> None:
    """A month-old story whose French version arrives today: every output dates it by its
    members' own times, not by the poll that stored the French version."""
    room = Newsroom(store)
    old = NOW - timedelta(days=30)
    newest = old + timedelta(hours=5)
    url = "https://news.example/old"
    room.poll("en-a", entry("old-en", url=url, title="Old news", published_at=old, updated_at=old))
    room.poll(
        "fr-a",
        entry(
            "old-fr",
            url=url,
            language="fr",
            title="Vieilles nouvelles",
            published_at=old + timedelta(hours=1),
            updated_at=newest,
        ),
    )
    (stored,) = store.category_stories("news", 10)
    assert stored.updated_at > NOW  # the store's own time: when the French version came
    outputs = outputs_for(store, feed_size=50)

    atom_doc = outputs.document("feeds/news.atom")
    assert atom_doc is not None
    parsed = feedparser.parse(atom_doc.body)
    assert parsed.feed.updated_parsed[:6] == newest.timetuple()[:6]
    assert parsed.entries[0].updated_parsed[:6] == newest.timetuple()[:6]
    assert atom_doc.last_modified == newest
    rss_doc = outputs.document("feeds/news.rss")
    assert rss_doc is not None
    assert feedparser.parse(rss_doc.body).feed.updated_parsed[:6] == newest.timetuple()[:6]
    json_doc = outputs.document("feeds/news.json")
    assert json_doc is not None
    (item,) = json_feed(json_doc.body)["items"]
    assert item["date_modified"] == newest.isoformat().replace("+00:00", "Z")
    page = outputs.document("categories/news.html")
    assert page is not None
    assert page.last_modified == newest
    assert f'datetime="{newest.isoformat().replace("+00:00", "Z")}"' in page.body.decode()
    for path in ("feeds.opml", "index.html"):
        document = outputs.document(path)
        assert document is not None
        assert document.last_modified == newest, path


def test_publish_out_needs_a_public_url(store: Store, tmp_path: Path) -> None:
    """Static files are served from elsewhere: links to the local server would be wrong."""
    Newsroom(store).story("s0")
    sources = "".join(
        f'[[source]]\nid = "{s.id}"\nurl = "{s.url}"\ncategories = ["news"]\n'
        for s in news_catalog().sources
    )
    config = write_config(tmp_path / "config", sources, CATEGORIES)
    url = str(store.engine.url.render_as_string(hide_password=False))
    out = tmp_path / "site"
    options = ["publish", "--out", str(out), "--config", str(config), "--database", url]
    env = cli_env(AGGREGATOR_ARCHIVE_DIR=str(tmp_path / "archives"))
    refused = aggregator(*options, env=env, check=False)
    assert refused.returncode != 0
    assert "AGGREGATOR_BASE_URL" in refused.stderr
    assert "--base-url" in refused.stderr
    assert not out.exists()  # nothing half-written with wrong links
    bad = aggregator(*options, "--base-url", "feeds.example.org", env=env, check=False)
    assert bad.returncode != 0
    assert "--base-url 'feeds.example.org'" in bad.stderr
    aggregator(*options, "--base-url", "https://static.example/news/", env=env)
    atom_feed = (out / "feeds/news.atom").read_text(encoding="utf-8")
    assert "https://static.example/news/feeds/news.atom" in atom_feed
    assert "127.0.0.1" not in atom_feed


def test_site_title_and_description_and_index_headlines(store: Store) -> None:
    room = Newsroom(store)
    for n in range(7):
        room.story(f"s{n}")
    outputs = outputs_for(
        store,
        feed_size=50,
        site_title="Policy Watch & Co",
        site_description="AI policy news in three languages",
    )

    def body(path: str) -> str:
        document = outputs.document(path)
        assert document is not None
        return document.body.decode("utf-8")

    index = body("index.html")
    assert "<title>Policy Watch &amp; Co</title>" in index
    assert "<p>AI policy news in three languages</p>" in index
    # The newest five headlines of the category, newest first, each linking its article.
    headlines = [f"Title s{n}" for n in (6, 5, 4, 3, 2)]
    positions = [
        index.index(f'<a href="https://news.example/s{n}">Title s{n}</a>') for n in (6, 5, 4, 3, 2)
    ]
    assert positions == sorted(positions), headlines
    assert "Title s1" not in index
    assert "Policy Watch &amp; Co" in body("categories/news.html")
    opml = ET.fromstring(body("feeds.opml"))
    assert opml.findtext("head/title") == "Policy Watch & Co"
    atom_feed = feedparser.parse(body("feeds/news.atom"))
    assert atom_feed.feed.author == "Policy Watch & Co"
    assert json_feed(body("feeds/news.json").encode())["authors"] == [{"name": "Policy Watch & Co"}]


def test_site_title_setting_reaches_the_outputs() -> None:
    from aggregator.errors import ConfigError
    from aggregator.settings import Settings

    settings = Settings.from_env(
        {"AGGREGATOR_SITE_TITLE": "  Policy   Watch ", "AGGREGATOR_SITE_DESCRIPTION": "News"}
    )
    assert (settings.site_title, settings.site_description) == ("Policy Watch", "News")
    assert Settings.from_env({}).site_title == "Aggregator feeds"
    with pytest.raises(ConfigError, match="AGGREGATOR_SITE_TITLE"):
        Settings.from_env({"AGGREGATOR_SITE_TITLE": "x" * 301})


def test_each_language_has_its_page_and_the_variants_use_the_translated_title(store: Store) -> None:
    room = Newsroom(store)
    room.poll(
        "fr-a",
        entry("fr", url="https://news.example/fr", language="fr", title="Seulement en français"),
    )
    catalog = news_catalog()
    [category] = catalog.categories
    translated = dataclasses.replace(
        category, translations=(CategoryText("fr", "Actualités", "Toutes les nouvelles"),)
    )
    outputs = outputs_for(store, feed_size=50)
    outputs.use_catalog(dataclasses.replace(catalog, categories=(translated,)))
    page = outputs.document("categories/news.fr.html")
    assert page is not None
    text = page.body.decode("utf-8")
    assert '<html lang="fr" dir="ltr">' in text
    assert '<h1 dir="auto">Actualités</h1>' in text
    assert '<p dir="auto">Toutes les nouvelles</p>' in text
    assert "Seulement en français" in text
    assert outputs.document("categories/news.en.html") is not None
    assert outputs.document("categories/news.de.html") is None  # not one of its languages
    feed = outputs.document("feeds/news.fr.atom")
    assert feed is not None
    root = ET.fromstring(feed.body)
    assert root.findtext(f"{ATOM}title") == "Actualités"
    assert root.findtext(f"{ATOM}subtitle") == "Toutes les nouvelles"
    # Without a translation the variant keeps the category's title, told apart by its code.
    english = outputs.document("feeds/news.en.atom")
    assert english is not None
    assert ET.fromstring(english.body).findtext(f"{ATOM}title") == "News (en)"
    paths = [path for path, _ in outputs.all_documents()]
    for name in ("news", "news.en", "news.fr"):
        assert f"categories/{name}.html" in paths

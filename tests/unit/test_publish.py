"""Unit tests for aggregator.publishing.formats: hand-built OutputFeeds, read back with
feedparser/etree.

The sample builders here (``sample_feed``, ``empty_feed``) are also used by the W3C validator
integration test, so both check the same documents.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import feedparser
import pytest

from aggregator.errors import PublishError
from aggregator.publishing import formats as publish
from aggregator.publishing.formats import (
    MEDIA_TYPES,
    feed_url,
    render_atom,
    render_json,
    render_opml,
    render_rss,
    story_item_id,
)
from aggregator.types import EntryView, OutputFeed, StoryView

BASE = "https://news.example.org"
AUTHORITY = "news.example.org"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _t(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def _entry(
    entry_id: int,
    source: str,
    language: str | None,
    url: str | None,
    title: str,
    *,
    summary: str = "",
    published: datetime | None = None,
    author: str | None = None,
) -> EntryView:
    when = published or _t(27, 8)
    return EntryView(
        entry_id=entry_id,
        source_id=source.lower().replace(" ", "-"),
        source_title=source,
        url=url,
        title=title,
        summary_html=summary,
        language=language,
        published_at=when,
        updated_at=when,
        author=author,
    )


def korea_story() -> StoryView:
    """English representative, French/Korean/German versions, two French sources."""
    return StoryView(
        story_id=1,
        uid="01JD3K7Q5Z8XKOREA",
        first_seen=_t(26, 23, 30),
        updated_at=_t(27, 12),
        entries=(
            _entry(
                11,
                "Korea Herald",
                "en",
                "https://www.koreaherald.example/ai-plan",
                "Korea unveils national AI plan",
                summary="<p>Seoul&#39;s plan: <b>R&amp;D</b> &lt;2030&gt; &amp; more.</p>",
                published=_t(27, 9),
                author="Kim Min-ji",
            ),
            _entry(
                12,
                "Le Monde",
                "fr",
                "https://www.lemonde.example/ia-coree",
                "La Corée dévoile son plan pour l'IA",
                published=_t(27, 10),
            ),
            _entry(13, "Libération", "fr", "https://www.liberation.example/ia", "Plan IA"),
            _entry(14, "Yonhap", "ko", "https://yna.example/ai", "한국, 국가 AI 계획 발표"),
            _entry(15, "FAZ", "de", None, "Korea stellt KI-Plan vor"),
        ),
    )


def french_story() -> StoryView:
    """A French representative in an English feed: needs xml:lang on the entry."""
    return StoryView(
        story_id=2,
        uid="01JD3K7Q5Z8XFRANCE",
        first_seen=_t(25, 7),
        updated_at=_t(26, 18, 45),
        entries=(
            _entry(
                21,
                "Le Figaro",
                "fr",
                "https://www.lefigaro.example/ia-act",
                "L'AI Act entre en vigueur",
                summary="<p>Le règlement européen « AI Act » s’applique.</p>",
                published=_t(25, 7),
                author="Marie Dupont",
            ),
            _entry(22, "Euractiv", "en", "https://euractiv.example/ai-act", "AI Act in force"),
        ),
    )


def no_url_story() -> StoryView:
    """A story whose representative has no URL and no other versions."""
    return StoryView(
        story_id=3,
        uid="01JD3K7Q5Z8XNOURL",
        first_seen=_t(24, 5),
        updated_at=_t(24, 6),
        entries=(
            _entry(
                31,
                "Press Wire",
                "en",
                None,
                'Statement <on> AI & "safety"',
                summary='Plain text summary with a <a href="https://x.example/?a=1&amp;b=2">'
                "link</a>.",
                published=_t(24, 5),
            ),
            _entry(32, "Press Wire", "en", "https://wire.example/1", "Statement (copy)"),
        ),
    )


def sample_feed(language: str | None = "en") -> OutputFeed:
    return OutputFeed(
        category_id="ai-policy",
        title="AI policy",
        description="Laws & rules on artificial intelligence, in every language",
        language=language,
        base_url=BASE,
        tag_authority=AUTHORITY,
        stories=(korea_story(), french_story(), no_url_story()),
        fallback_updated=_t(1),
        languages=("en", "fr"),
    )


def empty_feed() -> OutputFeed:
    return OutputFeed(
        category_id="quiet",
        title="Quiet category",
        description="",
        language="en",
        base_url=BASE,
        tag_authority=AUTHORITY,
        stories=(),
        fallback_updated=_t(1, 12),
    )


def _parse(data: bytes) -> Any:
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


# --- URLs and ids ---------------------------------------------------------------------------


def test_feed_url_shapes() -> None:
    assert feed_url(BASE, "ai-policy", "atom") == f"{BASE}/feeds/ai-policy.atom"
    assert feed_url(BASE, "ai-policy", "json", "fr") == f"{BASE}/feeds/ai-policy.fr.json"
    assert feed_url(BASE + "/", "ai-policy", "rss") == f"{BASE}/feeds/ai-policy.rss"
    with pytest.raises(ValueError, match="format"):
        feed_url(BASE, "ai-policy", "html")


def test_story_item_id_is_a_stable_tag_uri() -> None:
    story = korea_story()
    assert story_item_id(AUTHORITY, story) == f"tag:{AUTHORITY},2026:story/01JD3K7Q5Z8XKOREA"
    # The date is fixed: the same story first seen on another day (a rebuild) keeps its id.
    shifted = StoryView(
        story_id=story.story_id,
        uid=story.uid,
        first_seen=story.first_seen.astimezone(timezone(timedelta(hours=9))) + timedelta(days=40),
        updated_at=story.updated_at,
        entries=story.entries,
    )
    assert story_item_id(AUTHORITY, shifted) == story_item_id(AUTHORITY, story)


def test_media_types() -> None:
    assert MEDIA_TYPES["atom"] == "application/atom+xml; charset=utf-8"
    assert MEDIA_TYPES["rss"] == "application/rss+xml; charset=utf-8"
    assert MEDIA_TYPES["json"] == "application/feed+json; charset=utf-8"
    assert MEDIA_TYPES["opml"] == "text/x-opml; charset=utf-8"


# --- Atom -----------------------------------------------------------------------------------


def test_atom_feed_level_fields() -> None:
    parsed = _parse(render_atom(sample_feed()))
    assert parsed.version == "atom10"
    feed = parsed.feed
    assert feed.id == f"tag:{AUTHORITY},2026:feed/ai-policy"
    assert feed.title == "AI policy"
    assert feed.subtitle == "Laws & rules on artificial intelligence, in every language"
    assert feed.language == "en"
    assert feed.updated_parsed[:6] == (2026, 11, 27, 12, 0, 0)
    assert feed.generator == "aggregator"
    links = {(link.rel, link.href, link.get("type")) for link in feed.links}
    assert ("self", f"{BASE}/feeds/ai-policy.atom", "application/atom+xml") in links
    assert ("alternate", f"{BASE}/", "text/html") in links


def test_atom_items_round_trip() -> None:
    parsed = _parse(render_atom(sample_feed()))
    ids = [e.id for e in parsed.entries]
    assert ids == [
        f"tag:{AUTHORITY},2026:story/01JD3K7Q5Z8XKOREA",
        f"tag:{AUTHORITY},2026:story/01JD3K7Q5Z8XFRANCE",
        f"tag:{AUTHORITY},2026:story/01JD3K7Q5Z8XNOURL",
    ]
    korea, france, no_url = parsed.entries

    assert korea.title == "Korea unveils national AI plan"
    # The representative's link is the only alternate, so the link a reader opens is it.
    assert korea.link == "https://www.koreaherald.example/ai-plan"
    assert korea.published_parsed[:6] == (2026, 11, 27, 9, 0, 0)
    assert korea.updated_parsed[:6] == (2026, 11, 27, 12, 0, 0)
    assert korea.author == "Kim Min-ji"
    links = [(link.rel, link.get("hreflang"), link.href) for link in korea.links]
    # The other versions are related links, one per language; the German version has no URL
    # so no link, and the second French source does not add a second "fr" link.
    assert links == [
        ("alternate", "en", "https://www.koreaherald.example/ai-plan"),
        ("related", "fr", "https://www.lemonde.example/ia-coree"),
        ("related", "ko", "https://yna.example/ai"),
    ]
    assert [link.get("title") for link in korea.links] == [
        None,
        "La Corée dévoile son plan pour l'IA",
        "한국, 국가 AI 계획 발표",
    ]
    # Same language as the feed: inherits it, no xml:lang of its own.
    assert korea.summary_detail.language == "en"

    assert france.title == "L'AI Act entre en vigueur"
    assert france.link == "https://www.lefigaro.example/ia-act"
    assert [(link.rel, link.get("hreflang"), link.href) for link in france.links] == [
        ("alternate", "fr", "https://www.lefigaro.example/ia-act"),
        ("related", "en", "https://euractiv.example/ai-act"),
    ]
    assert france.published_parsed[:6] == (2026, 11, 25, 7, 0, 0)
    assert france.updated_parsed[:6] == (2026, 11, 26, 18, 45, 0)
    assert france.summary_detail.language == "fr"
    assert france.author == "Marie Dupont"

    # No URL: the link falls back to the site's home page and claims no language.
    assert no_url.link == f"{BASE}/"
    assert [link.get("hreflang") for link in no_url.links] == [None]
    assert no_url.title == 'Statement <on> AI & "safety"'


def test_atom_xml_lang_only_where_language_differs() -> None:
    root = ET.fromstring(render_atom(sample_feed()))
    assert root.get(XML_LANG) == "en"
    langs = [entry.get(XML_LANG) for entry in root.iter(f"{ATOM_NS}entry")]
    assert langs == [None, "fr", None]


def test_atom_without_feed_language_tags_every_known_item_language() -> None:
    root = ET.fromstring(render_atom(sample_feed(language=None)))
    assert root.get(XML_LANG) is None
    langs = [entry.get(XML_LANG) for entry in root.iter(f"{ATOM_NS}entry")]
    assert langs == ["en", "fr", "en"]


def test_atom_entry_has_exactly_one_alternate() -> None:
    root = ET.fromstring(render_atom(sample_feed()))
    for entry in root.iter(f"{ATOM_NS}entry"):
        alternates = [
            link
            for link in entry.iter(f"{ATOM_NS}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        assert len(alternates) == 1
        related = [
            link.get("hreflang")
            for link in entry.iter(f"{ATOM_NS}link")
            if link.get("rel") == "related"
        ]
        assert len(related) == len(set(related))


def test_summary_keeps_html_and_lists_versions_and_sources() -> None:
    parsed = _parse(render_atom(sample_feed()))
    korea, france, no_url = parsed.entries
    summary = korea.summary
    assert "<b>R&amp;D</b> &lt;2030&gt; &amp; more." in summary
    assert "Seoul's plan" in summary or "Seoul&#39;s plan" in summary
    assert (
        'Also in: <a href="https://www.lemonde.example/ia-coree" hreflang="fr">'
        "Français (Le Monde)</a>, "
        '<a href="https://yna.example/ai" hreflang="ko">한국어 (Yonhap)</a>, '
        "Deutsch (FAZ)</p>"
    ) in summary
    assert "Sources: Korea Herald, Le Monde, Libération, Yonhap, FAZ" in summary
    assert "Also in: <a" in france.summary
    assert ">English (Euractiv)</a>" in france.summary
    # Same-language copies are not "other versions"; the source is named once.
    assert "Also in" not in no_url.summary
    assert "Sources: Press Wire</p>" in no_url.summary
    assert 'href="https://x.example/?a=1&amp;b=2"' in no_url.summary


def test_unknown_language_code_falls_back_to_the_code() -> None:
    story = StoryView(
        story_id=9,
        uid="u9",
        first_seen=_t(2),
        updated_at=_t(2),
        entries=(
            _entry(91, "A", "en", "https://a.example/", "A"),
            _entry(92, "B", "tlh", "https://b.example/", "B"),
            _entry(93, "C", "pt-BR", "https://c.example/", "C"),
        ),
    )
    feed = OutputFeed("c", "C", "d", "en", BASE, AUTHORITY, (story,), _t(1))
    body = json.loads(render_json(feed))["items"][0]["content_html"]
    assert ">tlh (B)</a>" in body
    assert 'hreflang="pt-BR">Português (C)</a>' in body


# --- RSS ------------------------------------------------------------------------------------


def test_rss_round_trip() -> None:
    data = render_rss(sample_feed())
    parsed = _parse(data)
    assert parsed.version == "rss20"
    feed = parsed.feed
    assert feed.title == "AI policy"
    assert feed.link == f"{BASE}/"
    assert feed.language == "en"
    assert feed.generator == "aggregator"
    self_links = [link.href for link in feed.links if link.rel == "self"]
    assert self_links == [f"{BASE}/feeds/ai-policy.rss"]

    korea, france, no_url = parsed.entries
    assert korea.id == f"tag:{AUTHORITY},2026:story/01JD3K7Q5Z8XKOREA"
    assert korea.guidislink is False
    assert korea.title == "Korea unveils national AI plan"
    assert korea.link == "https://www.koreaherald.example/ai-plan"
    assert korea.published_parsed[:6] == (2026, 11, 27, 9, 0, 0)
    assert korea.author == "Kim Min-ji"
    assert "Français (Le Monde)</a>" in korea.summary
    assert 'href="https://www.lemonde.example/ia-coree"' in korea.summary
    assert france.get("language") == "fr"
    assert "language" not in korea
    assert no_url.link == f"{BASE}/"
    assert no_url.title == 'Statement <on> AI & "safety"'

    root = ET.fromstring(data)
    assert root.findtext("channel/item[3]/title") == 'Statement <on> AI & "safety"'
    # Plain-text "&" and "<" as hex references (RSS Best Practices Profile).
    assert b'<title>Statement &#x3C;on&gt; AI &#x26; "safety"</title>' in data
    assert root.findtext("channel/lastBuildDate") == "Fri, 27 Nov 2026 12:00:00 +0000"


# --- JSON Feed ------------------------------------------------------------------------------

_STRING = str
_JSON_FEED_TOP: dict[str, tuple[type, bool]] = {
    "version": (_STRING, True),
    "title": (_STRING, True),
    "home_page_url": (_STRING, False),
    "feed_url": (_STRING, False),
    "description": (_STRING, False),
    "language": (_STRING, False),
    "items": (list, True),
}
_JSON_FEED_ITEM: dict[str, tuple[type, bool]] = {
    "id": (_STRING, True),
    "url": (_STRING, False),
    "title": (_STRING, False),
    "content_html": (_STRING, False),
    "date_published": (_STRING, False),
    "date_modified": (_STRING, False),
    "authors": (list, False),
    "language": (_STRING, False),
}


def _check_json_feed(document: dict[str, Any]) -> None:
    """The parts of JSON Feed 1.1 we emit: types, required keys, extension-key rule."""
    for fields, obj in [(_JSON_FEED_TOP, document)] + [
        (_JSON_FEED_ITEM, item) for item in document["items"]
    ]:
        for key, (kind, required) in fields.items():
            if required:
                assert key in obj, key
            if key in obj:
                assert isinstance(obj[key], kind), key
        for key in obj:
            assert key in fields or (key.startswith("_") and key[1:2].isalpha()), key
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    for item in document["items"]:
        assert "content_html" in item or "content_text" in item
        for when in ("date_published", "date_modified"):
            # RFC 3339 as Python reads it; "Z" is accepted since 3.11.
            assert datetime.fromisoformat(item[when]).tzinfo is not None
        for author in item.get("authors", []):
            assert isinstance(author.get("name"), str)


def test_json_feed_structure_and_round_trip() -> None:
    data = render_json(sample_feed())
    document = json.loads(data.decode("utf-8"))
    _check_json_feed(document)
    assert list(document) == [
        "version",
        "title",
        "home_page_url",
        "feed_url",
        "description",
        "language",
        "items",
    ]
    assert document["feed_url"] == f"{BASE}/feeds/ai-policy.json"
    assert document["home_page_url"] == f"{BASE}/"
    assert document["language"] == "en"
    korea, france, no_url = document["items"]
    assert korea["id"] == f"tag:{AUTHORITY},2026:story/01JD3K7Q5Z8XKOREA"
    assert korea["url"] == "https://www.koreaherald.example/ai-plan"
    assert korea["date_published"] == "2026-11-27T09:00:00Z"
    assert korea["date_modified"] == "2026-11-27T12:00:00Z"
    assert korea["authors"] == [{"name": "Kim Min-ji"}]
    assert korea["language"] == "en"
    assert france["language"] == "fr"
    assert no_url["url"] == f"{BASE}/"
    assert "authors" not in no_url
    extension = korea["_aggregator"]
    assert [v["language"] for v in extension["versions"]] == ["fr", "ko", "de"]
    assert extension["versions"][2]["url"] is None
    assert extension["sources"] == ["Korea Herald", "Le Monde", "Libération", "Yonhap", "FAZ"]
    # UTF-8 text, not \u escapes.
    assert "한국어".encode() in data


def test_json_per_language_variant_urls() -> None:
    document = json.loads(render_json(sample_feed(), lang="fr"))
    assert document["feed_url"] == f"{BASE}/feeds/ai-policy.fr.json"
    assert document["language"] == "fr"


# --- empty feeds, determinism, errors -------------------------------------------------------


def test_empty_feed_is_still_a_document() -> None:
    feed = empty_feed()
    atom = _parse(render_atom(feed))
    assert atom.version == "atom10"
    assert atom.entries == []
    assert atom.feed.updated_parsed[:6] == (2026, 11, 1, 12, 0, 0)
    rss = _parse(render_rss(feed))
    assert rss.version == "rss20"
    assert rss.entries == []
    # RSS requires a description: an empty one falls back to the title.
    assert rss.feed.subtitle == "Quiet category"
    document = json.loads(render_json(feed))
    _check_json_feed(document)
    assert document["items"] == []
    assert "description" not in document


@pytest.mark.parametrize("render", [render_atom, render_rss, render_json])
def test_rendering_is_deterministic(render: Any) -> None:
    assert render(sample_feed()) == render(sample_feed())
    assert render(empty_feed()) == render(empty_feed())


def test_opml_is_deterministic() -> None:
    feeds = [sample_feed(), empty_feed()]
    assert render_opml(feeds, base_url=BASE, title="All") == render_opml(
        feeds, base_url=BASE, title="All"
    )


def test_naive_datetime_is_a_publish_error() -> None:
    story = korea_story()
    naive = StoryView(
        story_id=story.story_id,
        uid=story.uid,
        first_seen=story.first_seen,
        updated_at=datetime(2026, 11, 1),
        entries=story.entries,
    )
    feed = OutputFeed("c", "C", "d", "en", BASE, AUTHORITY, (naive,), _t(1))
    for render in (render_atom, render_rss, render_json):
        with pytest.raises(PublishError, match="naive"):
            render(feed)


def test_story_without_entries_is_a_publish_error() -> None:
    story = StoryView(story_id=1, uid="x", first_seen=_t(1), updated_at=_t(1), entries=())
    feed = OutputFeed("c", "C", "d", "en", BASE, AUTHORITY, (story,), _t(1))
    with pytest.raises(PublishError, match="no entries"):
        render_atom(feed)


def test_foreign_errors_become_publish_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> bytes:
        raise TypeError("boom")

    monkeypatch.setattr(publish, "_atom", broken)
    with pytest.raises(PublishError, match="ai-policy") as info:
        render_atom(sample_feed())
    assert isinstance(info.value.__cause__, TypeError)


def test_control_characters_are_dropped_not_fatal() -> None:
    story = StoryView(
        story_id=5,
        uid="ctl",
        first_seen=_t(3),
        updated_at=_t(3),
        entries=(_entry(51, "S\x01", "en", "https://s.example/", "Bad\x0b title\x00"),),
    )
    feed = OutputFeed("c", "C", "d", "en", BASE, AUTHORITY, (story,), _t(1))
    assert _parse(render_atom(feed)).entries[0].title == "Bad title"
    assert _parse(render_rss(feed)).entries[0].title == "Bad title"


# --- OPML -----------------------------------------------------------------------------------


def test_opml_lists_every_feed() -> None:
    feeds = [sample_feed(), empty_feed()]
    data = render_opml(feeds, base_url=BASE, title="News & more")
    root = ET.fromstring(data)
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "News & more"
    assert root.findtext("head/dateModified") == "Fri, 27 Nov 2026 12:00:00 GMT"
    outlines = root.findall("body/outline")
    assert [o.get("text") for o in outlines] == ["AI policy", "Quiet category"]
    for outline, feed in zip(outlines, feeds, strict=True):
        assert outline.get("type") == "rss"
        assert outline.get("xmlUrl") == f"{BASE}/feeds/{feed.category_id}.atom"
        assert outline.get("htmlUrl") == f"{BASE}/"
        # Every output format is listed as a link child, so importers subscribe only once.
        links = [(child.get("type"), child.get("url")) for child in outline]
        assert links == [
            ("link", f"{BASE}/feeds/{feed.category_id}.{fmt}") for fmt in ("atom", "rss", "json")
        ]
    assert outlines[0].get("description") == feeds[0].description
    assert outlines[1].get("description") is None
    assert b"News &amp; more" in data


def test_opml_with_no_feeds() -> None:
    root = ET.fromstring(render_opml([], base_url=BASE, title="Nothing"))
    assert root.findall("body/outline") == []
    assert root.find("head/dateModified") is None

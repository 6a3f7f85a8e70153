"""Media end to end in pure code: what parse and normalize take from Media RSS, iTunes, RSS
enclosures and JSON Feed, and what each output writes of it (one RSS enclosure, Atom enclosure
links, media:thumbnail, JSON Feed image and attachments, the HTML page's picture), read back by
feedparser and an XML parser.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime

import feedparser

from aggregator.polling.normalize import normalize_feed
from aggregator.polling.parse import parse_feed
from aggregator.publishing.formats import (
    CategoryLinks,
    render_atom,
    render_category_page,
    render_json,
    render_rss,
)
from aggregator.publishing.formats.atom_rss import MEDIA_NS
from aggregator.types import (
    Enclosure,
    EntryView,
    MediaImage,
    NormalizedEntry,
    OutputFeed,
    StoryView,
    media_from_json,
    media_json,
)
from tests.support.outputchecks import html5_errors

NOW = datetime(2026, 12, 1, tzinfo=UTC)
FEED_URL = "https://feeds.example/show/feed.xml"
ATOM_NS = "{http://www.w3.org/2005/Atom}"

PODCAST = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
     xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel><title>Show</title><link>https://show.example/</link><description>d</description>
<item><title>Episode one</title><guid>ep-1</guid><link>https://show.example/1</link>
  <description>First.</description>
  <enclosure url="media/ep1.mp3" length="12345" type="audio/mpeg"/>
  <itunes:image href="https://show.example/ep1.jpg"/>
</item>
<item><title>Episode two</title><guid>ep-2</guid><link>https://show.example/2</link>
  <description>Second.</description>
  <media:group>
    <media:content url="https://cdn.example/ep2.m4a" type="audio/mp4" fileSize="999"/>
    <media:content url="https://cdn.example/ep2.jpg" medium="image" width="640" height="360"/>
    <media:thumbnail url="https://cdn.example/ep2-thumb.jpg" width="160" height="90"/>
  </media:group>
</item>
<item><title>Hostile</title><guid>ep-3</guid><link>https://show.example/3</link>
  <description>Third.</description>
  <enclosure url="javascript:alert(1)" length="1" type="audio/mpeg"/>
  <media:thumbnail url="data:image/png;base64,AAAA"/>
  <media:content url="https://www.youtube.com/v/x" type="application/x-shockwave-flash"/>
</item>
</channel></rss>"""

JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {
                "id": "1",
                "url": "https://j.example/1",
                "title": "With both",
                "content_text": "x",
                "image": "/img/1.png",
                "banner_image": "https://j.example/b.png",
                "attachments": [
                    {
                        "url": "https://j.example/1.mp3",
                        "mime_type": "audio/mpeg",
                        "size_in_bytes": 77,
                    }
                ],
            },
            {
                "id": "2",
                "url": "https://j.example/2",
                "title": "Banner only",
                "content_text": "y",
                "banner_image": "https://j.example/banner.png",
            },
            {
                "id": "3",
                "url": "https://j.example/3",
                "title": "Bad image",
                "content_text": "z",
                "image": "javascript:alert(1)",
            },
        ],
    }
).encode()


def _normalized(body: bytes, url: str = FEED_URL) -> list[NormalizedEntry]:
    feed = parse_feed(body, url=url, headers={})
    return normalize_feed(feed, feed_url=url, source_language="en", now=NOW)


def test_enclosures_media_group_and_itunes_image_are_read() -> None:
    one, two, hostile = _normalized(PODCAST)
    # A relative enclosure resolves against the feed; length and type as given.
    assert one.enclosures == (
        Enclosure("https://feeds.example/show/media/ep1.mp3", "audio/mpeg", 12345),
    )
    assert one.image == MediaImage("https://show.example/ep1.jpg")
    # Inside media:group: the audio is an enclosure, the thumbnail wins over the image.
    assert two.enclosures == (Enclosure("https://cdn.example/ep2.m4a", "audio/mp4", 999),)
    assert two.image == MediaImage("https://cdn.example/ep2-thumb.jpg", 160, 90)
    # javascript: and data: are dropped; a Flash player is not a file to download.
    assert hostile.enclosures == ()
    assert hostile.image is None


def test_media_content_never_changes_an_entry_identity() -> None:
    plain = b"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>
    <title>T</title><item><title>Same</title><description>Body</description>%s</item>
    </channel></rss>"""
    without = _normalized(plain % b"")[0]
    with_media = _normalized(
        plain % b'<media:content url="https://c.example/a.mp3" type="audio/mpeg"/>'
    )[0]
    assert with_media.enclosures == (Enclosure("https://c.example/a.mp3", "audio/mpeg"),)
    assert with_media.identity_key == without.identity_key


def test_json_feed_image_banner_and_attachments() -> None:
    both, banner, bad = _normalized(JSON_FEED, "https://j.example/feed.json")
    assert both.image == MediaImage("https://j.example/img/1.png")
    assert both.enclosures == (Enclosure("https://j.example/1.mp3", "audio/mpeg", 77),)
    assert banner.image == MediaImage("https://j.example/banner.png")
    assert bad.image is None


def test_media_json_round_trips() -> None:
    enclosures = (Enclosure("https://a.example/x.mp3", None, None),)
    image = MediaImage("https://a.example/x.jpg", 10, None)
    data = json.loads(json.dumps(media_json(enclosures, image)))
    assert data == {
        "enclosures": [{"url": "https://a.example/x.mp3", "type": None, "length": None}],
        "image": {"url": "https://a.example/x.jpg", "width": 10, "height": None},
    }
    assert media_from_json(data["enclosures"], data["image"]) == (enclosures, image)
    assert media_from_json(None, None) == ((), None)


def _feed(*entries: EntryView) -> OutputFeed:
    stories = tuple(
        StoryView(story_id=n, uid=f"story{n}", first_seen=NOW, updated_at=NOW, entries=(e,))
        for n, e in enumerate(entries, 1)
    )
    return OutputFeed(
        category_id="pods",
        title="Pods",
        description="Podcasts",
        language="en",
        base_url="https://news.example.org",
        tag_authority="news.example.org",
        stories=stories,
        fallback_updated=NOW,
    )


def _view(
    entry_id: int, *, enclosures: tuple[Enclosure, ...] = (), image: MediaImage | None = None
) -> EntryView:
    return EntryView(
        entry_id=entry_id,
        source_id="s",
        source_title="Show",
        url=f"https://show.example/{entry_id}",
        title=f"Episode {entry_id}",
        summary_html="<p>x</p>",
        language="en",
        published_at=NOW,
        updated_at=NOW,
        enclosures=enclosures,
        image=image,
    )


PICTURE = MediaImage("https://cdn.example/p.jpg", 320, 180)
COVER = Enclosure("https://cdn.example/cover.jpg", "image/jpeg", 2000)
AUDIO = Enclosure("https://cdn.example/e.mp3", "audio/mpeg", None)
UNTYPED = Enclosure("https://cdn.example/file.bin")


def test_rss_writes_one_enclosure_preferring_audio_with_length_and_type() -> None:
    feed = _feed(
        _view(1, enclosures=(COVER, AUDIO), image=PICTURE),
        _view(2, enclosures=(UNTYPED,)),
        _view(3),
    )
    root = ET.fromstring(render_rss(feed))
    found = [[e.attrib for e in item.findall("enclosure")] for item in root.iter("item")]
    assert found == [
        [{"url": AUDIO.url, "length": "0", "type": "audio/mpeg"}],
        [{"url": UNTYPED.url, "length": "0", "type": "application/octet-stream"}],
        [],
    ]
    thumbs = [
        [t.attrib for t in item.findall(f"{{{MEDIA_NS}}}thumbnail")] for item in root.iter("item")
    ]
    assert thumbs == [[{"url": PICTURE.url, "width": "320", "height": "180"}], [], []]
    parsed = feedparser.parse(render_rss(feed))
    assert not parsed.bozo
    assert parsed.entries[0].enclosures[0].href == AUDIO.url
    assert parsed.entries[0].media_thumbnail[0]["url"] == PICTURE.url


def test_atom_writes_every_enclosure_as_given_and_the_thumbnail() -> None:
    feed = _feed(_view(1, enclosures=(COVER, AUDIO), image=PICTURE))
    document = render_atom(feed)
    assert b'xmlns:media="http://search.yahoo.com/mrss/"' in document
    entry = ET.fromstring(document).find(f"{ATOM_NS}entry")
    assert entry is not None
    links = [
        link.attrib for link in entry.findall(f"{ATOM_NS}link") if link.get("rel") == "enclosure"
    ]
    # Atom's length is optional: none is invented for the audio.
    assert links == [
        {"href": COVER.url, "rel": "enclosure", "type": "image/jpeg", "length": "2000"},
        {"href": AUDIO.url, "rel": "enclosure", "type": "audio/mpeg"},
    ]
    thumb = entry.find(f"{{{MEDIA_NS}}}thumbnail")
    assert thumb is not None
    assert thumb.get("url") == PICTURE.url
    parsed = feedparser.parse(document)
    assert [e.href for e in parsed.entries[0].enclosures] == [COVER.url, AUDIO.url]
    assert parsed.entries[0].link == "https://show.example/1"


def test_feeds_without_media_declare_no_media_namespace() -> None:
    feed = _feed(_view(1, enclosures=(AUDIO,)))
    assert b"search.yahoo.com/mrss" not in render_atom(feed)
    assert b"search.yahoo.com/mrss" not in render_rss(feed)


def test_json_feed_writes_image_and_attachments() -> None:
    feed = _feed(_view(1, enclosures=(COVER, UNTYPED), image=PICTURE), _view(2))
    first, second = json.loads(render_json(feed))["items"]
    assert first["image"] == PICTURE.url
    assert first["attachments"] == [
        {"url": COVER.url, "mime_type": "image/jpeg", "size_in_bytes": 2000},
        {"url": UNTYPED.url, "mime_type": "application/octet-stream"},
    ]
    assert "image" not in second
    assert "attachments" not in second


def test_outputs_drop_media_that_is_not_http() -> None:
    bad = _view(
        1,
        enclosures=(Enclosure("javascript:alert(1)", "audio/mpeg", 1),),
        image=MediaImage("data:image/png;base64,AAAA"),
    )
    feed = _feed(bad)
    for document in (render_atom(feed), render_rss(feed), render_json(feed)):
        assert b"javascript:" not in document
        assert b"data:image" not in document


def test_category_page_shows_an_https_picture_lazily_with_alt_text() -> None:
    feed = _feed(
        _view(1, image=PICTURE),
        _view(2, image=replace(PICTURE, url="http://cdn.example/plain.jpg")),
    )
    document = render_category_page(CategoryLinks(feed, ()), site_title="Site")
    assert html5_errors(document) == []
    page = document.decode()
    assert (
        '<img src="https://cdn.example/p.jpg" alt="Episode 1" width="320" height="180" '
        'loading="lazy" decoding="async" referrerpolicy="no-referrer">'
    ) in page
    # The pages' policy allows https pictures only: an http one would be blocked, so none.
    assert "plain.jpg" not in page
    assert page.count("<img") == 1

"""Unit tests for aggregator.polling.parse: feed bytes in, ParsedFeed (or ParseError) out."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from aggregator.errors import ParseError, SourceError
from aggregator.polling.localdates import parse_localized_date
from aggregator.polling.parse import parse_feed
from aggregator.types import Enclosure, ParsedEntry, ParsedFeed

FEED_URL = "https://example.org/feeds/main.xml"
XML = {"content-type": "application/xml; charset=utf-8"}


def parse(
    body: bytes | str, headers: dict[str, str] | None = None, url: str = FEED_URL
) -> ParsedFeed:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return parse_feed(data, url=url, headers=XML if headers is None else headers)


def rss(items: str, channel: str = "", attrs: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<rss version="2.0" {attrs}><channel><title>Feed</title><link>https://example.org/</link>'
        f"{channel}{items}</channel></rss>"
    )


def only_entry(items: str) -> ParsedEntry:
    """The one entry of an RSS feed with these items."""
    (entry,) = parse(rss(items)).entries
    return entry


ATOM_NS = 'xmlns="http://www.w3.org/2005/Atom"'


# --- RSS ---------------------------------------------------------------------------------------


def test_rss_fields_are_mapped() -> None:
    feed = parse(
        rss(
            """<item>
              <title>Hello &lt;b&gt;bold&lt;/b&gt;</title>
              <link>https://example.org/posts/1</link>
              <guid isPermaLink="false">post-1</guid>
              <description>&lt;p&gt;Summary&lt;/p&gt;</description>
              <content:encoded><![CDATA[<p>Full <em>content</em></p>]]></content:encoded>
              <pubDate>Mon, 01 Jan 2024 10:00:00 +0200</pubDate>
              <author>jane@example.org (Jane)</author>
              <category>News</category><category>World</category><category>News</category>
              <enclosure url="/media/a.mp3" type="audio/mpeg" length="1234"/>
            </item>""",
            channel="<language>en-GB</language><ttl>45</ttl>",
            attrs='xmlns:content="http://purl.org/rss/1.0/modules/content/"',
        )
    )
    assert feed.version == "rss20"
    assert feed.title == "Feed"
    assert feed.link == "https://example.org/"
    assert feed.language == "en-GB"
    assert feed.ttl_minutes == 45
    assert feed.bozo_message is None
    (entry,) = feed.entries
    assert entry.guid == "post-1"
    assert entry.link == "https://example.org/posts/1"
    assert entry.title == "Hello <b>bold</b>"
    assert entry.title_is_html
    assert entry.summary == "<p>Summary</p>"
    assert entry.content == "<p>Full <em>content</em></p>"
    assert entry.published == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    assert entry.updated is None
    assert entry.author == "Jane"  # feedparser splits "email (name)"
    assert entry.tags == ("News", "World")
    assert entry.enclosures == (
        Enclosure(url="https://example.org/media/a.mp3", type="audio/mpeg", length=1234),
    )


def test_plain_title_is_not_html() -> None:
    entry = only_entry("<item><title>Just text</title></item>")
    assert entry.title == "Just text"
    assert not entry.title_is_html


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # UOL Notícias (pt) and il Messaggero (it), as served.
        ("Seg, 24 Set 2018 19:42:40 -0300", datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)),
        ("mer, 16 nov 2022 00:38:15 +0100", datetime(2022, 11, 15, 23, 38, 15, tzinfo=UTC)),
        # Italian "mar" is Tuesday as a day name and March as a month.
        ("mar, 01 mar 2022 10:00:00 +0100", datetime(2022, 3, 1, 9, 0, tzinfo=UTC)),
        ("Mo, 3. Dez 2018 10:00:00 +0100", datetime(2018, 12, 3, 9, 0, tzinfo=UTC)),
        ("Mi, 24 Mär 2021 10:00:00 GMT", datetime(2021, 3, 24, 10, 0, tzinfo=UTC)),
        ("jeu., 5 févr. 2015 12:00:00 +0100", datetime(2015, 2, 5, 11, 0, tzinfo=UTC)),
        ("sáb, 01 ago 2020 10:00:00 +0200", datetime(2020, 8, 1, 8, 0, tzinfo=UTC)),
        ("woensdag, 2 oktober 2019 08:00:00 +0200", datetime(2019, 10, 2, 6, 0, tzinfo=UTC)),
        ("24 settembre 2018", datetime(2018, 9, 24, tzinfo=UTC)),
        ("Seg, 24 Set 2018 19:42:40", datetime(2018, 9, 24, 19, 42, 40, tzinfo=UTC)),
        # Not ours to guess: no month name, two, or an ambiguous prefix ("ma": March or May).
        ("not a date at all", None),
        ("2018-09-24 garbage", None),
        ("24 Set Out 2018 10:00:00", None),
        ("24 ma 2018 10:00:00", None),
        ("", None),
    ],
)
def test_localized_dates(text: str, expected: datetime | None) -> None:
    assert parse_localized_date(text) == expected


def test_localized_dates_are_read_where_feedparser_cannot() -> None:
    feed = parse(
        rss(
            "<item><title>a</title><pubDate>Seg, 24 Set 2018 19:42:40 -0300</pubDate></item>"
            "<item><title>b</title><pubDate>Mon, 24 Sep 2018 19:42:40 -0300</pubDate></item>"
            "<item><title>c</title><pubDate>Mon, 01 Jan 0001 00:00:00 +0000</pubDate></item>"
        )
    )
    localized, english, placeholder = feed.entries
    assert localized.published == english.published == datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)
    assert (localized.date_localized, english.date_localized) == (True, False)
    # A placeholder is left as read; normalize counts dates before 1990 as missing.
    assert placeholder.date_localized is False


def test_dates_are_aware_utc_or_none() -> None:
    feed = parse(
        rss(
            "<item><title>a</title><pubDate>Tue, 02 Jan 2024 23:30:00 -0500</pubDate></item>"
            "<item><title>b</title><pubDate>not a date at all</pubDate></item>"
            "<item><title>c</title></item>"
        )
    )
    first, second, third = feed.entries
    assert first.published == datetime(2024, 1, 3, 4, 30, tzinfo=UTC)
    assert first.published is not None
    assert first.published.tzinfo is UTC
    assert second.published is None
    assert third.published is None
    assert third.updated is None


@pytest.mark.parametrize(
    ("ttl", "expected"), [("60", 60), ("abc", None), ("0", None), ("-5", None), ("999999", None)]
)
def test_ttl(ttl: str, expected: int | None) -> None:
    feed = parse(rss("<item><title>a</title></item>", channel=f"<ttl>{ttl}</ttl>"))
    assert feed.ttl_minutes == expected


def test_relative_links_resolve_against_feed_url() -> None:
    feed = parse(rss("<item><title>a</title><link>../posts/1</link></item>", channel=""))
    assert feed.entries[0].link == "https://example.org/posts/1"


def test_content_location_header_sets_the_base() -> None:
    headers = {**XML, "content-location": "/other/dir/feed.xml"}
    feed = parse(rss("<item><title>a</title><link>post</link></item>"), headers=headers)
    assert feed.entries[0].link == "https://example.org/other/dir/post"


def test_relative_guid_is_kept_as_written() -> None:
    # A guid must not depend on where the feed was fetched from, or a move to https would
    # turn every entry into a new one.
    body = rss("<item><title>a</title><guid>12345</guid></item>")
    on_http = parse(body, url="http://example.org/feed").entries[0]
    on_https = parse(body, url="https://example.org/feed").entries[0]
    assert on_http.guid == on_https.guid == "12345"
    assert on_https.link == "https://example.org/12345"


def test_permalink_guid_becomes_the_link() -> None:
    entry = only_entry('<item><title>a</title><guid isPermaLink="true">/p/3</guid></item>')
    assert entry.guid == "/p/3"
    assert entry.link == "https://example.org/p/3"


def test_item_scoped_xml_base_does_not_leak_to_next_item() -> None:
    feed = parse(
        rss(
            '<item xml:base="https://other.example/dir/"><title>a</title><link>one</link>'
            '<description>&lt;a href="x"&gt;x&lt;/a&gt;</description></item>'
            "<item><title>b</title><link>two</link></item>"
        )
    )
    first, second = feed.entries
    assert first.link == "https://other.example/dir/one"
    assert first.summary == '<a href="https://other.example/dir/x">x</a>'
    assert second.link == "https://example.org/feeds/two"


def test_html_without_xml_base_is_left_for_the_sanitizer() -> None:
    entry = only_entry(
        '<item><title>a</title><description>&lt;a href="x"&gt;x&lt;/a&gt;</description></item>'
    )
    assert entry.summary == '<a href="x">x</a>'


def test_non_web_links_are_dropped() -> None:
    feed = parse(rss("<item><title>a</title><link>javascript:alert(1)</link></item>"))
    assert feed.entries[0].link is None


def test_bozo_feed_with_entries_is_tolerated() -> None:
    body = rss(
        "<item><title>caf&eacute; &nbsp; ok</title><link>https://example.org/1</link></item>"
    )
    feed = parse(body)
    assert feed.entries[0].link == "https://example.org/1"
    assert feed.bozo_message


# --- Atom --------------------------------------------------------------------------------------


def test_atom_with_xml_base_and_xhtml_content() -> None:
    feed = parse(
        f"""<feed {ATOM_NS} xml:lang="fr" xml:base="https://blog.example/fr/">
          <title>Blog</title><link href="./"/>
          <entry>
            <id>tag:blog.example,2024:1</id>
            <title type="html">A &amp;amp; B</title>
            <link rel="alternate" href="2024/post"/>
            <updated>2024-03-01T12:00:00+01:00</updated>
            <published>2024-02-29T12:00:00Z</published>
            <author><name>Marie</name><email>m@blog.example</email></author>
            <category term="tech" label="Technology"/>
            <content type="xhtml" xml:base="2024/"><div xmlns="http://www.w3.org/1999/xhtml">
              <p><a href="img/a.png">pic</a></p></div></content>
          </entry>
        </feed>"""
    )
    assert feed.version == "atom10"
    assert feed.link == "https://blog.example/fr/"
    assert feed.language == "fr"
    (entry,) = feed.entries
    assert entry.guid == "tag:blog.example,2024:1"
    assert entry.link == "https://blog.example/fr/2024/post"
    assert entry.title_is_html
    assert entry.updated == datetime(2024, 3, 1, 11, 0, tzinfo=UTC)
    assert entry.published == datetime(2024, 2, 29, 12, 0, tzinfo=UTC)
    assert entry.author == "Marie"
    assert entry.language == "fr"
    assert entry.tags == ("tech",)
    assert entry.content == '<p><a href="https://blog.example/fr/2024/img/a.png">pic</a></p>'
    assert entry.summary is None  # not copied from the content


def test_atom_tag_id_is_not_a_link() -> None:
    feed = parse(
        f"<feed {ATOM_NS}><title>t</title>"
        "<entry><id>tag:x,2024:1</id><title>a</title></entry></feed>"
    )
    assert feed.entries[0].guid == "tag:x,2024:1"
    assert feed.entries[0].link is None


def test_atom_text_content_is_escaped_into_html() -> None:
    feed = parse(
        f"<feed {ATOM_NS}><title>t</title><entry><id>i</id><title>a</title>"
        '<summary type="text">a &lt; b\n\nnext</summary></entry></feed>'
    )
    assert feed.entries[0].summary == "<p>a &lt; b</p><p>next</p>"


def test_entry_language_overrides_feed_language() -> None:
    feed = parse(
        f'<feed {ATOM_NS} xml:lang="en"><title>t</title>'
        '<entry xml:lang="de"><id>1</id><title>Hallo</title></entry></feed>'
    )
    assert feed.language == "en"
    assert feed.entries[0].language == "de"


# --- encodings ---------------------------------------------------------------------------------


def test_charset_from_http_header() -> None:
    body = rss("<item><title>Новости</title></item>").replace('encoding="utf-8"', "")
    data = body.encode("windows-1251")
    feed = parse_feed(
        data, url=FEED_URL, headers={"content-type": "text/xml; charset=windows-1251"}
    )
    assert feed.entries[0].title == "Новости"


def test_charset_from_xml_declaration() -> None:
    body = rss("<item><title>Café crème</title></item>").replace("utf-8", "iso-8859-1")
    feed = parse_feed(body.encode("iso-8859-1"), url=FEED_URL, headers={})
    assert feed.entries[0].title == "Café crème"


def test_utf16_with_bom() -> None:
    body = rss("<item><title>Ünïcode</title></item>").replace(
        'encoding="utf-8"', 'encoding="utf-16"'
    )
    feed = parse_feed(body.encode("utf-16"), url=FEED_URL, headers={})
    assert feed.entries[0].title == "Ünïcode"


def test_header_names_are_case_insensitive() -> None:
    data = (
        rss("<item><title>Новости</title></item>").replace('encoding="utf-8"', "").encode("koi8-r")
    )
    feed = parse_feed(data, url=FEED_URL, headers={"Content-Type": "text/xml; charset=koi8-r"})
    assert feed.entries[0].title == "Новости"


# --- JSON Feed ---------------------------------------------------------------------------------


def json_feed(**overrides: object) -> bytes:
    document: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON &amp; more",
        "home_page_url": "https://example.org/",
        "language": "en-US",
        "items": [
            {
                "id": "1",
                "url": "/posts/1",
                "title": "First",
                "content_html": "<p>Hi</p>",
                "summary": "Short & sweet",
                "date_published": "2024-01-01T10:00:00+02:00",
                "date_modified": "2024-01-02T00:00:00Z",
                "authors": [{"name": "Ann"}],
                "tags": ["a", "b", "a"],
                "language": "fr",
                "attachments": [{"url": "a.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 10}],
            }
        ],
    }
    document.update(overrides)
    return json.dumps(document).encode("utf-8")


def test_json_feed_11() -> None:
    feed = parse_feed(json_feed(), url=FEED_URL, headers={"content-type": "application/feed+json"})
    assert feed.version == "json11"
    assert feed.title == "JSON & more"
    assert feed.link == "https://example.org/"
    assert feed.language == "en-US"
    (entry,) = feed.entries
    assert entry.guid == "1"
    assert entry.link == "https://example.org/posts/1"
    assert entry.title == "First"
    assert not entry.title_is_html
    assert entry.content == "<p>Hi</p>"
    assert entry.summary == "<p>Short &amp; sweet</p>"
    assert entry.published == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    assert entry.updated == datetime(2024, 1, 2, tzinfo=UTC)
    assert entry.author == "Ann"
    assert entry.tags == ("a", "b")
    assert entry.language == "fr"
    assert entry.enclosures == (Enclosure("https://example.org/feeds/a.mp3", "audio/mpeg", 10),)


def test_json_feed_10_with_text_content_and_integer_id() -> None:
    item = {
        "id": 7,
        "external_url": "https://elsewhere.example/x",
        "content_text": "a < b\nnext line",
        "author": {"name": "Old style"},
        "date_published": "Mon, 01 Jan 2024 00:00:00 GMT",
    }
    body = json_feed(version="https://jsonfeed.org/version/1", items=[item])
    (entry,) = parse_feed(body, url=FEED_URL, headers={}).entries
    assert entry.guid == "7"
    assert entry.link == "https://elsewhere.example/x"
    assert entry.content == "<p>a &lt; b<br>next line</p>"
    assert entry.author == "Old style"
    assert entry.published == datetime(2024, 1, 1, tzinfo=UTC)
    assert entry.language == "en-US"  # the feed's


def test_json_detected_by_content_type_even_with_leading_junk() -> None:
    with pytest.raises(ParseError, match="invalid JSON"):
        parse_feed(b"\n)]}'\n{}", url=FEED_URL, headers={"content-type": "application/json"})


def test_json_feed_with_bad_dates_and_items() -> None:
    body = json_feed(
        items=[{"id": "x", "date_published": "yesterday"}, "not an item", {"id": None}]
    )
    feed = parse_feed(body, url=FEED_URL, headers={})
    assert [e.guid for e in feed.entries] == ["x", None]
    assert feed.entries[0].published is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"title": "no version", "items": []}', "without a jsonfeed.org version"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": {}}', "'items' is not a list"),
        (b"[1, 2, 3]", "a JSON list"),
        (b'{"version": ', "invalid JSON at line 1"),
    ],
)
def test_json_that_is_not_a_json_feed(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed(body, url=FEED_URL, headers={"content-type": "application/json"})


# --- not a feed --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"   \n\t  "])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(ParseError, match="body is empty"):
        parse_feed(body, url=FEED_URL, headers={})


def test_html_page_is_named() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>Welcome &amp; hello</title></head>"
        b"<body>Hi</body></html>"
    )
    with pytest.raises(ParseError, match=r"looks like an HTML page \(title 'Welcome & hello'\)"):
        parse_feed(page, url=FEED_URL, headers={"content-type": "text/html"})


def test_html_page_without_title() -> None:
    with pytest.raises(ParseError, match=r"looks like an HTML page$"):
        parse_feed(b"<html><body><p>nothing</p></body></html>", url=FEED_URL, headers={})


def test_opml_is_not_a_feed() -> None:
    opml = (
        b'<?xml version="1.0"?><opml version="2.0"><head><title>Subs</title></head><body/></opml>'
    )
    with pytest.raises(ParseError, match="OPML subscription list"):
        parse_feed(opml, url=FEED_URL, headers={})


def test_other_xml_names_its_root() -> None:
    with pytest.raises(ParseError, match="root element <kml>"):
        parse_feed(
            b"<?xml version='1.0'?><!-- c --><kml><Document/></kml>", url=FEED_URL, headers={}
        )


def test_broken_xml_reports_the_line() -> None:
    with pytest.raises(ParseError, match=r"XML error at line 3: mismatched tag"):
        parse_feed(b"<?xml version='1.0'?>\n<foo>\n<bar></foo>", url=FEED_URL, headers={})


def test_garbage() -> None:
    with pytest.raises(ParseError, match="unrecognised content starting with 'hello world"):
        parse_feed(b"hello world, not a feed", url=FEED_URL, headers={})


def test_gzip_body_is_reported() -> None:
    with pytest.raises(ParseError, match="gzip"):
        parse_feed(gzip.compress(rss("").encode()), url=FEED_URL, headers={})


@pytest.mark.parametrize(
    "body", [b"https://127.0.0.1:9/feed.xml", b"/etc/hostname", b"file:///etc/passwd"]
)
def test_body_is_never_used_as_a_url_or_path(body: bytes) -> None:
    with pytest.raises(ParseError, match="unrecognised content"):
        parse_feed(body, url=FEED_URL, headers={})


def test_parse_error_is_a_source_error() -> None:
    with pytest.raises(SourceError) as caught:
        parse_feed(b"", url=FEED_URL, headers={})
    assert caught.value.kind == "parse"


def test_empty_but_valid_feed_is_not_an_error() -> None:
    feed = parse(rss(""))
    assert feed.entries == ()
    assert feed.version == "rss20"


def test_unencodable_characters_are_scrubbed() -> None:
    item = {"id": "a\ud800", "title": "x\u0000y", "content_html": "<p>\udfff</p>"}
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item]})
    (entry,) = parse_feed(body.encode(), url=FEED_URL, headers={}).entries
    assert entry.guid == "a\ufffd"
    assert entry.title == "xy"
    assert entry.content == "<p>\ufffd</p>"


def test_update_hint_takes_the_longer_of_ttl_and_sy_update_period() -> None:
    from aggregator.polling.parse import parse_feed

    document = (
        b'<?xml version="1.0"?><rss version="2.0" '
        b'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel><title>x'
        b"</title><ttl>30</ttl><sy:updatePeriod>daily</sy:updatePeriod>"
        b"<sy:updateFrequency>2</sy:updateFrequency><item><title>a</title>"
        b"<link>https://x.example/a</link></item></channel></rss>"
    )
    feed = parse_feed(
        document, url="https://x.example/feed", headers={"content-type": "application/rss+xml"}
    )
    assert feed.ttl_minutes == 720


MRSS = (
    'xmlns:media="http://search.yahoo.com/mrss/" '
    'xmlns:content="http://purl.org/rss/1.0/modules/content/"'
)
CAPTION = (
    '<media:content url="https://img.example/1.jpg" medium="image">'
    "<media:description>Exiles demonstrate in Miami in 2021.</media:description>"
    "</media:content>"
)


@pytest.mark.parametrize(
    "item",
    [
        # El País: description, a photo's caption, then the article.
        "<description>The summary.</description>"
        + CAPTION
        + "<content:encoded>&lt;p&gt;The article.&lt;/p&gt;</content:encoded>",
        # The caption first: feedparser would make it the summary.
        CAPTION
        + "<description>The summary.</description>"
        + "<content:encoded>&lt;p&gt;The article.&lt;/p&gt;</content:encoded>",
    ],
)
def test_a_media_description_never_replaces_the_description(item: str) -> None:
    [entry] = parse(rss(f"<item><title>t</title>{item}</item>", attrs=MRSS)).entries
    assert entry.summary == "The summary."
    assert entry.content == "<p>The article.</p>"


def test_a_media_description_without_caption_takes_no_content_slot() -> None:
    [entry] = parse(
        rss(
            f"<item><title>t</title><description>The summary.</description>{CAPTION}</item>",
            attrs=MRSS,
        )
    ).entries
    assert (entry.summary, entry.content) == ("The summary.", None)


def test_a_media_description_alone_is_the_summary() -> None:
    # YouTube's Atom feeds describe a video only in media:group/media:description.
    feed = parse(
        f'<feed {ATOM_NS} xmlns:media="http://search.yahoo.com/mrss/"><title>f</title>'
        "<entry><id>yt:1</id><title>Video</title><updated>2024-01-01T00:00:00Z</updated>"
        "<media:group><media:description>About the video.\n\nSecond paragraph."
        "</media:description></media:group></entry></feed>"
    )
    assert feed.entries[0].summary == "<p>About the video.</p><p>Second paragraph.</p>"


def test_feedparser_itself_is_left_as_it_was() -> None:
    import feedparser

    document = rss(
        f"<item><title>t</title><description>The summary.</description>{CAPTION}</item>",
        attrs=MRSS,
    )
    parse(document)
    raw = feedparser.parse(document.encode())
    assert [c["value"] for c in raw.entries[0].content] == ["Exiles demonstrate in Miami in 2021."]

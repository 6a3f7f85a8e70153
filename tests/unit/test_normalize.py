"""Unit tests for aggregator.polling.normalize and aggregator.safety.sanitize, plus the golden
feeds.

Golden files live in tests/data/golden/: ``name.xml`` (or ``.json``) beside
``name.expected.json``. Regenerate them with ``UPDATE_GOLDEN=1 pytest tests/unit/test_normalize.py``
and review the diff; by default a mismatch fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aggregator.polling.normalize import (
    EARLIEST_PLAUSIBLE_DATE,
    MAX_FUTURE_SKEW,
    MAX_HTML_CHARS,
    MAX_TITLE_CHARS,
    UNTITLED,
    canonical_url,
    normalize_entry,
    normalize_feed,
    normalize_language,
    primary_language,
)
from aggregator.polling.parse import parse_feed
from aggregator.safety.sanitize import clean_html, html_to_text, plain_title
from aggregator.types import Enclosure, NormalizedEntry, ParsedEntry, ParsedFeed

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
FEED_URL = "https://example.org/feeds/main.xml"
GOLDEN_DIR = Path(__file__).resolve().parents[1] / "data" / "golden"
GOLDEN_NOW = datetime(2024, 4, 1, tzinfo=UTC)
GOLDEN_FEED_URL = "https://golden.example/feeds/feed"
GOLDEN_CONTENT_TYPES = {".xml": "application/xml; charset=utf-8", ".json": "application/feed+json"}


def norm(
    entry: ParsedEntry,
    feed: ParsedFeed | None = None,
    *,
    source_language: str | None = None,
    now: datetime = NOW,
) -> NormalizedEntry:
    return normalize_entry(
        entry,
        feed=feed or ParsedFeed(),
        feed_url=FEED_URL,
        source_language=source_language,
        now=now,
    )


# --- canonical_url -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a", "https://example.org/a"),
        ("HTTPS://Example.ORG/Path/Case", "https://example.org/Path/Case"),
        ("http://example.org", "http://example.org/"),
        ("http://example.org:80/a", "http://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("https://example.org:8443/a", "https://example.org:8443/a"),
        ("http://example.org:443/a", "http://example.org:443/a"),
        ("https://example.org/a#section", "https://example.org/a"),
        ("https://example.org/#!/post/1", "https://example.org/#!/post/1"),
        ("https://user:pw@example.org/a", "https://example.org/a"),
        ("https://example.org./a", "https://example.org/a"),
        (
            "https://example.org/a?utm_source=x&id=3&UTM_Medium=y&fbclid=z&b=2",
            "https://example.org/a?id=3&b=2",
        ),
        ("https://example.org/a?utm_source=x", "https://example.org/a"),
        ("https://example.org/a?gclid=1&mc_cid=2&mc_eid=3&igshid=4", "https://example.org/a"),
        (
            "https://example.org/a?_hsenc=1&_hsmi=2&ref_src=3&yclid=4&msclkid=5",
            "https://example.org/a",
        ),
        ("https://example.org/a?z=1&a=2", "https://example.org/a?z=1&a=2"),
        ("https://example.org/a?&&x=1&", "https://example.org/a?x=1"),
        ("https://example.org/a?q=a+b&flag", "https://example.org/a?q=a+b&flag"),
        ("https://example.org/%7euser/%41", "https://example.org/~user/A"),
        ("https://example.org/a%2fb", "https://example.org/a%2Fb"),
        ("https://example.org/a b", "https://example.org/a%20b"),
        ("https://example.org/caf\u00e9", "https://example.org/caf%C3%A9"),
        ("https://example.org/100%", "https://example.org/100%25"),
        ("https://example.org/a/./b/../c", "https://example.org/a/c"),
        ("https://example.org/a/..", "https://example.org/"),
        ("https://b\u00fccher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://xn--bcher-kva.example/x", "https://xn--bcher-kva.example/x"),
        ("https://[2001:DB8::1]:8080/x", "https://[2001:db8::1]:8080/x"),
        ("  https://example.org/a\n", "https://example.org/a"),
        ("https://exa\tmple.org/a", "https://example.org/a"),
        ("ftp://example.org/a", None),
        ("mailto:a@example.org", None),
        ("javascript:alert(1)", None),
        ("tag:example.org,2024:1", None),
        ("/relative/only", None),
        ("https://", None),
        ("https://example.org:99999/", None),
        ("http://[::1", None),
        ("https://exa mple.org/", None),
        ("", None),
        (None, None),
    ],
)
def test_canonical_url(url: str | None, expected: str | None) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("post", "https://example.org/blog/feed.xml", "https://example.org/blog/post"),
        ("/post", "https://example.org/blog/feed.xml", "https://example.org/post"),
        ("//cdn.example/x", "https://example.org/", "https://cdn.example/x"),
        ("https://other.example/x", "https://example.org/", "https://other.example/x"),
        ("../x?utm_campaign=a", "https://example.org/a/b/", "https://example.org/a/x"),
    ],
)
def test_canonical_url_with_base(url: str, base: str, expected: str) -> None:
    assert canonical_url(url, base) == expected


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("HTTP://Example.org:80/a/../%7ex?utm_source=1&b=%c3%a9#frag")
    assert once == "http://example.org/~x?b=%C3%A9"
    assert canonical_url(once) == once


# --- identity ----------------------------------------------------------------------------------


def test_identity_prefers_guid() -> None:
    entry = norm(ParsedEntry(guid="  abc-123 ", link="https://example.org/a", title="t"))
    assert entry.identity_key == "guid:abc-123"
    assert entry.guid == "abc-123"


def test_permalink_guid_is_still_a_guid() -> None:
    entry = norm(ParsedEntry(guid="https://example.org/a?utm_source=x", title="t"))
    assert entry.identity_key == "guid:https://example.org/a?utm_source=x"


def test_identity_falls_back_to_canonical_url() -> None:
    entry = norm(ParsedEntry(guid="   ", link="HTTPS://Example.org/a?utm_source=x#top", title="t"))
    assert entry.guid is None
    assert entry.url == "https://example.org/a"
    assert entry.link == "https://Example.org/a?utm_source=x#top"  # as given, scheme aside
    # The fragment stays in the identity (issue 14: one-page blogs give each post a fragment);
    # the key earlier versions used is kept so the store adopts rows stored under it.
    assert entry.identity_key == "url:https://example.org/a#top"
    assert entry.legacy_key == "url:https://example.org/a"


def test_relative_link_resolves_against_feed_url_before_identity() -> None:
    entry = norm(ParsedEntry(link="../posts/1", title="t"))
    assert entry.link == "https://example.org/posts/1"
    assert entry.identity_key == "url:https://example.org/posts/1"


def test_identity_falls_back_to_content_hash() -> None:
    entry = norm(ParsedEntry(title="Only a title", summary="<p>and text</p>"))
    assert entry.url is None
    assert entry.identity_key == f"hash:{entry.content_hash}"


def test_very_long_guid_is_bounded_but_exact() -> None:
    first = norm(ParsedEntry(guid="g" * 5000 + "1", title="t"))
    second = norm(ParsedEntry(guid="g" * 5000 + "2", title="t"))
    assert first.identity_key != second.identity_key
    assert len(first.identity_key) < 100
    assert first.guid is not None
    assert len(first.guid) <= 1000


def keys(*entries: ParsedEntry) -> list[str]:
    feed = ParsedFeed(entries=entries)
    return [
        e.identity_key
        for e in normalize_feed(feed, feed_url=FEED_URL, source_language=None, now=NOW)
    ]


def test_fragment_stays_in_the_identity_but_not_in_the_url() -> None:
    # One-page blogs and comment feeds: every item is page#item (issue 14, lovergne.dev).
    posts = [
        ParsedEntry(link=f"https://example.org/awesome#post-{i}", title=f"P{i}") for i in (1, 2)
    ]
    first, second = (norm(p) for p in posts)
    assert first.identity_key == "url:https://example.org/awesome#post-1"
    assert second.identity_key != first.identity_key
    # The canonical URL (the cross-feed signal) still drops it.
    assert first.url == second.url == "https://example.org/awesome"
    assert len(keys(*posts)) == 2


def test_escaped_and_unescaped_fragments_are_one_key() -> None:
    plain = norm(ParsedEntry(link="https://example.org/p#caf%C3%A9", title="t"))
    raw = norm(ParsedEntry(link="https://example.org/p#café", title="t"))
    assert plain.identity_key == raw.identity_key


def test_a_bang_route_is_not_repeated_in_the_key() -> None:
    entry = norm(ParsedEntry(link="https://example.org/#!/post/1", title="t"))
    assert entry.identity_key == "url:https://example.org/#!/post/1"
    assert entry.legacy_key is None


def test_episodes_linking_to_the_home_page_are_told_apart_by_enclosure() -> None:
    # Taverncast: no guid, every episode links to the site's home page.
    episodes = [
        ParsedEntry(
            link="http://www.taverncast.com",
            title=f"Taverncast {n}",
            enclosures=(Enclosure(url=f"http://taverncast.com/shows/taverncast-{n}.mp3"),),
        )
        for n in (61, 62)
    ]
    found = keys(*episodes)
    assert found == [
        "url:http://www.taverncast.com/ enc:http://taverncast.com/shows/taverncast-61.mp3",
        "url:http://www.taverncast.com/ enc:http://taverncast.com/shows/taverncast-62.mp3",
    ]
    assert norm(episodes[0]).legacy_key == "url:http://www.taverncast.com/"


def test_entries_without_guid_or_link_are_told_apart_by_their_date() -> None:
    # areweanticheatyet.com: a changelog repeats a line (title and text) on a later date.
    line = ParsedEntry(
        title="Halo Infinite", summary="<b>Anticheats</b>: Arbiter => Easy Anti-Cheat"
    )
    later = dataclasses.replace(line, published=at(-1))
    earlier = dataclasses.replace(line, published=at(-30))
    found = keys(later, earlier)
    assert len(found) == 2
    assert found[0] == f"hash:{norm(later).content_hash}@{at(-1).isoformat()}"
    assert norm(later).legacy_key == f"hash:{norm(later).content_hash}"
    # Re-listed on the next poll, below a new line: the same entries.
    newest = dataclasses.replace(line, published=at(0))
    assert keys(newest, later, earlier)[1:] == found


def test_undated_repeats_are_numbered_from_the_end_of_the_feed() -> None:
    repeat = ParsedEntry(title="Weekly maintenance window")
    other = ParsedEntry(title="Something else")
    first_poll = keys(repeat, other, repeat)
    plain = f"hash:{norm(repeat).content_hash}"
    assert first_poll == [f"{plain}~1", f"hash:{norm(other).content_hash}", plain]
    # A new item, even the same text again, prepended on the next poll: the stored entries
    # keep their keys, only the new one gets a new key.
    second_poll = keys(repeat, repeat, other, repeat)
    assert second_poll[1:] == first_poll
    assert second_poll[0] == f"{plain}~2"
    # The oldest repeat drops off the end: the rest take keys already stored (no duplicate).
    assert set(keys(repeat, repeat, other)) <= set(second_poll)


def test_repeats_of_guids_and_links_are_still_one_entry() -> None:
    assert keys(ParsedEntry(guid="g", title="a"), ParsedEntry(guid="g", title="b")) == ["guid:g"]
    link = "https://example.org/p#one"
    assert keys(ParsedEntry(link=link, title="a"), ParsedEntry(link=link, title="b")) == [
        f"url:{link}"
    ]


# --- dates -------------------------------------------------------------------------------------


def at(days: float) -> datetime:
    return NOW + timedelta(days=days)


def test_dates_as_given() -> None:
    entry = norm(ParsedEntry(title="t", published=at(-3), updated=at(-1)))
    assert (entry.published_at, entry.updated_at) == (at(-3), at(-1))


def test_published_falls_back_to_updated_then_now() -> None:
    assert norm(ParsedEntry(title="t", updated=at(-2))).published_at == at(-2)
    entry = norm(ParsedEntry(title="t"))
    assert (entry.published_at, entry.updated_at) == (NOW, NOW)


def test_updated_falls_back_to_published() -> None:
    assert norm(ParsedEntry(title="t", published=at(-5))).updated_at == at(-5)


def test_updated_is_never_before_published() -> None:
    entry = norm(ParsedEntry(title="t", published=at(-1), updated=at(-9)))
    assert entry.updated_at == entry.published_at == at(-1)


def test_far_future_is_clamped_to_now() -> None:
    entry = norm(ParsedEntry(title="t", published=datetime(2100, 1, 1, tzinfo=UTC)))
    assert entry.published_at == NOW


def test_small_future_skew_is_tolerated() -> None:
    skewed = NOW + MAX_FUTURE_SKEW - timedelta(minutes=1)
    assert norm(ParsedEntry(title="t", published=skewed)).published_at == skewed


def test_dates_before_1990_count_as_missing() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert norm(ParsedEntry(title="t", published=epoch)).published_at == NOW
    entry = norm(ParsedEntry(title="t", published=epoch, updated=at(-1)))
    assert entry.published_at == at(-1)
    assert norm(ParsedEntry(title="t", published=EARLIEST_PLAUSIBLE_DATE)).published_at == (
        EARLIEST_PLAUSIBLE_DATE
    )


def test_date_source_says_where_the_date_came_from() -> None:
    assert norm(ParsedEntry(title="t", published=at(-3))).date_source == "feed"
    assert norm(ParsedEntry(title="t", updated=at(-3))).date_source == "feed"
    localized = ParsedEntry(title="t", published=at(-3), date_localized=True)
    assert norm(localized).date_source == "feed-localized"
    assert norm(ParsedEntry(title="t")).date_source == "first-seen"


@pytest.mark.parametrize(
    "placeholder",
    [
        datetime(1, 1, 1, tzinfo=UTC),  # Go's zero time, "Mon, 01 Jan 0001"
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
        datetime(2100, 1, 1, tzinfo=UTC),
    ],
)
def test_placeholder_dates_count_as_missing(placeholder: datetime) -> None:
    entry = norm(ParsedEntry(title="t", published=placeholder))
    assert (entry.published_at, entry.date_source) == (NOW, "first-seen")
    # A placeholder says nothing about the entry: a real updated date is used instead.
    other = norm(ParsedEntry(title="t", published=placeholder, updated=at(-4)))
    assert (other.published_at, other.date_source) == (at(-4), "feed")


def test_dates_become_utc() -> None:
    plus_two = datetime(2024, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2024, 5, 1, 14, 0)  # naive on purpose: taken as UTC
    for value in (plus_two, naive):
        entry = norm(ParsedEntry(title="t", published=value))
        assert entry.published_at == datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
        assert entry.published_at.utcoffset() == timedelta(0)


# --- titles, text, HTML ------------------------------------------------------------------------


def test_html_title_becomes_plain_text() -> None:
    entry = norm(ParsedEntry(title="  <b>Big</b>\n news &amp; more ", title_is_html=True))
    assert entry.title == "Big news & more"


def test_text_title_entities_are_decoded() -> None:
    assert norm(ParsedEntry(title="AT&amp;T <3 you")).title == "AT&T <3 you"


def test_missing_title_comes_from_text() -> None:
    words = "Word " * 40
    entry = norm(ParsedEntry(summary=f"<p>{words}</p>", link="https://example.org/a"))
    assert entry.title.endswith("…")
    assert len(entry.title) <= 81
    assert entry.title.startswith("Word Word")
    assert entry.text.startswith("Word Word")  # the derived title is not repeated


def test_missing_title_and_text_uses_url_then_placeholder() -> None:
    assert norm(ParsedEntry(link="https://example.org/a")).title == "https://example.org/a"
    assert norm(ParsedEntry(guid="x")).title == UNTITLED


def test_absurd_sizes_are_limited() -> None:
    entry = norm(ParsedEntry(title="x" * 5000, content="<p>" + "y" * (MAX_HTML_CHARS * 2)))
    assert len(entry.title) == MAX_TITLE_CHARS
    assert len(entry.content_html) < MAX_HTML_CHARS + 100


def test_text_joins_title_summary_and_content() -> None:
    entry = norm(ParsedEntry(title="Title", summary="<p>Summary.</p>", content="<p>Body.</p>"))
    assert entry.text == "Title\nSummary.\nBody."


@pytest.mark.parametrize(
    "summary",
    ["<p>First paragraph.</p>", "First paragraph. […]", "First paragraph…", "First  paragraph..."],
)
def test_summary_that_opens_the_content_is_not_repeated(summary: str) -> None:
    entry = norm(
        ParsedEntry(title="T", summary=summary, content="<p>First paragraph.</p><p>Second.</p>")
    )
    assert entry.text == "T\nFirst paragraph.\nSecond."


def test_content_that_is_a_prefix_of_the_summary() -> None:
    entry = norm(ParsedEntry(title="T", summary="<p>Long summary here.</p>", content="Long"))
    assert entry.text == "T\nLong summary here."


@pytest.mark.parametrize(
    ("dirty", "forbidden"),
    [
        ("<script>alert(1)</script>ok", "alert"),
        ('<img src="x.png" onerror="alert(1)">', "onerror"),
        ('<a href="javascript:alert(1)">x</a>', "javascript"),
        ('<a href="JaVaScRiPt:alert(1)">x</a>', "alert"),
        ('<a href="java&#x09;script:alert(1)">x</a>', "alert"),
        ('<a href="vbscript:msgbox(1)">x</a>', "vbscript"),
        ('<img src="data:image/svg+xml;base64,PHN2Zz4=">', "data:"),
        ('<iframe src="https://evil.example/"></iframe>ok', "iframe"),
        ("<style>body{display:none}</style>ok", "display"),
        ('<p style="position:fixed">ok</p>', "style"),
        ('<svg onload="alert(1)"><circle/></svg>ok', "onload"),
        ("<math><mtext><script>alert(1)</script></mtext></math>", "alert"),
        ('<object data="x.swf"></object><embed src="x.swf">ok', "swf"),
        ('<form action="https://evil.example/"><input name="q"></form>ok', "form"),
        ('<meta http-equiv="refresh" content="0;url=https://evil.example/">ok', "refresh"),
        ('<base href="https://evil.example/">ok', "evil"),
        ('<p onclick="alert(1)" onmouseover="alert(2)">ok</p>', "on"),
        ("<!-- <script>alert(1)</script> -->ok", "alert"),
        ('<a href="https://e.example/" target="_blank">x</a>', "target"),
        ('<div class="x" id="y">ok</div>', "class"),
    ],
)
def test_sanitizing_removes_xss_vectors(dirty: str, forbidden: str) -> None:
    entry = norm(ParsedEntry(title="t", summary=dirty, content=dirty))
    for html in (entry.summary_html, entry.content_html):
        assert forbidden not in html.replace("noopener", "").replace("noreferrer", "")


def test_links_get_rel_and_relative_urls_resolve_against_entry_link() -> None:
    entry = norm(
        ParsedEntry(
            title="t",
            link="https://example.org/blog/post",
            summary='<a href="other">o</a> <img src="/i.png" alt="i"> <a href="#c">c</a>',
        )
    )
    assert entry.summary_html == (
        '<a href="https://example.org/blog/other" rel="noopener noreferrer nofollow">o</a> '
        '<img src="https://example.org/i.png" alt="i"> '
        '<a href="https://example.org/blog/post#c" rel="noopener noreferrer nofollow">c</a>'
    )


def test_relative_urls_fall_back_to_feed_url() -> None:
    entry = norm(ParsedEntry(title="t", summary='<a href="x">x</a>'))
    assert 'href="https://example.org/feeds/x"' in entry.summary_html


def test_plain_text_is_extracted_from_sanitized_html() -> None:
    entry = norm(
        ParsedEntry(
            title="T",
            content="<h2>Head</h2><p>One&nbsp;&amp; <b>two</b></p><ul><li>a</li><li>b</li></ul>"
            "<script>hidden()</script><img alt='pic' src='x'>",
        )
    )
    assert entry.text == "T\nHead\nOne & two\na\nb\npic"


# --- language ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("en-US", "en-us"),
        ("pt_BR", "pt-br"),
        ("zh-Hant-TW", "zh-hant-tw"),
        (" fr-FR ", "fr-fr"),
        ("en-US, fr;q=0.5", "en-us"),
        ("iw", "he"),
        ("de-DE.utf8", "de"),
        ("English", None),
        ("*", None),
        ("", None),
        (None, None),
        ("e", None),
    ],
)
def test_normalize_language(tag: str | None, expected: str | None) -> None:
    assert normalize_language(tag) == expected


def test_primary_language() -> None:
    assert primary_language("pt-BR") == "pt"
    assert primary_language("nonsense-tag") is None


def test_language_precedence() -> None:
    feed = ParsedFeed(language="fr-FR")
    assert norm(ParsedEntry(title="t", language="de"), feed, source_language="en").language == "de"
    assert norm(ParsedEntry(title="t"), feed, source_language="en").language == "fr-fr"
    assert norm(ParsedEntry(title="t"), ParsedFeed(), source_language="EN").language == "en"
    bogus = ParsedFeed(language="English")
    assert norm(ParsedEntry(title="t"), bogus, source_language="en").language == "en"
    assert norm(ParsedEntry(title="t")).language is None


# --- content hash ------------------------------------------------------------------------------


def test_same_story_with_different_markup_hashes_the_same() -> None:
    first = norm(
        ParsedEntry(
            title="The  Story", content="<p>First line.</p><p>Second <b>line</b>.</p>", guid="a"
        )
    )
    second = norm(
        ParsedEntry(
            title="the story",
            summary="<div>First line.<br/>Second line.</div>",
            guid="b",
            link="https://elsewhere.example/x",
        )
    )
    assert first.content_hash == second.content_hash
    assert len(first.content_hash) == 32


def test_different_text_hashes_differently() -> None:
    first = norm(ParsedEntry(title="Story", summary="One"))
    second = norm(ParsedEntry(title="Story", summary="Two"))
    assert first.content_hash != second.content_hash


# --- tags, authors, enclosures -----------------------------------------------------------------


def test_tags_author_and_enclosures() -> None:
    entry = norm(
        ParsedEntry(
            title="t",
            author="  Ann &amp; Bob ",
            tags=("AI", "ai", " Policy ", ""),
            enclosures=(
                Enclosure("/a.mp3", "audio/mpeg", 10),
                Enclosure("/a.mp3", "audio/mpeg", 10),
                Enclosure("javascript:x"),
            ),
        )
    )
    assert entry.author == "Ann & Bob"
    assert entry.tags == ("AI", "Policy")
    assert entry.enclosures == (Enclosure("https://example.org/a.mp3", "audio/mpeg", 10),)


# --- normalize_feed ----------------------------------------------------------------------------


def test_duplicate_guids_keep_the_first() -> None:
    feed = ParsedFeed(
        entries=(
            ParsedEntry(guid="same", title="first"),
            ParsedEntry(guid="other", title="middle"),
            ParsedEntry(guid="same", title="second"),
            ParsedEntry(link="https://example.org/x?utm_source=a", title="by url"),
            ParsedEntry(link="https://example.org/x", title="same url"),
        )
    )
    entries = normalize_feed(feed, feed_url=FEED_URL, source_language=None, now=NOW)
    assert [e.title for e in entries] == ["first", "middle", "by url"]
    again = normalize_feed(feed, feed_url=FEED_URL, source_language=None, now=NOW)
    assert again == entries


def test_empty_entries_are_dropped() -> None:
    feed = ParsedFeed(entries=(ParsedEntry(), ParsedEntry(title=" "), ParsedEntry(title="kept")))
    entries = normalize_feed(feed, feed_url=FEED_URL, source_language=None, now=NOW)
    assert [e.title for e in entries] == ["kept"]


# --- sanitize helpers --------------------------------------------------------------------------


def test_clean_html_without_base_drops_relative_urls() -> None:
    assert clean_html('<a href="x">x</a>', None) == ('<a rel="noopener noreferrer nofollow">x</a>')
    assert clean_html('<img src="/i.png">', "not a url") == "<img>"


def test_clean_html_of_nothing() -> None:
    assert clean_html("", "https://example.org/") == ""
    assert clean_html("   ", None) == ""


def test_html_to_text_keeps_pre_lines_and_decodes_entities() -> None:
    assert html_to_text("<pre>a\n  b</pre>x\ny &lt;z&gt;") == "a\nb\nx y <z>"
    assert html_to_text("plain\ntext") == "plain\ntext"
    assert html_to_text("") == ""


def test_plain_title() -> None:
    assert plain_title("<i>A</i>\n&amp; B", True) == "A & B"
    assert plain_title("a &lt;b&gt;", False) == "a <b>"
    assert plain_title(None, True) == ""


# --- golden files ------------------------------------------------------------------------------


def golden_sources() -> list[Path]:
    return sorted(
        path
        for path in GOLDEN_DIR.iterdir()
        if path.suffix in GOLDEN_CONTENT_TYPES and not path.name.endswith(".expected.json")
    )


def golden_document(source: Path) -> dict[str, Any]:
    feed = parse_feed(
        source.read_bytes(),
        url=GOLDEN_FEED_URL,
        headers={"content-type": GOLDEN_CONTENT_TYPES[source.suffix]},
    )
    entries = normalize_feed(feed, feed_url=GOLDEN_FEED_URL, source_language="en", now=GOLDEN_NOW)
    feed_fields = dataclasses.asdict(feed)
    del feed_fields["entries"]
    document = {"feed": feed_fields, "entries": [dataclasses.asdict(e) for e in entries]}
    # A JSON round trip turns datetimes into ISO strings and tuples into lists.
    return dict(json.loads(json.dumps(document, default=datetime.isoformat)))


@pytest.mark.parametrize("source", golden_sources(), ids=lambda path: path.name)
def test_golden(source: Path) -> None:
    expected_path = source.with_name(source.stem + ".expected.json")
    actual = golden_document(source)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_path.write_text(
            json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    assert expected_path.exists(), f"{expected_path.name} is missing: run with UPDATE_GOLDEN=1"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert actual == expected


def test_sanitize_survives_unencodable_characters() -> None:
    assert clean_html("<b>\ud800</b>\x00", None) == "<b>\ufffd</b>"
    assert html_to_text("<b>\udfff</b>") == "\ufffd"
    assert plain_title("a\x00b\ud800", False) == "ab\ufffd"

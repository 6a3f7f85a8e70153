"""Autodiscovery: feeds declared by <link rel="alternate"> in a page, nothing guessed."""

from __future__ import annotations

import pytest

from aggregator.polling.discover import DiscoveredFeed, discover_feeds

BASE = "https://news.example/section/page.html"


def page(head: str, body: str = "") -> str:
    return f"<!doctype html><html><head><title>News</title>{head}</head><body>{body}</body></html>"


def test_rss_atom_and_json_links_in_document_order() -> None:
    html = page(
        '<link rel="alternate" type="application/atom+xml" href="/atom.xml" title="Atom">'
        '<link rel="stylesheet" href="/style.css">'
        '<link rel="alternate" type="application/rss+xml" href="https://news.example/rss" '
        'title="  All   stories ">'
        '<link rel="alternate" type="application/feed+json" href="feed.json">'
        '<link rel="alternate" type="application/json" href="/v1.json">'
    )
    assert discover_feeds(html, BASE) == [
        DiscoveredFeed("https://news.example/atom.xml", "Atom", "application/atom+xml"),
        DiscoveredFeed("https://news.example/rss", "All stories", "application/rss+xml"),
        DiscoveredFeed("https://news.example/section/feed.json", None, "application/feed+json"),
        DiscoveredFeed("https://news.example/v1.json", None, "application/json"),
    ]


def test_rel_is_a_token_list_and_matching_ignores_case() -> None:
    html = page(
        '<LINK REL="Feed Alternate" TYPE="Application/RSS+XML; charset=utf-8" HREF="/rss.xml">'
    )
    assert discover_feeds(html, BASE) == [
        DiscoveredFeed("https://news.example/rss.xml", None, "application/rss+xml")
    ]


@pytest.mark.parametrize(
    "link",
    [
        '<link rel="alternate" type="text/html" href="/fr/" hreflang="fr">',
        '<link rel="alternate" type="application/json+oembed" href="/oembed?url=x">',
        '<link rel="alternates" type="application/rss+xml" href="/not-a-token-match.xml">',
        '<link rel="alternate stylesheet" type="text/css" href="/dark.css">',
        '<link rel="alternate" type="application/rss+xml">',
        '<link rel="alternate" type="application/rss+xml" href="">',
        '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">',
        '<link rel="alternate" type="application/rss+xml" href="mailto:editor@news.example">',
        # WordPress's REST API link on every page: JSON, "alternate", and not a feed.
        '<link rel="alternate" type="application/json" '
        'href="https://news.example/wp-json/wp/v2/pages/12">',
    ],
)
def test_links_that_are_not_feeds_are_ignored(link: str) -> None:
    assert discover_feeds(page(link), BASE) == []


def test_base_href_is_honoured_and_resolved_against_the_page() -> None:
    html = page(
        '<base href="/feeds/"><link rel="alternate" type="application/rss+xml" href="main.xml">'
    )
    assert [f.url for f in discover_feeds(html, BASE)] == ["https://news.example/feeds/main.xml"]


def test_only_the_first_base_counts_even_after_the_links() -> None:
    html = page(
        '<link rel="alternate" type="application/rss+xml" href="a.xml">'
        '<base href="https://cdn.example/one/"><base href="https://cdn.example/two/">'
    )
    assert [f.url for f in discover_feeds(html, BASE)] == ["https://cdn.example/one/a.xml"]


def test_duplicates_are_listed_once_in_first_position() -> None:
    html = page(
        '<link rel="alternate" type="application/rss+xml" href="/rss.xml" title="A">'
        '<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
        '<link rel="alternate" type="application/rss+xml" '
        'href="https://news.example/rss.xml" title="B">'
    )
    found = discover_feeds(html, BASE)
    assert [(f.url, f.title) for f in found] == [
        ("https://news.example/rss.xml", "A"),
        ("https://news.example/atom.xml", None),
    ]


def test_links_in_the_body_count_too() -> None:
    html = page("", '<link rel="alternate" type="application/atom+xml" href="/late.xml">')
    assert [f.url for f in discover_feeds(html, BASE)] == ["https://news.example/late.xml"]


def test_common_paths_and_anchors_are_not_guessed() -> None:
    html = page("", '<a href="/feed/">RSS</a><a href="/rss.xml" type="application/rss+xml">x</a>')
    assert discover_feeds(html, BASE) == []


def test_feed_pseudo_scheme_is_unwrapped() -> None:
    html = page(
        '<link rel="alternate" type="application/rss+xml" href="feed://news.example/a">'
        '<link rel="alternate" type="application/rss+xml" '
        'href="feed:https://news.example/b">'
    )
    assert [f.url for f in discover_feeds(html, BASE)] == [
        "http://news.example/a",
        "https://news.example/b",
    ]


def test_entities_in_attributes_are_decoded() -> None:
    html = page(
        '<link rel="alternate" type="application/rss+xml" '
        'href="/rss?cat=1&amp;lang=fr" title="Caf&eacute; &amp; cr&egrave;me">'
    )
    assert discover_feeds(html, BASE) == [
        DiscoveredFeed(
            "https://news.example/rss?cat=1&lang=fr", "Café & crème", "application/rss+xml"
        )
    ]


def test_bytes_are_decoded_by_bom_utf8_or_meta_charset() -> None:
    link = '<link rel="alternate" type="application/rss+xml" href="/r.xml" title="Été">'
    utf8 = page(link).encode("utf-8")
    latin1 = ('<html><head><meta charset="iso-8859-1">' + link + "</head></html>").encode("latin-1")
    undeclared = ("<html><head>" + link + "</head></html>").encode("cp1252")
    with_bom = b"\xef\xbb\xbf" + utf8
    for data in (utf8, latin1, undeclared, with_bom):
        assert [f.title for f in discover_feeds(data, BASE)] == ["Été"]


def test_broken_markup_does_not_raise() -> None:
    html = (
        '<html><head><link rel="alternate" type="application/rss+xml" href="/ok.xml"'
        "<link rel=alternate type=application/atom+xml href=/atom.xml><title>x</he"
    )
    found = discover_feeds(html, BASE)
    assert "https://news.example/atom.xml" in [f.url for f in found]
    assert discover_feeds(b"\x00\xff garbage <<<>>>", BASE) == []
    assert discover_feeds("", BASE) == []
